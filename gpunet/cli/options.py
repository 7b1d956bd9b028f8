"""The options the commands share, defined once: the parser (a usage error is one line), the help format,
the argument types (each checked by the one validator, :mod:`gpunet.validation`), the data flags."""

from __future__ import annotations

import argparse

from ..backend import DEVICE_RE
from ..validation import COUNT, EPOCHS, POSITIVE_INT, POSITIVE_REAL, Interval, check, check_sizes


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and exit status 2)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


class Formatter(argparse.ArgumentDefaultsHelpFormatter):
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


positive_int = _parsed(POSITIVE_INT, int)
count = _parsed(COUNT, int)
epochs = _parsed(EPOCHS, int)
eta = _parsed(POSITIVE_REAL, float)


def sizes(text: str) -> list[int]:
    try:
        return check_sizes([int(s) for s in text.split(",")], error=ValueError)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated layer sizes like 784,30,10 (two or more, all >= 1), got {text!r}"
        ) from None


def device(text: str) -> str:
    if not DEVICE_RE.fullmatch(text.strip().lower()):
        raise argparse.ArgumentTypeError(f"expected cpu, cuda, cuda:N or auto, got {text!r}")
    return text.strip().lower()


def devices(text: str) -> list[str]:
    return [device(d) for d in text.split(",")]


def add_data_arguments(parser, split: bool = True, download: bool = True) -> None:
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
            type=count,
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
