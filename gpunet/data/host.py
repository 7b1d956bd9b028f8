"""The dataset on the host: three splits of flat images and labels, read from IDX files."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError, DataError
from ..io.find import FILES, data_dir, find_file
from ..io.idx import check_pair, read_header, read_images_labels
from ..settings import Settings


@dataclass
class HostData:
    """The three splits on the host: images (n, rows*cols), uint8 pixels or floats in [0, 1], and labels (n,)."""

    train: tuple[np.ndarray, np.ndarray]
    validation: tuple[np.ndarray, np.ndarray]
    test: tuple[np.ndarray, np.ndarray]
    image_shape: tuple[int, int]
    n_classes: int
    source: str = ""  # the folder or file it was read from
    files: tuple = ()  # the files read

    def describe(self) -> str:
        rows, cols = self.image_shape
        counts = " / ".join(str(len(split[1])) for split in (self.train, self.validation, self.test))
        nbytes = sum(a.nbytes for split in (self.train, self.validation, self.test) for a in split)
        return (
            f"{self.source} | {counts} train / validation / test | {rows}x{cols} images, "
            f"{self.n_classes} classes | {nbytes / 1e6:.1f} MB"
        )

    def __repr__(self) -> str:  # the sizes, not the arrays
        return f"HostData({self.describe()})"

    def check_fits(self, sizes) -> None:
        """A network of layer ``sizes`` fits this data: one input per pixel, at least one output per class."""
        rows, cols = self.image_shape
        if sizes[0] != rows * cols:
            raise ConfigError(f"--sizes must start with {rows * cols} (the {rows}x{cols} image size), got {sizes[0]}")
        if sizes[-1] < self.n_classes:
            raise ConfigError(
                f"--sizes must end with at least {self.n_classes} outputs (one per class), got {sizes[-1]}"
            )


def load_host(folder=None, validation_size: int = 10_000) -> HostData:
    """Read the IDX files and split training into train + the last ``validation_size`` as validation."""
    validation_size = Settings(validation_size=validation_size).validation_size
    folder = data_dir(folder)
    paths = {k: find_file(folder, stem) for k, stem in FILES.items()}
    # Every header first, checked against the others, so a file claiming more than its partner decodes nothing.
    heads = {k: read_header(path) for k, path in paths.items()}
    check_pair(heads["train_images"], heads["train_labels"])
    check_pair(heads["test_images"], heads["test_labels"])
    train_shape, test_shape = heads["train_images"].shape, heads["test_images"].shape
    if train_shape[1:] != test_shape[1:]:
        raise DataError(paths["test_images"], f"images are {test_shape[1:]}, training images are {train_shape[1:]}")
    if not 0 <= validation_size < train_shape[0]:
        raise DataError(
            paths["train_images"], f"validation size {validation_size} does not fit {train_shape[0]} training images"
        )
    train_x, train_y = read_images_labels(paths["train_images"], paths["train_labels"])
    test_x, test_y = read_images_labels(paths["test_images"], paths["test_labels"])
    n_train = len(train_x) - validation_size
    flat = lambda a: a.reshape(len(a), math.prod(a.shape[1:]))  # noqa: E731
    n_classes = _classes(train_y, test_y, paths["test_labels"])
    return HostData(
        train=(flat(train_x[:n_train]), train_y[:n_train]),
        validation=(flat(train_x[n_train:]), train_y[n_train:]),
        test=(flat(test_x), test_y),
        image_shape=tuple(train_x.shape[1:]),
        n_classes=n_classes,
        source=str(folder.resolve()),
        files=tuple(paths.values()),
    )


def _classes(training_labels, test_labels, where) -> int:
    """The number of classes is what the training labels name; a test label beyond them is corrupt data."""
    n_classes = int(training_labels.max(initial=0)) + 1
    if len(test_labels) and test_labels.max() >= n_classes:
        raise DataError(
            where, f"test label {test_labels.max()} is outside the {n_classes} classes of the training labels"
        )
    return n_classes
