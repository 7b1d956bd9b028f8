"""The dataset pinned on one device, once per run, in the shapes ``Network.SGD`` takes."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import DataError
from ..io.idx import unit
from .host import HostData


@dataclass
class DeviceData:
    """The splits pinned on one device, in the shapes ``Network.SGD`` takes."""

    training_data: tuple  # (x (n, n_in) in [0, 1], one-hot y (n, n_classes))
    validation_data: tuple  # (x, labels)
    test_data: tuple  # (x, labels)
    n_inputs: int
    n_classes: int
    nbytes: int  # bytes held on the device

    def __repr__(self) -> str:  # the sizes, not the arrays
        splits = zip(("training", "validation", "test"), (self.training_data, self.validation_data, self.test_data))
        counts = " / ".join(f"{split[0].shape[0]} {name}" for name, split in splits)
        return f"DeviceData({counts}, {self.n_inputs} inputs, {self.n_classes} classes, {self.nbytes / 1e6:.1f} MB)"


def pin_split(backend, images, labels, dtype):
    """One split on the device: uint8 pixels cross as they are and are scaled to [0, 1] there."""
    return unit(backend.asarray(images), dtype), backend.asarray(labels.astype(np.int64))


def pin(host: HostData, backend, dtype, n_outputs: int | None = None) -> DeviceData:
    """Returns every split copied to the device once, as :func:`pin_split` copies one.

    The one-hot targets are ``n_outputs`` wide (the output layer, default: one per class); outputs
    beyond the classes are trained towards 0.
    """
    n_outputs = host.n_classes if n_outputs is None else n_outputs
    if n_outputs < host.n_classes:
        raise DataError(f"{n_outputs} outputs cannot name {host.n_classes} classes")
    xp = backend.xp
    itemsize = xp.finfo(dtype).bits // 8
    n, n_train = sum(len(split[1]) for split in (host.train, host.validation, host.test)), len(host.train[1])
    needed = n * (math.prod(host.image_shape) * itemsize + 8) + n_train * n_outputs * itemsize
    backend.check_memory(needed, f"the data as {n:,} {host.image_shape} images on {backend.name}")
    train_x, train_y = pin_split(backend, *host.train, dtype)
    classes = xp.arange(n_outputs, dtype=xp.int64, device=backend.device)
    one_hot = xp.astype(xp.expand_dims(train_y, axis=1) == classes, dtype)
    validation, test = pin_split(backend, *host.validation, dtype), pin_split(backend, *host.test, dtype)
    return DeviceData(
        training_data=(train_x, one_hot),
        validation_data=validation,
        test_data=test,
        n_inputs=host.image_shape[0] * host.image_shape[1],
        n_classes=host.n_classes,
        nbytes=sum(_nbytes(xp, a) for a in (train_x, train_y, one_hot, *validation, *test)),
    )


def _nbytes(xp, a) -> int:
    info = xp.finfo if xp.isdtype(a.dtype, "real floating") else xp.iinfo
    return a.size * info(a.dtype).bits // 8
