"""``gpunet sweep`` on the command line: the grid from the flags, a line per finished network, the table."""

from __future__ import annotations

from .._version import __version__
from ..errors import ConfigError, say
from ..io.signals import exit_status
from ..kernels import KERNELS
from ..settings import BOOK
from ..sweep import DataSource, Grid, Sweep
from ..sweep.outputs import save_best_paths
from ..sweep.stacks import threads
from ..sweep.stats import table
from . import options
from .common import ProgressBar

NAME = "sweep"
HELP = "train a grid of networks (seeds x eta x sizes x mini-batch x cost, lmbda, init) at once; print their statistics"
WITHOUT_GPU = "use --device cpu to train the sweep on the CPU"
DESCRIPTION = (
    "Each network starts as `gpunet train --seed S` would and gives the same per-epoch counts. "
    "Lists are comma-separated; seeds also take ranges (1-100)."
)
GRID_FLAGS = ("seeds", "eta", "sizes", "batch_size", "dtype", "cost", "lmbda", "init", "epochs", "eval", "data_dir",
              "data", "out", "chunk")  # fmt: skip
# flag -> Grid.create's parameter; a flag left out takes Grid.create's default (train's defaults)
GRID_PARAMETERS = {
    "eta": "etas",
    "sizes": "sizes",
    "batch_size": "batch_sizes",
    "dtype": "dtypes",
    "cost": "costs",
    "lmbda": "lmbdas",
    "init": "inits",
    "epochs": "epochs",
    "eval": "eval",
}


def add_arguments(parser) -> None:
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--seeds", metavar="LIST", help="seeds, e.g. 1-100 or 1,5,9 or 1-10,42 (or --resume DIR)")
    resume = "run what is missing of the sweep kept in DIR, with its settings"
    what.add_argument("--resume", type=options.path, metavar="DIR", help=resume)
    parser.add_argument("--eta", metavar="LIST", help="learning rates, e.g. 0.5,3 (default: 3)")
    options.add_sizes(parser, action="append", help="layer sizes, repeatable (default: 784,30,10)")
    parser.add_argument("--batch-size", metavar="N,N,...", help="mini-batch sizes, e.g. 10,100 (default: 10)")
    parser.add_argument("--dtype", metavar="LIST", help="float32 and/or float64 (default: float32)")
    parser.add_argument("--cost", metavar="LIST", help="quadratic and/or cross-entropy (default: quadratic)")
    parser.add_argument("--lmbda", metavar="LIST", help="L2's lambdas, e.g. 0,5 (default: 0)")
    parser.add_argument("--init", metavar="LIST", help="large and/or default, as train's (default: large)")
    options.add_epochs(parser, "epochs per network (default: 30)")
    parser.add_argument("--eval", choices=["test", "validation"], help="data scored after each epoch (default: test)")
    options.add_device(parser, None, "auto: per configuration, as gpunet train chooses")
    kernel_help = "run the epochs in this kernel (default: as gpunet train chooses)"
    parser.add_argument("--kernel", choices=list(KERNELS), help=kernel_help)
    options.add_data_arguments(parser)
    parser.add_argument("--out", metavar="DIR", help="keep the results here: sweep.jsonl, networks.csv, best models")
    save_best_help = "write the best network of each configuration to PATH (.npz); kept with the sweep for --resume"
    parser.add_argument("--save-best", metavar="PATH", help=save_best_help)
    force_help = "overwrite a --save-best file that is not this sweep's (refused otherwise)"
    parser.add_argument("--force", action="store_true", help=force_help)
    parser.add_argument("--scheduler", metavar="ADDRESS", help="run on a Dask cluster, e.g. tcp://host:8786")
    chunk_help = "networks trained together (default: 4 per core; 1024 on a GPU)"
    parser.add_argument("--chunk", type=options.positive_int, metavar="N", help=chunk_help)


def _grid(args) -> Grid:
    given = {p: getattr(args, flag) for flag, p in GRID_PARAMETERS.items() if getattr(args, flag) is not None}
    return Grid.create(args.seeds, **given)


def _sweep(args) -> Sweep:
    kept = {k: getattr(args, k) for k in ("save_best", "scheduler", "kernel", "force")}  # with the sweep on resume
    if args.resume:
        given = [k for k in GRID_FLAGS if getattr(args, k, None) is not None]
        if given:
            flag = "--" + given[0].replace("_", "-")
            raise ConfigError(f"{flag} is set by the sweep in {args.resume} when resuming; leave it out")
        return Sweep.resume(args.resume, device=args.device, **kept)
    grid = _grid(args)
    mirror = tuple(args.mirror) if args.mirror else None
    source = DataSource(args.data_dir, args.data, args.validation_size, args.download, mirror)
    return Sweep(grid, source, device=args.device or "auto", out=args.out, chunk=args.chunk, **kept)


def run(args) -> int:
    sweep = _sweep(args)
    if not args.scheduler:
        sweep.backend()  # an unusable --device is one line before the header, not after it
    grid = sweep.grid
    todo = sweep.n_missing()
    where = f"Dask scheduler {args.scheduler}" if args.scheduler else f"device {sweep.device}, {threads()} cores"
    print(f"gpunet {__version__} sweep | {where} | eval {grid.eval}")
    axes = [(len(grid.costs), "cost"), (len(grid.lmbdas), "lmbda"), (len(grid.inits), "init")]
    chapter_3 = (grid.costs, grid.lmbdas, grid.inits) != ((BOOK.cost,), (BOOK.lmbda,), (BOOK.init,))
    objective = "".join(f" x {n} {name}" for n, name in axes) if chapter_3 else ""  # chapter 1's: as before
    print(
        f"{len(grid.seeds)} seeds x {len(grid.etas)} eta x {len(grid.sizes)} sizes x {len(grid.batch_sizes)} "
        f"mini-batch x {len(grid.dtypes)} dtype{objective} = {grid.count} networks x {grid.epochs} epochs"
        + (f" | {todo} to run, resumed from {args.resume}" if args.resume else ""),
        flush=True,
    )
    bar = ProgressBar.if_watched(todo * grid.epochs, unit="net-epoch")

    def finished(r):
        line = (
            f"{r.config.label} seed {r.seed}: best {r.correct[r.best_epoch]} / {r.total} at epoch {r.best_epoch}, "
            f"final {r.correct[-1]} / {r.total} ({r.seconds:.1f} s)"
        )
        (print if bar is None else bar.write)(line)

    try:
        records = sweep.run(progress=bar, on_network=finished)
    except KeyboardInterrupt as stop:  # Ctrl-C, or SIGTERM, SIGHUP, ... (signals.Terminated)
        done = len(sweep.results())
        if sweep.out is not None:
            say(f"interrupted; {done} of {grid.count} networks are kept in {sweep.out}: continue with")
            say(f"  gpunet sweep --resume {sweep.out}" + (f" --scheduler {args.scheduler}" if args.scheduler else ""))
        else:
            say(f"interrupted; {done} networks finished (--out DIR keeps them)")
        return exit_status(stop)
    finally:
        if bar is not None:
            bar.close()
    print()
    print(table(records, grid.epochs, grid.eval))
    if sweep.save_best:
        for config, path in save_best_paths(sweep.save_best, grid.configs()).items():
            say(f"the best network of {config.label} is in {path}")
    return 0
