"""``gpunet bench``: seconds per epoch of every kernel and peer on the devices asked for, in one run."""

from __future__ import annotations

import json
import os

from .. import bench
from .._version import __version__
from ..backend import get_backend
from ..errors import say
from ..validation import TRAIN_DEFAULTS
from . import options
from .common import load_data

NAME = "bench"
HELP = "time training epochs of every path against the book's per-example loop"
DESCRIPTION = (
    "Times SGD epochs (no evaluation) on MNIST. Without --sizes/--batch-size it measures "
    "784,30,10 at batch 10 and 100, and 784,100,10 at batch 10."
)


def add_arguments(parser) -> None:
    parser.add_argument("--device", type=options.devices, default="cpu", help="comma-separated devices, e.g. cpu,cuda")
    parser.add_argument(
        "--sizes", type=options.sizes, default=None, help="one network to time (default: the three above)"
    )
    parser.add_argument("--batch-size", type=options.positive_int, default=None, help="one mini-batch size to time")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32", help="floating-point type")
    parser.add_argument("--epochs", type=options.positive_int, default=3, help="timed epochs per path")
    parser.add_argument(
        "--book-examples",
        type=options.count,
        default=50_000,
        help="examples the book's loop is timed on (scaled to an epoch; 0 skips it)",
    )
    options.add_data_arguments(parser)
    options.add_quiet(parser)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")


def run(args) -> int:
    if args.sizes is None and args.batch_size is None:
        configs = bench.BOOK_CONFIGS
    else:
        configs = [(args.sizes or TRAIN_DEFAULTS["sizes"], args.batch_size or TRAIN_DEFAULTS["batch_size"])]
    cpu = get_backend("cpu")
    machine = f"{cpu.description}, {os.cpu_count()} cores | {cpu.library}"
    if not args.json:
        print(f"gpunet {__version__} bench | {machine} | {args.epochs} timed epochs per path, no evaluation")
        print(bench.HEADER, flush=True)
    report = (lambda row: None) if args.json else (lambda row: print(bench.format_row(row), flush=True))
    skipped = {}

    def missing(what, why):
        skipped[what] = why
        say(f"{what}: not measured: {why}")

    rows = bench.run(
        load_data(args), args.device, configs, args.dtype, args.epochs, args.book_examples, report, missing
    )
    if args.json:
        print(json.dumps({"gpunet": __version__, "machine": machine, "rows": rows, "skipped": skipped}, indent=2))
    return 0
