"""Saved networks and checkpoints (.npz): written atomically, read back against one schema."""

from __future__ import annotations

import contextlib
import json
import math
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..book.schedule import Schedule
from ..errors import DataError, GpunetError
from ..settings import CHAPTER_1, EPOCHS, Settings, check, check_sizes
from .fs import atomic_write, check_memory, open_regular, parse_json, refuse_temporary

MAX_SIZES_BYTES = 1 << 16  # the sizes of a thousand-layer network
MAX_STATE_BYTES = 1 << 26  # the JSON of settings, manifest and epoch times: far less in practice


def save_network(net, path, record: dict) -> None:
    if Path(path).exists() and not Path(path).is_file():  # the rename would replace a device node or a FIFO
        raise DataError(path, "not a regular file (a pipe, device or socket); give a file name")
    backend = net.backend
    arrays: dict[str, Any] = {"sizes": np.asarray(net.sizes, np.int64)}
    for l, (w, b) in enumerate(zip(net.weights, net.biases)):
        arrays[f"w{l}"], arrays[f"b{l}"] = backend.to_host(w), backend.to_host(b)
    objective = {"cost": net.cost.name, "init": net.init, "lmbda": net.lmbda}  # what the parameters minimise
    state = {"epoch": net.epoch, "rng": net.rng.bit_generator.state, "objective": objective, "record": record}
    state["schedule"] = net.schedule.to_json()  # where chapter 3's rules stand, for a resumed run
    arrays["state"] = np.asarray(json.dumps(state))  # a unicode string: no pickle needed to read it
    with atomic_write(path) as f:
        np.savez(f, allow_pickle=False, **arrays)  # as load() reads it


@dataclass(frozen=True)
class ModelFile:
    """What a gpunet model file holds, every value checked: layer sizes, parameters of one dtype (host arrays),
    epochs trained, the generator of the shuffles, where chapter 3's rules stand, the objective (``cost``,
    ``init``, ``lmbda``: chapter 1's in a file from before chapter 3) and what was stored beside them (run id,
    settings, ...)."""

    sizes: list[int]
    weights: list[np.ndarray]
    biases: list[np.ndarray]
    dtype: str
    epoch: int
    rng: np.random.Generator
    record: dict
    objective: dict
    schedule: Schedule


class _Members:
    """The members of a gpunet .npz read one by one, each checked before a byte of its data is inflated."""

    def __init__(self, zf: zipfile.ZipFile, path: Path):
        self.zf, self.path = zf, path

    def bad(self, what: str) -> DataError:
        return DataError(self.path, f"not a gpunet model: {what}")

    def refused(self, name: str, dtype) -> DataError:
        return DataError(self.path, f"refused: array {name!r} has dtype {dtype}, not a gpunet model")

    def header(self, name: str):
        """(open member, shape, dtype, Fortran order, data bytes declared) of member ``name``."""
        try:
            info = self.zf.getinfo(f"{name}.npy")
        except KeyError:
            raise self.bad(f"no {name!r} array") from None
        f = self.zf.open(info)
        try:
            version = np.lib.format.read_magic(f)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, fortran, dtype = read(f)
        except BaseException:
            f.close()
            raise
        return f, shape, dtype, fortran, info.file_size - f.tell()

    def array(self, name: str, shape=None, kinds="f", limit=None) -> np.ndarray:
        """Member ``name``, refused unless of the given shape (when known) and dtype kind, and not over ``limit``."""
        f, stored_shape, dtype, fortran, declared = self.header(name)
        with f:
            if dtype.hasobject or dtype.kind not in kinds:
                raise self.refused(name, dtype)
            if shape is not None and tuple(stored_shape) != tuple(shape):
                raise self.bad(f"array {name!r} has shape {stored_shape}, the sizes need {tuple(shape)}")
            nbytes = math.prod(stored_shape) * dtype.itemsize
            if declared != nbytes:
                raise self.bad(f"array {name!r} declares {declared} bytes, its shape needs {nbytes}")
            if limit is not None and nbytes > limit:
                raise self.bad(f"array {name!r} is {nbytes} bytes, more than any gpunet model has ({limit})")
            data = f.read(nbytes)
        if len(data) != nbytes:
            raise self.bad(f"array {name!r} is cut short")
        flat = np.frombuffer(data, dtype)
        return flat.reshape(tuple(stored_shape), order="F" if fortran else "C").astype(dtype.newbyteorder("="))

    def state(self) -> dict:
        text = self.array("state", shape=(), kinds="U", limit=MAX_STATE_BYTES)
        state = parse_json(str(text), "its state", self.bad)
        if not isinstance(state, dict):
            raise self.bad("its state is not a JSON object")
        return state


