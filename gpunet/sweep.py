"""``gpunet sweep``: many networks of chapter 1 at once, over a grid of seeds, learning rates, sizes and mini-batches.

Every member starts exactly as ``gpunet train --seed S`` does: ``Network(sizes, seed=S)`` draws its
parameters, and the same generator then draws each epoch's shuffle. Members that share sizes, mini-batch
size and dtype are trained as one stack (the kernel interface's leading member axis, with an eta per
member), in chunks; after each epoch the kernel scores the whole stack at once (``EpochKernel.score``, what
``Network.evaluate`` counts), as a single run's SGD scores its one network, so its per-epoch counts equal
``gpunet train --seed S``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .backend import Backend, get_backend
from .data import DataError
from .errors import ConfigError
from .kernels import choose, device_for
from .network import Network, mini_batch
from .sweep_grid import Config, Grid
from .validation import POSITIVE_INT, check


@dataclass
class NetworkRecord:
    """What one network of a sweep did: correct answers after each epoch (epochs from 0, as in train)."""

    config: Config
    seed: int
    correct: list[int]
    total: int
    seconds: float  # its share of the wall time of its stack's epochs (training and evaluation)
    kernel: str = ""  # the epoch kernel that trained it

    @property
    def best_epoch(self) -> int:
        return int(np.argmax(self.correct))  # the first epoch of the best count

    @property
    def best_accuracy(self) -> float:
        return self.correct[self.best_epoch] / self.total

    @property
    def final_accuracy(self) -> float:
        return self.correct[-1] / self.total

    @property
    def rank(self) -> tuple[int, int]:
        """Networks of one configuration compare by this: the higher best count, then the earlier seed."""
        return self.correct[self.best_epoch], -self.seed


@dataclass
class Best:
    """The best network of one configuration seen so far: its parameters at its best epoch, on the host."""

    config: Config
    seed: int
    epoch: int
    correct: int
    weights: list = field(repr=False)
    biases: list = field(repr=False)
    rng_state: dict = field(repr=False)  # the shuffle generator after that epoch, for `train --resume`

    @property
    def rank(self) -> tuple[int, int]:
        return self.correct, -self.seed  # as NetworkRecord.rank

    def network(self) -> Network:
        net = Network(list(self.config.sizes), seed=self.seed, device="cpu", dtype=self.config.dtype)
        net.weights, net.biases = list(self.weights), list(self.biases)
        net.rng.bit_generator.state = self.rng_state
        net.epoch = self.epoch + 1
        return net


def better(a: Best | None, b: Best) -> Best:
    """The higher count wins; a tie goes to the earlier seed."""
    return b if a is None or b.rank > a.rank else a


def threads() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _epoch_runner(backend: Backend, x, y, sizes, dtype: str, batch: int, name: str | None = None):
    """The epoch kernel for one stack, chosen by the registry as for a single run, compiled outside the clock."""
    kernel, _ = choose(backend, list(sizes), dtype, batch, name)
    run = kernel(backend, x, y)
    xp = backend.xp
    zeros = [xp.zeros((1, n_out, n_in), dtype=backend.dtype(dtype), device=backend.device)
             for n_in, n_out in zip(sizes[:-1], sizes[1:])]  # fmt: skip
    run(zeros, [w[:, :, :1] for w in zeros], np.empty((1, 0), np.int64), batch, np.ones(1))
    return run


@dataclass
class ChunkResult:
    records: list[NetworkRecord]
    best: dict  # Config -> Best, the chunk's best network of each configuration


def run_chunk(backend: Backend, data, members: list[tuple[Config, int]], epochs: int, eval: str,
              kernels: dict | None = None, progress: Callable[[int], None] | None = None,
              kernel_name: str | None = None) -> ChunkResult:  # fmt: skip
    """Train one stack of members (same sizes, mini-batch size and dtype) for ``epochs``, scoring every epoch.

    ``data`` is a :class:`gpunet.data.DeviceData` on ``backend``; ``kernels`` caches one prepared kernel
    per stack key across chunks; ``progress(k)`` hears of every k network-epochs done.
    """
    sizes, batch, dtype = members[0][0].stack
    xp = backend.xp
    x, y = data.training_data
    batch = mini_batch(batch, x.shape[0])
    host = get_backend("cpu")
    nets = [Network(list(sizes), seed=seed, device=host, dtype=dtype) for _, seed in members]
    weights = [backend.asarray(np.stack([n.weights[l] for n in nets])) for l in range(len(sizes) - 1)]
    biases = [backend.asarray(np.stack([n.biases[l] for n in nets])) for l in range(len(sizes) - 1)]
    eta = np.asarray([c.eta for c, _ in members])
    kernels = {} if kernels is None else kernels
    if (sizes, batch, dtype) not in kernels:
        kernels[sizes, batch, dtype] = _epoch_runner(backend, x, y, sizes, dtype, batch, kernel_name)
    kernel = kernels[sizes, batch, dtype]
    scored = {"test": data.test_data, "validation": data.validation_data}[eval]
    n, total = x.shape[0], scored[0].shape[0]
    correct = np.zeros((len(members), epochs), np.int64)
    best_weights, best_biases = weights, biases  # replaced by xp.where in the first epoch
    best_states: list = [None] * len(members)
    seconds = 0.0
    for epoch in range(epochs):
        start = time.perf_counter()
        order = np.stack([net.rng.permutation(n) for net in nets])  # each member's own shuffle, as in SGD
        weights, biases = kernel(weights, biases, order, batch, eta)
        correct[:, epoch] = backend.to_host(kernel.score(weights, biases, *scored))  # one read for the stack
        improved = correct[:, epoch] > (correct[:, :epoch].max(axis=1) if epoch else -1)
        mask = xp.reshape(backend.asarray(improved), (-1, 1, 1))
        best_weights = [xp.where(mask, w, best) for w, best in zip(weights, best_weights)]
        best_biases = [xp.where(mask, b, best) for b, best in zip(biases, best_biases)]
        for k in np.flatnonzero(improved):
            best_states[k] = nets[k].rng.bit_generator.state
        backend.synchronize()
        seconds += time.perf_counter() - start
        if progress is not None:
            progress(len(members))
    records = [
        NetworkRecord(c, s, correct[i].tolist(), total, seconds / len(members), kernel.name)
        for i, (c, s) in enumerate(members)
    ]
    winners: dict = {}  # Config -> the index of its best member in this chunk
    for i, r in enumerate(records):
        if r.config not in winners or r.rank > records[winners[r.config]].rank:
            winners[r.config] = i
    best = {
        c: Best(c, records[i].seed, records[i].best_epoch, records[i].correct[records[i].best_epoch],
                [backend.to_host(w[i, ...]) for w in best_weights], [backend.to_host(b[i, ...]) for b in best_biases],
                best_states[i])
        for c, i in winners.items()
    }  # fmt: skip
    return ChunkResult(records, best)


def pin_for(pinned: dict, host, backend: Backend, config: Config):
    """The data on ``backend`` as a stack of ``config`` trains on it, as train pins it: in its dtype, with
    one-hot targets as wide as its output layer. Pinned once per (dtype, outputs), kept in ``pinned``."""
    from .data import pin

    key = config.dtype, config.sizes[-1]
    if key not in pinned:
        pinned[key] = pin(host, backend, backend.dtype(config.dtype), config.sizes[-1])
    return pinned[key]


def chunks(networks: Iterable[tuple[Config, int]], size: int) -> list[list[tuple[Config, int]]]:
    """The networks grouped by stack key, each group cut into chunks of at most ``size`` members."""
    groups: dict = {}
    for c, s in networks:
        groups.setdefault(c.stack, []).append((c, s))
    return [g[k : k + size] for g in groups.values() for k in range(0, len(g), size)]


def default_chunk(device: str, cores: int) -> int:
    """Networks per stack: a few per core on the CPU (a Ctrl-C loses at most one chunk); many on a GPU."""
    return 1024 if device.startswith("cuda") else 4 * cores


@dataclass(frozen=True)
class DataSource:
    """Where the data comes from, as the command line names it: so a Dask worker can read it itself."""

    data_dir: str | None = None  # IDX files or mnist.pkl.gz (default: $GPUNET_DATA or ./data)
    data: str | None = None  # the book's mnist.pkl.gz
    validation_size: int = 10_000
    download: bool = True
    mirror: tuple[str, ...] | None = None

    def load(self):
        from types import SimpleNamespace

        from .commands import host_data

        return host_data(SimpleNamespace(**asdict(self)))


class Sweep:
    """A grid of networks trained here or on a Dask cluster, its results kept in ``out`` as each chunk ends.

    ``run()`` returns one :class:`NetworkRecord` per network, in the grid's order; ``best`` holds the best
    network of each configuration. ``Sweep.resume(out)`` continues an interrupted sweep with what is missing.
    """

    def __init__(self, grid: Grid, source: DataSource = DataSource(), device: str = "auto", out=None,
                 save_best=None, scheduler: str | None = None, chunk: int | None = None,
                 kernel: str | None = None):  # fmt: skip
        chunk = None if chunk is None else check("--chunk", chunk, POSITIVE_INT)
        self.grid, self.source, self.device, self.scheduler, self.chunk = grid, source, device, scheduler, chunk
        self.out = None if out is None else Path(out)
        self.save_best, self.kernel = save_best, kernel  # kernel: None lets the registry choose, as train does
        self.records: dict = {}  # (config, seed) -> NetworkRecord, finished networks only
        self.best: dict = {}  # Config -> Best
        self.manifest: dict = {}
        self._resuming = False

    @classmethod
    def resume(cls, out, device: str | None = None, save_best=None, scheduler: str | None = None,
               kernel: str | None = None) -> Sweep:  # fmt: skip
        from . import sweep_files

        out = Path(out)
        manifest, records = sweep_files.read(out)
        try:
            s = manifest["settings"]
            source = DataSource(**{**s["data_source"], "mirror": tuple(s["data_source"]["mirror"] or ()) or None})
            grid, chunk = Grid.from_json(s["grid"]), s["chunk"]
            device = device or s["device"]
            kernel = kernel or s.get("kernel")
        except (KeyError, TypeError, ValueError) as e:
            raise DataError(f"{out}: the sweep's manifest is damaged ({type(e).__name__}: {e})") from None
        sweep = cls(grid, source, device, out, save_best, scheduler, chunk, kernel)
        planned = set(sweep.grid.networks())
        sweep.records = {(r.config, r.seed): r for r in records if (r.config, r.seed) in planned}
        for config in sweep.grid.configs():
            path = sweep_files.best_path(out, config)
            if path.is_file():
                sweep.best[config] = sweep_files.load_best(path, config)
        sweep.manifest, sweep._resuming = manifest, True
        return sweep

    def missing(self) -> list[tuple[Config, int]]:
        return [key for key in self.grid.networks() if key not in self.records]

    def run(self, progress: Callable[[int], None] | None = None,
            on_network: Callable[[NetworkRecord], None] | None = None) -> list[NetworkRecord]:  # fmt: skip
        """Train what is missing; ``progress(k)``: k more network-epochs done; ``on_network``: one finished."""
        from .commands import _check_fits
        from .runs import check_writable, manifest, new_run_id

        if self.out is not None:  # the folder is made if missing; its parent must exist
            check_writable(self.out / "sweep.jsonl" if self.out.is_dir() else self.out, "--out")
        if self.save_best is not None:
            check_writable(self.save_best, "--save-best")
        if self.out is not None and not self._resuming and (self.out / "sweep.jsonl").exists():
            raise ConfigError(f"--out {self.out}: already holds a sweep; continue it with --resume {self.out}")
        client = None
        if self.scheduler:
            from . import sweep_dist

            client = sweep_dist.connect(self.scheduler)  # fails in seconds, before the data is read
        try:
            if client is not None:
                sweep_dist.check_gpus(client, self.device)
            sizes, batch, dtype = self.grid.configs()[0].stack  # auto weighs the kernels for it, as train does
            backend = get_backend("cpu") if client else device_for(self.device, list(sizes), dtype, batch)
            host = self.source.load()
            for sizes in self.grid.sizes:
                _check_fits(list(sizes), host)
            if self.grid.eval == "validation" and len(host.validation[1]) == 0:
                raise ConfigError("--eval validation needs --validation-size > 0")
            if self.grid.eval == "test" and len(host.test[1]) == 0:  # as train refuses it
                raise ConfigError(f"{host.source} has no test images: use --eval validation")
            where = (backend.name, threads()) if client is None else (self.device, 4)  # a worker's cores: 4 assumed
            chunk = self.chunk or default_chunk(*where)
            settings = {"grid": self.grid.to_json(), "data_source": asdict(self.source), "device": self.device,
                        "kernel": self.kernel, "chunk": chunk, "scheduler": self.scheduler,
                        "validation_size": len(host.validation[1])}  # fmt: skip
            fresh = manifest(backend, settings, data_checksums(host), 0, new_run_id())
            if self._resuming and not same_data(fresh["data"], self.manifest.get("data", {})):
                raise ConfigError(f"--resume {self.out}: the data differs from the data the sweep started on")
            self.manifest = {"kind": "sweep", **fresh} if not self._resuming else self.manifest
            if self.out is not None:
                self.out.mkdir(exist_ok=True)
                self._write()
            todo = chunks(self.missing(), chunk)
            if client is None:
                pinned: dict = {}
                kernels: dict = {}
                for members in todo:
                    data = pin_for(pinned, host, backend, members[0][0])
                    self._finished(run_chunk(backend, data, members, self.grid.epochs, self.grid.eval, kernels,
                                             progress, self.kernel), on_network)  # fmt: skip
            else:
                self._run_on_cluster(client, todo, progress, on_network)
        finally:
            if client is not None:
                client.close()
            self._save_best()
        return self.results()

    def _run_on_cluster(self, client, todo, progress, on_network) -> None:
        from distributed import as_completed

        from . import sweep_dist

        futures = [
            sweep_dist.submit(
                client,
                members,
                self.grid.epochs,
                self.grid.eval,
                self.device,
                self.source,
                self.manifest["data"],
                self.kernel,
            )  # fmt: skip
            for members in todo
        ]
        try:
            for future in as_completed(futures, loop=client.loop):
                result = future.result()
                if progress is not None:
                    progress(len(result.records) * self.grid.epochs)
                self._finished(result, on_network)
        finally:
            client.cancel(futures)

    def _finished(self, result: ChunkResult, on_network) -> None:
        from . import sweep_files

        for r in result.records:
            self.records[r.config, r.seed] = r
        improved = []
        for config, b in result.best.items():
            if better(self.best.get(config), b) is b:
                self.best[config] = b
                improved.append(config)
        if self.out is not None:
            self._write()
            for config in improved:
                sweep_files.save_best(sweep_files.best_path(self.out, config), self.best[config], self.manifest,
                                      self.grid)  # fmt: skip
        if on_network is not None:
            for r in result.records:
                on_network(r)

    def _write(self) -> None:
        from . import sweep_files

        assert self.out is not None
        sweep_files.write(self.out, self.manifest, self.results(), self.grid.eval)

    def _save_best(self) -> None:
        from . import sweep_files

        if self.save_best is None or not self.best:
            return
        for config, path in sweep_files.save_best_paths(self.save_best, self.grid.configs()).items():
            if config in self.best:
                sweep_files.save_best(path, self.best[config], self.manifest, self.grid)

    def results(self) -> list[NetworkRecord]:
        """The finished networks, in the grid's order."""
        return [self.records[key] for key in self.grid.networks() if key in self.records]


