"""The ``gpunet`` command line: ``gpunet train`` and friends."""

from __future__ import annotations

import argparse
import os
import sys

from . import __version__, baselines_cli
from .commands import (
    cmd_bench,
    cmd_data_download,
    cmd_data_info,
    cmd_data_verify,
    cmd_evaluate,
    cmd_info,
    cmd_plot,
    cmd_predict,
    cmd_train,
)
from .errors import GpunetError
from .kernels import KERNELS
from .signals import exit_status, sigterm_as_interrupt
from .sweep_cli import cmd_sweep
from .validation import COUNT, POSITIVE_INT, POSITIVE_REAL, Interval, check, check_sizes


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and exit status 2)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


class _Formatter(argparse.ArgumentDefaultsHelpFormatter):
    """Show defaults, except where there is none or it is an on/off switch (the help text says what it does)."""

    def _get_help_string(self, action):
        if action.default is None or isinstance(action.default, bool):
            return action.help
        return super()._get_help_string(action)


def _parsed(interval: Interval, parse):
    """An argparse type: the text parsed, then checked by the one validator (gpunet.validation)."""

    def convert(text: str):
        try:
            return check("value", parse(text), interval, error=ValueError)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {interval.describe()}, got {text!r}") from None

    return convert


_positive_int = _parsed(POSITIVE_INT, int)
_count = _parsed(COUNT, int)
_eta = _parsed(POSITIVE_REAL, float)


def _sizes(text: str) -> list[int]:
    try:
        return check_sizes([int(s) for s in text.split(",")], error=ValueError)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated layer sizes like 784,30,10 (two or more, all >= 1), got {text!r}"
        ) from None


def _device(text: str) -> str:
    from .backend import DEVICE_RE

    if not DEVICE_RE.fullmatch(text.strip().lower()):
        raise argparse.ArgumentTypeError(f"expected cpu, cuda, cuda:N or auto, got {text!r}")
    return text.strip().lower()


def _devices(text: str) -> list[str]:
    return [_device(d) for d in text.split(",")]