@contextlib.contextmanager
def _open_model(path):
    """The :class:`_Members` of the model file ``path``, closed on every path."""
    path = Path(path)
    refuse_temporary(path)
    with open_regular(path, "gpunet model (.npz)") as raw:
        try:
            zf = zipfile.ZipFile(raw)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
            raise DataError(path, f"not a gpunet model ({e})") from None
        with zf:
            try:
                yield _Members(zf, path)
            except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError, RuntimeError) as e:
                # a damaged member: bad CRC, cut deflate stream, unsupported compression, bad npy header
                raise DataError(path, f"not a gpunet model ({type(e).__name__}: {e})") from None


def _check_rng(model: _Members, rng) -> np.random.Generator:
    generator = np.random.Generator(np.random.PCG64())
    if not (isinstance(rng, dict) and rng.get("bit_generator") == "PCG64" and isinstance(rng.get("state"), dict)):
        raise model.bad("its state has no PCG64 generator state ('rng')")
    values = [rng["state"].get("state"), rng["state"].get("inc"), rng.get("has_uint32"), rng.get("uinteger")]
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise model.bad("its generator state ('rng') has missing or mistyped fields")
    try:
        generator.bit_generator.state = rng
    except (TypeError, ValueError, KeyError, OverflowError) as e:
        raise model.bad(f"its generator state ('rng') is refused by NumPy ({e})") from None
    return generator


def read_model(path) -> ModelFile:
    """What the gpunet model file ``path`` holds, the whole file checked against one schema."""
    path = Path(path)
    with _open_model(path) as model:
        sizes = model.array("sizes", kinds="iu", limit=MAX_SIZES_BYTES)
        if sizes.ndim != 1:
            raise model.bad(f"sizes has shape {sizes.shape}, not a list")
        sizes = check_sizes(sizes.tolist(), error=model.bad)
        f, _, dtype, _, _ = model.header("w0")
        f.close()
        if str(dtype.newbyteorder("=")) not in ("float32", "float64"):
            raise model.refused("w0", dtype)
        shapes = [((n_out, n_in), (n_out, 1)) for n_in, n_out in zip(sizes[:-1], sizes[1:])]
        check_memory(sum(math.prod(w) + math.prod(b) for w, b in shapes) * dtype.itemsize, f"{path}: the parameters")
        weights: list[np.ndarray] = []
        biases: list[np.ndarray] = []
        for l, (w_shape, b_shape) in enumerate(shapes):
            for name, shape, into in ((f"w{l}", w_shape, weights), (f"b{l}", b_shape, biases)):
                a = model.array(name, shape)
                if a.dtype != dtype.newbyteorder("="):
                    raise model.bad(f"array {name!r} is {a.dtype}, w0 is {dtype}")
                if not np.isfinite(a).all():
                    raise model.bad(f"array {name!r} holds NaN or infinite values")
                into.append(a)
            _check_sums(model, l, weights[l], biases[l])
        state = model.state()
        epoch = check("its epoch counter", state.get("epoch"), EPOCHS, error=model.bad)
        generator = _check_rng(model, state.get("rng"))
        record = state.get("record", {})
        if not isinstance(record, dict):
            raise model.bad("its record is not a JSON object")
        objective = _check_objective(model, state.get("objective", CHAPTER_1))
        schedule = Schedule.from_json(state["schedule"], model.bad) if "schedule" in state else Schedule()
    return ModelFile(sizes, weights, biases, str(weights[0].dtype), epoch, generator, record, objective, schedule)


def _check_objective(model: _Members, objective) -> dict:
    """The cost, initialisation and λ a model file says it was trained with, each checked as Settings checks it."""
    if not isinstance(objective, dict) or set(objective) != set(CHAPTER_1):
        raise model.bad(f"its objective is not an object of {', '.join(CHAPTER_1)}")
    try:
        s = Settings(**objective)
    except GpunetError as e:
        raise model.bad(f"its objective: {e}") from None
    return {"cost": s.cost, "init": s.init, "lmbda": s.lmbda}


def _check_sums(model: _Members, l: int, w: np.ndarray, b: np.ndarray) -> None:
    """None when no weighted input z = w a + b of layer ``l`` can overflow its dtype, the activations a being in
    [0, 1] (eq. 22): each row's |w| summed, plus |b|, within the dtype's largest; else DataError."""
    with np.errstate(over="ignore"):  # float64 sums past 1.8e308 are inf, and refused as such
        reach = float((np.abs(w).sum(axis=1, dtype=np.float64) + np.abs(b[:, 0])).max(initial=0.0))
    largest = float(np.finfo(w.dtype).max)
    if not reach <= largest:
        raise model.bad(
            f"array 'w{l}' holds weights so large that a neuron's input could reach {reach:.3g}, past "
            f"{w.dtype}'s largest number {largest:.3g}"
        )


def stored_record(path) -> dict:
    """What was stored beside a gpunet model file's parameters (run id, settings, ...); DataError if not a model."""
    with _open_model(path) as model:
        record = model.state().get("record")
    return record if isinstance(record, dict) else {}


def stored_run(path) -> str | None:
    """The run id stored in a gpunet model file (None in one saved outside a run); DataError if not a model."""
    run = stored_record(path).get("run")
    return run if isinstance(run, str) else None
