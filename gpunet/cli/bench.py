"""``gpunet bench``: seconds per epoch of every kernel and peer on the devices asked for, in one run."""

from __future__ import annotations

import json
import os

from .. import bench
from .._version import __version__
from ..backend import get_backend
from ..bench import peers
from ..errors import say
from ..settings import BOOK, DTYPES
from . import options
from .common import load_data

NAME = "bench"
HELP = "time training epochs of every path against the book's per-example loop"
WITHOUT_GPU = "time the CPU with --device cpu"
DESCRIPTION = (
    "Times SGD epochs (no evaluation) on MNIST. Without --sizes/--batch-size it measures "
    "784,30,10 at batch 10 and 100, and 784,100,10 at batch 10."
)


def add_arguments(parser) -> None:
    devices_help = (
        "comma-separated devices to time, each cpu, cuda, cuda:N or auto (CUDA if usable, else the CPU), "
        "e.g. cpu,cuda (default: cpu)"
    )
    parser.add_argument("--device", type=options.devices, default=["cpu"], metavar="DEVICE,...", help=devices_help)
    options.add_sizes(parser, help="one network to time (default: the three above)")
    options.add_batch_size(parser, "one mini-batch size to time (default: the three above)")
    parser.add_argument("--dtype", choices=DTYPES, default=BOOK.dtype, help="floating-point type")
    options.add_epochs(parser, "timed epochs per path (the book's loop: see --book-examples)", default=3)
    book_help = "examples the book's loop is timed on (scaled to an epoch; 0 skips it)"
    parser.add_argument("--book-examples", type=options.count, metavar="N", default=50_000, help=book_help)
    options.add_data_arguments(parser)
    options.add_quiet(parser)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    costs_help = "comma-separated costs the kernels train with, quadratic and/or cross-entropy (default: quadratic)"
    parser.add_argument("--cost", type=options.costs, default=["quadratic"], metavar="COST,...", help=costs_help)
    lmbdas_help = "comma-separated L2 lambdas the kernels train with, each cost with each (default: 0)"
    parser.add_argument("--lmbda", type=options.lmbdas, default=[0.0], metavar="L,...", help=lmbdas_help)


def run(args) -> int:
    if args.sizes is None and args.batch_size is None:
        configs = bench.BOOK_CONFIGS
    else:
        configs = [(args.sizes or list(BOOK.sizes), args.batch_size or BOOK.batch_size)]
    skipped = {}

    def missing(what, why):
        skipped[what] = why
        say(f"{what}: not measured: {why}")

    backends = bench.usable(args.device, missing)  # none usable: one line, exit 2, nothing timed
    host = load_data(args)
    cpu = get_backend("cpu")
    machine = f"{cpu.description}, {os.cpu_count()} cores | {cpu.library}"
    absent = peers.not_installed()
    if not args.json:
        print(f"gpunet {__version__} bench | {machine}")
        print(f"measured: {_measured(args)} | no evaluation")
        if absent:
            print(f"peers not installed, not timed: {', '.join(absent)}")
        print(bench.HEADER, flush=True)
    report = (lambda row: None) if args.json else (lambda row: print(bench.format_row(row), flush=True))
    objectives = [(cost, lmbda) for cost in args.cost for lmbda in args.lmbda]
    rows = bench.run(host, backends, configs, args.dtype, args.epochs, args.book_examples, report, missing, objectives)
    if args.json:
        result = {"gpunet": __version__, "machine": machine, "rows": rows, "skipped": skipped}
        print(json.dumps({**result, "peers_not_installed": absent}, indent=2))
    return 0


def _measured(args) -> str:
    """What the rows time: the kernels' and peers' epochs, and the book's loop on part of an epoch, scaled."""
    book = (
        f"the book's loop timed once on {args.book_examples} examples, scaled to an epoch"
        if args.book_examples
        else "the book's loop skipped (--book-examples 0)"
    )
    return f"{args.epochs} timed epoch(s) per kernel and peer; {book}"