def data_checksums(host) -> dict:
    """{path: sha256} of the files the data was read from, as the manifest records them."""
    from .runs import file_sha256

    return {str(p): file_sha256(p) for p in host.files}


def same_data(a: dict, b: dict) -> bool:
    """Two {path: sha256} name the same data: files compare by name and checksum, so the same data read
    from another folder or machine is the same."""
    by_name = lambda checksums: {Path(p).name: h for p, h in checksums.items()}
    return by_name(a) == by_name(b)


def sweep(seeds, eta=3.0, sizes=(784, 30, 10), batch_size=10, dtype="float32", epochs: int = 30,
          eval: str = "test", device: str = "auto", data_dir=None, validation_size: int = 10_000, out=None,
          save_best=None, scheduler: str | None = None, chunk: int | None = None,
          kernel: str | None = None) -> list[NetworkRecord]:  # fmt: skip
    """Train every network of the grid and return one record per network (see :class:`Sweep`).

    ``seeds`` is a list or a string like "1-100"; ``eta``, ``sizes``, ``batch_size`` and ``dtype`` are one
    value or a list (``sizes`` a list of layer-size lists for several).
    """
    grid = Grid.create(seeds, eta, sizes, batch_size, dtype, epochs, eval)
    source = DataSource(None if data_dir is None else str(data_dir), validation_size=validation_size)
    return Sweep(grid, source, device, out, save_best, scheduler, chunk, kernel).run()
