"""A sweep: a grid of networks trained in stacks, here or on a Dask cluster, its results kept as each chunk
ends, resumable (:class:`Sweep`); :func:`sweep` is the one-call Python API."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from .. import data as datasets
from ..backend import get_backend
from ..errors import ConfigError, DataError, say
from ..io import peers
from ..io.fs import only_writer, remove_empty
from ..io.identity import checksums, matches
from ..kernels import device_for
from ..runs import RunFiles, check_writable, manifest, new_run_id
from ..settings import BOOK, POSITIVE_INT, check
from . import dist, outputs
from .grid import Config, Grid
from .stacks import ChunkResult, NetworkRecord, better, default_chunk, pin_for, run_chunk, threads
from .storage import check_storable


@dataclass(frozen=True)
class DataSource:
    """Where the data comes from, as the command line names it: so a Dask worker can read it itself."""

    data_dir: str | None = None  # IDX files or mnist.pkl.gz (default: $GPUNET_DATA or ./data)
    data: str | None = None  # the book's mnist.pkl.gz
    validation_size: int = BOOK.validation_size
    download: bool = True
    mirror: tuple[str, ...] | None = None

    def load(self):
        return datasets.load(self.data_dir, self.data, self.validation_size, self.download, self.mirror)


class Sweep:
    """A grid of networks trained here or on a Dask cluster, its results kept in ``out`` as each chunk ends.

    ``run()`` returns one :class:`NetworkRecord` per network, in the grid's order; ``best`` holds the best
    network of each configuration. ``Sweep.resume(out)`` continues an interrupted sweep with what is missing.
    ``save_best`` files are refused, as ``train`` refuses its outputs, when they hold another run's model or
    something else, unless ``force``.
    """

    def __init__(
        self,
        grid: Grid,
        source: DataSource = DataSource(),
        *,
        device: str = "auto",
        out=None,
        save_best=None,
        scheduler: str | None = None,
        chunk: int | None = None,
        kernel: str | None = None,
        force: bool = False,
    ):
        chunk = None if chunk is None else check("--chunk", chunk, POSITIVE_INT)
        self.grid, self.source, self.device, self.scheduler, self.chunk = grid, source, device, scheduler, chunk
        self.out = None if out is None else Path(out)
        self.save_best, self.kernel = save_best, kernel  # kernel: None lets the registry choose, as train does
        self.force = force
        self.records: dict = {}  # (config, seed) -> NetworkRecord, finished networks only
        self.best: dict = {}  # Config -> Best
        self.manifest: dict = {}
        self._resuming = False

    @classmethod
    def resume(
        cls,
        out,
        *,
        device: str | None = None,
        save_best=None,
        scheduler: str | None = None,
        kernel: str | None = None,
        force: bool = False,
    ) -> Sweep:
        """The sweep kept in ``out``, with its grid, data, device, kernel and ``--save-best`` (``save_best``
        replaces the last one, and is kept for the next resume)."""
        out = Path(out)
        manifest, records = outputs.read(out)
        try:
            s = manifest["settings"]
            source = DataSource(**{**s["data_source"], "mirror": tuple(s["data_source"]["mirror"] or ()) or None})
            grid, chunk = Grid.from_json(s["grid"]), s["chunk"]
            device = device or s["device"]
            kernel = kernel or s["kernel"]
            kept = s["save_best"]
            if save_best is not None:
                s["save_best"] = kept = _absolute(save_best)
            elif kept is not None and out.resolve() not in Path(kept).resolve().parents:  # the folder's author chose it
                say(f"the sweep's --save-best {kept} is not inside {out}; not writing it (--save-best PATH again)")
                kept = None
            save_best = kept
        except (KeyError, TypeError, ValueError) as e:
            raise DataError(f"{out}: the sweep's manifest is damaged ({type(e).__name__}: {e})") from None
        options = dict(device=device, save_best=save_best, scheduler=scheduler, kernel=kernel, force=force)
        sweep = cls(grid, source, out=out, chunk=chunk, **options)
        sweep.records = {(r.config, r.seed): r for r in records if sweep.grid.holds(r.config, r.seed)}
        for config in sweep.grid.configs():
            path = outputs.best_path(out, config)
            if path.is_file():
                sweep.best[config] = outputs.load_best(path, config)
        sweep.manifest, sweep._resuming = manifest, True
        return sweep

    def backend(self):
        """The device the stacks train on here, one line if it is not usable; auto weighs the kernels for the
        first configuration, as train does."""
        sizes, batch, dtype, _, _ = self.grid.configs()[0].stack
        return device_for(self.device, list(sizes), dtype, batch)

    def missing(self) -> list[tuple[Config, int]]:
        return [key for key in self.grid.iter_networks() if key not in self.records]

    def n_missing(self) -> int:
        """The networks still to train, counted without listing them (records hold only the grid's)."""
        return self.grid.count - len(self.records)

    def todo(self, size: int) -> Iterator[list[tuple[Config, int]]]:
        """The missing networks in chunks of at most ``size`` of one stack, the stacks that pin the same data
        one after another; made as they are asked for, so no grid is ever listed whole."""
        for sizes, batch, dtype, cost, lmbda in self.grid.stacks():
            chunk: list[tuple[Config, int]] = []
            for eta, init in itertools.product(self.grid.etas, self.grid.inits):
                config = Config(sizes, eta, batch, dtype, cost, lmbda, init)
                for seed in self.grid.seeds:
                    if (config, seed) not in self.records:
                        chunk.append((config, seed))
                        if len(chunk) == size:
                            yield chunk
                            chunk = []
            if chunk:
                yield chunk

    def run(
        self, progress: Callable[[int], None] | None = None, on_network: Callable[[NetworkRecord], None] | None = None
    ) -> list[NetworkRecord]:
        """Train what is missing; ``progress(k)``: k more network-epochs done; ``on_network``: one finished."""
        if self.out is None:
            return self._guarded(progress, on_network)
        if self.out.exists() and not self.out.is_dir():  # the folder is made if missing; its parent must exist
            why = "a file, not a folder; give a folder for the sweep's files (it is made if missing)"
            raise ConfigError(f"--out {self.out}: {why}")
        check_writable(self.out / "sweep.jsonl" if self.out.is_dir() else self.out, "--out")
        made = not self.out.exists()
        self.out.mkdir(exist_ok=True)
        try:  # one sweep at a time writes the folder, as one training writes a checkpoint
            with only_writer(self.out / outputs.LOG, "--resume" if self._resuming else "--out", "sweep"):
                return self._guarded(progress, on_network)
        finally:
            if made:
                remove_empty(self.out)  # only if nothing was kept in it

    def _guarded(self, progress, on_network) -> list[NetworkRecord]:
        """The sweep under its run id, each --save-best file checked (and locked) as train checks --save."""
        if self.out is not None and not self._resuming and (self.out / "sweep.jsonl").exists():
            raise ConfigError(f"--out {self.out}: already holds a sweep; continue it with --resume {self.out}")
        check_storable(self.grid, self.out)
        kept = self.manifest.get("run") if self._resuming else None
        run = kept if isinstance(kept, str) else new_run_id()
        with contextlib.ExitStack() as files:
            for path in self._save_best_paths().values():
                files.enter_context(RunFiles({"--save-best": path}, run, force=self.force))
            return self._run(run, progress, on_network)

    def _run(self, run, progress, on_network) -> list[NetworkRecord]:
        client = None
        if self.scheduler:
            client = dist.connect(self.scheduler)  # fails in seconds, before the data is read
        try:
            if client is not None:
                dist.check_gpus(client, self.device)
            backend = get_backend("cpu") if client else self.backend()
            host = self.source.load()
            for sizes in self.grid.sizes:
                host.check_fits(list(sizes))
            if self.grid.eval == "validation" and len(host.validation[1]) == 0:
                raise ConfigError("--eval validation needs --validation-size > 0")
            if self.grid.eval == "test" and len(host.test[1]) == 0:  # as train refuses it
                raise ConfigError(f"{host.source} has no test images: use --eval validation")
            where = (backend.name, threads()) if client is None else (self.device, 4)  # a worker's cores: 4 assumed
            chunk = self.chunk or default_chunk(*where)
            settings = {
                "grid": self.grid.to_json(),
                "data_source": asdict(self.source),
                "device": self.device,
                "kernel": self.kernel,
                "chunk": chunk,
                "scheduler": self.scheduler,
                "validation_size": len(host.validation[1]),
                "save_best": None if self.save_best is None else _absolute(self.save_best),
            }
            read = checksums(host)
            if not self._resuming:
                self.manifest = {"kind": "sweep", **manifest(backend, settings, read, 0, run)}
            elif not matches(self.manifest.get("data", {}), read):
                raise ConfigError(f"--resume {self.out}: the data differs from the data the sweep started on")
            if self.out is not None:
                self._write()
            todo = self.todo(chunk)
            if client is None:
                pinned: dict = {}  # the data of the current (dtype, outputs): stacks come grouped by it
                kernels: dict = {}  # the current stack's prepared kernel (numba's holds the inputs' CSR)
                for members in todo:
                    config = members[0][0]
                    if (config.dtype, config.sizes[-1]) not in pinned:
                        pinned.clear()  # no later stack needs it: one copy of the data at a time
                    if config.stack not in kernels:
                        kernels.clear()
                    data = pin_for(pinned, host, backend, config)
                    grid = self.grid
                    done = run_chunk(backend, data, members, grid.epochs, grid.eval, kernels, progress, self.kernel)
                    self._finished(done, on_network)
            else:
                self._run_on_cluster(client, todo, progress, on_network)
        finally:
            if client is not None:
                peers.close_client(client)
            self._save_best()
        return self.results()

    def _run_on_cluster(self, client, todo, progress, on_network) -> None:
        how = (self.grid.epochs, self.grid.eval, self.device, self.source, self.manifest["data"], self.kernel)
        futures = [dist.submit(client, members, *how) for members in todo]
        try:
            for result in peers.dask_results(client, futures, str(self.scheduler)):
                if progress is not None:
                    progress(len(result.records) * self.grid.epochs)
                self._finished(result, on_network)
        finally:
            client.cancel(futures)

    def _finished(self, result: ChunkResult, on_network) -> None:
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
                outputs.save_best(outputs.best_path(self.out, config), self.best[config], self.manifest, self.grid)
        if on_network is not None:
            for r in result.records:
                on_network(r)

    def _write(self) -> None:
        assert self.out is not None
        outputs.write(self.out, self.manifest, self.results(), self.grid.eval)

    def _save_best_paths(self) -> dict:
        return {} if self.save_best is None else outputs.save_best_paths(self.save_best, self.grid.configs())

    def _save_best(self) -> None:
        for config, path in self._save_best_paths().items():
            if config in self.best:
                outputs.save_best(path, self.best[config], self.manifest, self.grid)

    def results(self) -> list[NetworkRecord]:
        """The finished networks, in the grid's order."""
        return sorted(self.records.values(), key=lambda r: self.grid.position(r.config, r.seed))


def sweep(
    seeds,
    *,
    eta=BOOK.eta,
    sizes=BOOK.sizes,
    batch_size=BOOK.batch_size,
    dtype=BOOK.dtype,
    epochs: int = BOOK.epochs,
    eval: str = "test",
    cost=BOOK.cost,
    lmbda=BOOK.lmbda,
    init=BOOK.init,
    device: str = "auto",
    data_dir=None,
    validation_size: int = BOOK.validation_size,
    out=None,
    save_best=None,
    scheduler: str | None = None,
    chunk: int | None = None,
    kernel: str | None = None,
    force: bool = False,
) -> list[NetworkRecord]:
    """Train every network of the grid and return one record per network (see :class:`Sweep`).

    ``seeds`` is a list or a string like "1-100"; ``eta``, ``sizes``, ``batch_size``, ``dtype``, ``cost``,
    ``lmbda`` and ``init`` are one value or a list (``sizes`` a list of layer-size lists for several).
    """
    axes = dict(etas=eta, sizes=sizes, batch_sizes=batch_size, dtypes=dtype, costs=cost, lmbdas=lmbda, inits=init)
    grid = Grid.create(seeds, **axes, epochs=epochs, eval=eval)
    source = DataSource(None if data_dir is None else str(data_dir), validation_size=validation_size)
    options = dict(device=device, save_best=save_best, scheduler=scheduler, kernel=kernel, force=force)
    return Sweep(grid, source, out=out, chunk=chunk, **options).run()


def _absolute(path) -> str:
    """A path as kept for a later resume, which may run from another folder."""
    return str(Path(path).resolve())
