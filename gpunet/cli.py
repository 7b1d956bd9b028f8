"""The ``gpunet`` command line: ``gpunet train`` and friends."""

from __future__ import annotations

import argparse
import math
import os
import sys

import numpy as np

from . import __version__
from .errors import ConfigError, GpunetError


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and exit status 2)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


class _Formatter(argparse.ArgumentDefaultsHelpFormatter):
    """Show defaults, except where there is none (the help text then says what happens)."""

    def _get_help_string(self, action):
        return action.help if action.default is None else super()._get_help_string(action)


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(s) for s in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated layer sizes like 784,30,10, got {text!r}") from None
    if len(sizes) < 2 or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"need at least an input and an output layer, all >= 1, got {text!r}")
    return sizes


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return value


def _eta(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"the learning rate must be a finite number > 0, got {text!r}")
    return value


def _device(text: str) -> str:
    from .backend import DEVICE_RE

    if not DEVICE_RE.fullmatch(text.strip().lower()):
        raise argparse.ArgumentTypeError(f"expected cpu, cuda, cuda:N or auto, got {text!r}")
    return text.strip().lower()


def _devices(text: str) -> list[str]:
    return [_device(d) for d in text.split(",")]


def _add_data_arguments(parser, split: bool = True, download: bool = True) -> None:
    parser.add_argument(
        "--data-dir", default=None, help="folder with the IDX files or mnist.pkl.gz (default: $GPUNET_DATA or ./data)"
    )
    if split:
        parser.add_argument(
            "--data", default=None, metavar="FILE", help="the book's mnist.pkl.gz (its own train/validation/test split)"
        )
        parser.add_argument(
            "--validation-size", type=_count, default=10_000, help="training images held out (the last) for validation"
        )
    if download:
        parser.add_argument(
            "--mirror",
            action="append",
            metavar="URL",
            help="MNIST mirror base URL to download from, in order (repeatable; default: $GPUNET_MNIST_MIRRORS, "
            "else the built-in list)",
        )
    if split and download:
        parser.add_argument(
            "--no-download", dest="download", action="store_false", help="never download missing MNIST files"
        )