def _add_data_arguments(parser, split: bool = True, download: bool = True) -> None:
    parser.add_argument(
        "--data-dir",
        default=None,
        help="folder with the IDX files or mnist.pkl.gz (default: $GPUNET_DATA, else the first of ./data, "
        "the data/ of the checkout gpunet is installed from, and the user cache folder, where downloads go)",
    )
    if split:
        parser.add_argument(
            "--data", default=None, metavar="FILE", help="the book's mnist.pkl.gz (its own train/validation/test split)"
        )
        parser.add_argument(
            "--validation-size",
            type=_count,
            default=None,
            help="training images held out (the last) for validation (default: 10000; on --resume, the checkpoint's)",
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


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="gpunet", description="The network of Nielsen's 'Neural Networks and Deep Learning', ch. 1.")
    parser.add_argument("--version", action="version", version=f"gpunet {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser, required=True)

    train = commands.add_parser(
        "train",
        help="train a network by mini-batch SGD and print test accuracy per epoch",
        formatter_class=_Formatter,
    )
    train.add_argument(
        "--device",
        type=_device,
        default="auto",
        help="cpu, cuda, cuda:N or auto (the GPU where its kernel was measured faster than the CPU's, else the CPU)",
    )
    train.add_argument("--sizes", type=_sizes, metavar="N,N,...", help="layer sizes (default: 784,30,10)")
    train.add_argument("--epochs", type=_count, help="epochs to reach, counted from 0, on resume too (default: 30)")
    train.add_argument("--batch-size", type=_positive_int, help="mini-batch size (default: 10)")
    train.add_argument("--eta", type=_eta, help="learning rate (default: 3.0)")
    train.add_argument("--seed", type=_count, help="random seed (default: a fresh one, printed in the header)")
    train.add_argument("--dtype", choices=["float32", "float64"], help="floating-point type (default: float32)")
    _add_data_arguments(train)
    train.add_argument(
        "--eval", choices=["test", "validation", "none"], default="test", help="data scored after each epoch"
    )
    train.add_argument(
        "--kernel",
        choices=list(KERNELS),
        help="run the epochs in this kernel (default: the fastest that runs here; `gpunet info` lists them)",
    )
    train.add_argument(
        "--no-fused",
        dest="kernel",
        action="store_const",
        const="portable",
        help="the same as --kernel portable (the array-API loop; kept for older scripts)",
    )
    train.add_argument("--save", metavar="PATH", help="write the trained network to PATH (.npz) at the end")
    train.add_argument("--checkpoint", metavar="PATH", help="write the network to PATH (.npz) after every epoch")
    train.add_argument(
        "--resume",
        metavar="PATH",
        help="continue from a checkpoint; its settings are used (with --epochs N, to N), and it goes on writing "
        "that checkpoint and its log",
    )
    train.add_argument("--log", metavar="PATH", help="write the manifest and one JSON object per epoch to PATH")
    train.add_argument(
        "--force",
        action="store_true",
        help="overwrite a --save/--checkpoint/--log file that is not this run's (refused otherwise)",
    )
    train.add_argument(
        "--monitor-cost", action="store_true", help="also log the mean quadratic cost on the training data"
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

    sweep = commands.add_parser(
        "sweep",
        help="train a grid of networks (seeds x eta x sizes x mini-batch) at once and print their statistics",
        formatter_class=_Formatter,
        description="Each network starts as `gpunet train --seed S` would and gives the same per-epoch counts. "
        "Lists are comma-separated; seeds also take ranges (1-100).",
    )
    sweep.add_argument("--seeds", metavar="LIST", help="seeds, e.g. 1-100 or 1,5,9 or 1-10,42 (required)")
    sweep.add_argument("--eta", metavar="LIST", help="learning rates, e.g. 0.5,3 (default: 3)")
    sweep.add_argument(
        "--sizes", type=_sizes, action="append", metavar="N,N,...", help="layer sizes, repeatable (default: 784,30,10)"
    )
    sweep.add_argument("--batch-size", metavar="LIST", help="mini-batch sizes, e.g. 10,100 (default: 10)")
    sweep.add_argument("--dtype", metavar="LIST", help="float32 and/or float64 (default: float32)")
    sweep.add_argument("--epochs", type=_positive_int, help="epochs per network (default: 30)")
    sweep.add_argument("--eval", choices=["test", "validation"], help="data scored after each epoch (default: test)")
    sweep.add_argument("--device", type=_device, help="cpu, cuda, cuda:N or auto (default: auto)")
    sweep.add_argument(
        "--kernel", choices=list(KERNELS), help="run the epochs in this kernel (default: as gpunet train chooses)"
    )
    _add_data_arguments(sweep)
    sweep.add_argument("--out", metavar="DIR", help="keep the results here: sweep.jsonl, networks.csv, best models")
    sweep.add_argument(
        "--save-best", metavar="PATH", help="write the best network of each configuration to PATH (.npz)"
    )
    sweep.add_argument("--resume", metavar="DIR", help="run what is missing of the sweep kept in DIR")
    sweep.add_argument("--scheduler", metavar="ADDRESS", help="run on a Dask cluster, e.g. tcp://host:8786")
    sweep.add_argument(
        "--chunk", type=_positive_int, help="networks trained together (default: 4 per core; 1024 on a GPU)"
    )
    sweep.set_defaults(run=cmd_sweep)

    evaluate = commands.add_parser(
        "evaluate",
        help="score a saved network: accuracy, per-class accuracy, confusion matrix",
        formatter_class=_Formatter,
    )
    evaluate.add_argument("model", help="a network saved by gpunet train --save or --checkpoint")
    evaluate.add_argument("--split", choices=["test", "validation", "train"], default="test", help="data to score")
    evaluate.add_argument(
        "--device", type=_device, default="auto", help="cpu, cuda, cuda:N or auto (CUDA if usable, else the CPU)"
    )
    _add_data_arguments(evaluate, download=False)
    evaluate.set_defaults(run=cmd_evaluate)

    predict = commands.add_parser(
        "predict", help="classify PNG/JPEG pictures or IDX image files with a saved network", formatter_class=_Formatter
    )
    predict.add_argument("model", help="a network saved by gpunet train --save or --checkpoint")
    predict.add_argument(
        "images", nargs="+", metavar="IMAGE", help="PNG/JPEG files (resized to the input) or IDX files"
    )
    polarity = predict.add_mutually_exclusive_group()
    polarity.add_argument(
        "--invert",
        dest="invert",
        action="store_const",
        const="yes",
        default="auto",
        help="turn dark digits on a light background into MNIST's light on black (by default: pictures whose "
        "border is light are inverted, with a note)",
    )
    polarity.add_argument(
        "--no-invert", dest="invert", action="store_const", const="no", help="never invert, even a light picture"
    )
    predict.add_argument(
        "--device", type=_device, default="cpu", help="cpu, cuda, cuda:N or auto (the CPU: a few pictures need no GPU)"
    )
    predict.set_defaults(run=cmd_predict)

    plot = commands.add_parser(
        "plot", help="draw accuracy/cost curves of logged runs, or the test digits a model gets wrong",
        formatter_class=_Formatter,
    )  # fmt: skip
    plot.add_argument("logs", nargs="*", metavar="LOG", help="JSON-lines logs written by gpunet train --log")
    plot.add_argument("-o", "--output", required=True, help="the picture to write: .png, .pdf, .svg or .jpg")
    plot.add_argument("--misclassified", metavar="MODEL", help="draw the test digits MODEL gets wrong instead")
    plot.add_argument("--count", type=_positive_int, default=36, help="with --misclassified: how many digits")
    plot.add_argument(
        "--device",
        type=_device,
        default="cpu",
        help="with --misclassified: cpu, cuda, cuda:N or auto (the CPU: one pass over the test set needs no GPU)",
    )
    _add_data_arguments(plot, download=False)
    plot.set_defaults(run=cmd_plot)

    baselines = commands.add_parser(
        "baselines", help="chapter 1's comparison: random guessing, average darkness, an SVM, the network",
        formatter_class=_Formatter,
    )  # fmt: skip
    baselines_cli.add_arguments(baselines)
    baselines.set_defaults(run=baselines_cli.run)

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


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with sigterm_as_interrupt():  # SIGTERM (docker stop, schedulers) ends a command as Ctrl-C does
            status = args.run(args)
            sys.stdout.flush()  # inside the try, so a closed pipe is caught here too
        return status
    except GpunetError as e:  # every expected failure, turned into one line where it happens
        print(f"gpunet: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as stop:
        print("gpunet: interrupted", file=sys.stderr)
        return exit_status(stop)
    except BrokenPipeError:  # the reader went away (`gpunet ... | head`): stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