def _host_data(args):
    """The dataset the arguments name: the book's pickle, or IDX files (downloaded first if missing)."""
    from .data import BOOK_PICKLE, data_dir, load_book_pickle, load_host
    from .download import download, missing

    if args.data:
        return load_book_pickle(args.data)
    folder = data_dir(args.data_dir)
    if missing(folder) and (folder / BOOK_PICKLE).is_file():
        return load_book_pickle(folder / BOOK_PICKLE)
    if missing(folder) and getattr(args, "download", False):
        download(folder, args.mirror, say=lambda *a, **k: print("gpunet:", *a, file=sys.stderr, **k))
    return load_host(folder, args.validation_size)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="gpunet", description="The network of Nielsen's 'Neural Networks and Deep Learning', ch. 1.")
    parser.add_argument("--version", action="version", version=f"gpunet {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser, required=True)

    train = commands.add_parser(
        "train",
        help="train a network by mini-batch SGD and print test accuracy per epoch",
        formatter_class=_Formatter,
    )
    train.add_argument("--device", type=_device, default="auto", help="cpu, cuda, cuda:N or auto (CUDA if usable)")
    train.add_argument("--sizes", type=_sizes, default="784,30,10", metavar="N,N,...", help="layer sizes")
    train.add_argument("--epochs", type=_count, default=30, help="passes over the training data")
    train.add_argument("--batch-size", type=_positive_int, default=10, help="mini-batch size")
    train.add_argument("--eta", type=_eta, default=3.0, help="learning rate")
    train.add_argument(
        "--seed", type=_count, default=None, help="random seed (default: a fresh one, printed in the header)"
    )
    train.add_argument("--dtype", choices=["float32", "float64"], default="float32", help="floating-point type")
    _add_data_arguments(train)
    train.add_argument(
        "--eval", choices=["test", "validation", "none"], default="test", help="data scored after each epoch"
    )
    train.add_argument(
        "--no-fused",
        dest="fused",
        action="store_false",
        help="always use the portable array-API path, even where a compiled whole-epoch path exists",
    )
    train.set_defaults(run=cmd_train)

    bench = commands.add_parser(
        "bench",
        help="time training epochs of every path against the book's per-example loop",
        formatter_class=_Formatter,
        description="Times SGD epochs (no evaluation) on MNIST. Without --sizes/--batch-size it measures "
        "784,30,10 at batch 10 and 100, and 784,100,10 at batch 10.",
    )
    bench.add_argument("--device", type=_devices, default="cpu", help="comma-separated devices, e.g. cpu,cuda")
    bench.add_argument("--sizes", type=_sizes, default=None, help="one network to time (default: the three above)")
    bench.add_argument("--batch-size", type=_positive_int, default=None, help="one mini-batch size to time")
    bench.add_argument("--dtype", choices=["float32", "float64"], default="float32", help="floating-point type")
    bench.add_argument("--epochs", type=_positive_int, default=3, help="timed epochs per path")
    bench.add_argument(
        "--book-examples",
        type=_count,
        default=50_000,
        help="examples the book's loop is timed on (scaled to an epoch; 0 skips it)",
    )
    _add_data_arguments(bench)
    bench.add_argument("--json", action="store_true", help="print the results as JSON")
    bench.set_defaults(run=cmd_bench)

    info = commands.add_parser("info", help="show the backends and devices found, versions, and where the data is")
    _add_data_arguments(info, download=False)
    info.set_defaults(run=cmd_info)

    data = commands.add_parser("data", help="download, verify or describe the dataset")
    data_commands = data.add_subparsers(dest="data_command", metavar="COMMAND", parser_class=_Parser, required=True)
    download = data_commands.add_parser(
        "download", help="fetch the MNIST files missing from the data folder, checking their checksums"
    )
    _add_data_arguments(download, split=False)
    download.set_defaults(run=cmd_data_download)
    verify = data_commands.add_parser("verify", help="check the four MNIST files: checksums, counts, shapes")
    _add_data_arguments(verify, split=False, download=False)
    verify.set_defaults(run=cmd_data_verify)
    describe = data_commands.add_parser("info", help="print where the data is: counts, image size, classes, bytes")
    _add_data_arguments(describe, download=False)
    describe.set_defaults(run=cmd_data_info)
    return parser


def cmd_train(args) -> int:
    from .backend import get_backend
    from .data import pin
    from .network import Network

    backend = get_backend(args.device)
    if backend.note:
        print(f"gpunet: {backend.note}", file=sys.stderr)
    host = _host_data(args)
    rows, cols = host.image_shape
    n_inputs = rows * cols
    if args.sizes[0] != n_inputs:
        raise ConfigError(f"--sizes must start with {n_inputs} (the {rows}x{cols} image size), got {args.sizes[0]}")
    if args.sizes[-1] < host.n_classes:
        raise ConfigError(
            f"--sizes must end with at least {host.n_classes} outputs (one per class), got {args.sizes[-1]}"
        )
    if args.eval == "validation" and len(host.validation[1]) == 0:
        raise ConfigError("--eval validation needs --validation-size > 0")
    seed = args.seed if args.seed is not None else int(np.random.SeedSequence().entropy % 2**32)

    net = Network(args.sizes, seed=seed, device=backend, dtype=args.dtype)
    data = pin(host, backend, net.dtype)
    n_train = data.training_data[0].shape[0]
    path = f"fused ({backend.fused})" if args.fused and backend.fused else "portable"
    print(f"gpunet {__version__} | device {backend.name} ({backend.description}) | {backend.library} | {args.dtype}")
    print(
        f"sizes {args.sizes} | {n_train} train / {len(host.validation[1])} validation / {len(host.test[1])} test | "
        f"{data.nbytes / 1e6:.1f} MB pinned on {backend.name} | {path} path"
    )
    print(
        f"epochs {args.epochs} | mini-batch {args.batch_size} | eta {args.eta:g} | seed {seed} | eval {args.eval}",
        flush=True,
    )
    evaluation = {"test": data.test_data, "validation": data.validation_data, "none": None}[args.eval]
    net.SGD(
        data.training_data,
        args.epochs,
        args.batch_size,
        args.eta,
        test_data=evaluation,
        callback=lambda result: print(result, flush=True),
        fused=args.fused,
    )
    return 0


def cmd_bench(args) -> int:
    import json

    from . import bench
    from .backend import get_backend

    if args.sizes is None and args.batch_size is None:
        configs = bench.BOOK_CONFIGS
    else:
        configs = [(args.sizes or [784, 30, 10], args.batch_size or 10)]
    cpu = get_backend("cpu")
    machine = f"{cpu.description}, {os.cpu_count()} cores | {cpu.library}"
    if not args.json:
        print(f"gpunet {__version__} bench | {machine} | {args.epochs} timed epochs per path, no evaluation")
        print(bench.HEADER, flush=True)
    report = (lambda row: None) if args.json else (lambda row: print(bench.format_row(row), flush=True))
    rows = bench.run(_host_data(args), args.device, configs, args.dtype, args.epochs, args.book_examples, report)
    if args.json:
        print(json.dumps({"gpunet": __version__, "machine": machine, "rows": rows}, indent=2))
    return 0


def cmd_info(args) -> int:
    import platform

    from .backend import BackendError, get_backend
    from .data import DataError

    cpu = get_backend("cpu")
    print(f"gpunet {__version__} | Python {platform.python_version()} | {platform.platform()}")
    fused = f"fused path: {cpu.fused}" if cpu.fused else "fused path: none (pip install 'gpunet[numba]')"
    print(f"cpu: {cpu.description} | {cpu.library} | {fused}")
    try:
        cuda = get_backend("cuda")
        print(f"cuda: {cuda.name} {cuda.description} | {cuda.library}")
    except BackendError as e:
        print(f"cuda: not usable: {e}")
    try:
        print(f"data: {_host_data(args).describe()}")
    except DataError as e:
        print(f"data: not usable: {e}")
    return 0


def cmd_data_download(args) -> int:
    from .data import data_dir
    from .download import download

    folder = data_dir(args.data_dir)
    fetched = download(folder, args.mirror)
    print(f"downloaded {len(fetched)} file(s) into {folder}" if fetched else f"all four MNIST files are in {folder}")
    return 0


def cmd_data_verify(args) -> int:
    from .data import data_dir, load_host
    from .download import verify

    folder = data_dir(args.data_dir)
    for line in verify(folder):
        print(line)
    host = load_host(folder, 10_000)
    if (len(host.train[1]) + len(host.validation[1]), len(host.test[1]), host.image_shape) != (
        60_000,
        10_000,
        (28, 28),
    ):
        raise ConfigError(f"{folder}: not MNIST's 60000 + 10000 28x28 images")
    print(f"ok  {host.describe()}")
    return 0


def cmd_data_info(args) -> int:
    print(_host_data(args).describe())
    return 0


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        status = args.run(args)
        sys.stdout.flush()  # inside the try, so a closed pipe is caught here too
        return status
    except GpunetError as e:
        print(f"gpunet: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("gpunet: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`gpunet ... | head`): stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
