"""The options the commands share, defined once: the parser (a usage error is one line pointing to the
command's own help, with the flag meant when one is mistyped), the help format, the argument types (each
checked by the one validator, :mod:`gpunet.settings`), and the flags several commands take, each worded
for the command that takes it."""

from __future__ import annotations

import argparse
import difflib
from urllib.parse import urlsplit

from ..backend import DEVICE_RE
from ..errors import printable
from ..settings import (
    BOOK,
    COST_NAMES,
    COUNT,
    NON_NEGATIVE_REAL,
    POSITIVE_INT,
    POSITIVE_REAL,
    RUN_EPOCHS,
    Interval,
    check,
    check_sizes,
)


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and exit status 2) naming the command's help; flags are never
    abbreviated (``--data`` is not ``--data-dir``); contradictory flags are refused once parsed."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)
        self.checks: list = []  # functions of the parsed arguments: a message when they contradict each other
        self.set_defaults(command_parser=self)  # the innermost (sub)command parsed overrides it

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {printable(message)} (see '{self.prog} --help')\n")

    def parse_args(self, args=None, namespace=None):
        parsed, extras = self.parse_known_args(args, namespace)
        command = parsed.__dict__.pop("command_parser", self)
        if extras:
            command.error(f"unrecognized arguments: {' '.join(extras)}{command.meant(extras)}")
        for check_flags in command.checks:
            if message := check_flags(parsed):
                command.error(message)
        return parsed

    def meant(self, extras) -> str:
        """' (did you mean --batch-size?)' for the first unknown flag that is another library's name for one of
        this command's (:data:`MEANT`) or a typo of one (close, and about as long: not a longer flag's tail)."""
        flags = [flag for action in self._actions for flag in action.option_strings]
        for extra in extras:
            if extra.startswith("--"):
                typed = extra.split("=")[0]
                close = [MEANT[typed]] if MEANT.get(typed) in flags else []
                close += [
                    f for f in difflib.get_close_matches(typed, flags, cutoff=0.8) if abs(len(f) - len(typed)) <= 2
                ]
                if close:
                    return f" (did you mean {close[0]}?)"
        return ""


# Other libraries' names for gpunet's flags (PyTorch's examples, Keras): a hint, not a second spelling.
MEANT = {"--lr": "--eta", "--learning-rate": "--eta", "--learning_rate": "--eta", "--save-model": "--save"}


class Formatter(argparse.ArgumentDefaultsHelpFormatter):
    """Show defaults, except where there is none, the flag takes no value (a switch), or the help says it."""

    def _get_help_string(self, action):
        if action.default is None or action.nargs == 0 or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def _parsed(interval: Interval, parse):
    """An argparse type: the text parsed, then checked by the one validator (gpunet.settings)."""

    def convert(text: str):
        try:
            return check("value", parse(text), interval, error=ValueError)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {interval.describe()}, got {text!r}") from None

    return convert


positive_int = _parsed(POSITIVE_INT, int)
count = _parsed(COUNT, int)
epochs = _parsed(RUN_EPOCHS, int)
eta = _parsed(POSITIVE_REAL, float)
lmbda = _parsed(NON_NEGATIVE_REAL, float)


def lmbdas(text: str) -> list[float]:
    """Comma-separated L2 lambdas, each as --lmbda takes it."""
    return [lmbda(part) for part in text.split(",")]


def costs(text: str) -> list[str]:
    """Comma-separated cost names, each one of gpunet.settings.COST_NAMES."""
    parts = text.split(",")
    for part in parts:
        if part not in COST_NAMES:
            raise argparse.ArgumentTypeError(f"expected costs among {', '.join(COST_NAMES)}, got {part!r}")
    return parts


MONITORS = ("training-cost", "training-accuracy", "evaluation-cost")  # network2.py's monitor_* (less the --eval's)


def monitors(text: str) -> list[str]:
    """Comma-separated quantities of MONITORS (or ``all``), each once, in MONITORS' order."""
    parts = MONITORS if text == "all" else text.split(",")
    for part in parts:
        if part not in MONITORS:
            raise argparse.ArgumentTypeError(f"expected {', '.join(MONITORS)} or all, got {part!r}")
    return [m for m in MONITORS if m in parts]


def sizes(text: str) -> list[int]:
    try:
        return check_sizes([int(s) for s in text.split(",")], error=ValueError)
    except ValueError:
        why = f"expected comma-separated layer sizes like 784,30,10 (two or more, all >= 1), got {text!r}"
        raise argparse.ArgumentTypeError(why) from None


def mirror(text: str) -> str:
    try:
        _ = urlsplit(text).port  # its host and port are parsed only when asked for
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a URL like https://host/mnist/, got {text!r}") from None
    return text


def path(text: str) -> str:
    if not text:
        raise argparse.ArgumentTypeError("expected a path, got ''")
    return text


def device(text: str) -> str:
    if not DEVICE_RE.fullmatch(text.strip().lower()):
        meant = text.strip().lower().replace("gpu", "cuda", 1)
        hint = f" (did you mean {meant}?)" if meant.startswith("cuda") and DEVICE_RE.fullmatch(meant) else ""
        raise argparse.ArgumentTypeError(f"expected cpu, cuda, cuda:N or auto, got {text!r}{hint}")
    return text.strip().lower()


def devices(text: str) -> list[str]:
    return [device(d) for d in text.split(",")]


# What `--device auto` means, per command: train (and a sweep's networks) weigh the measured kernels; the
# commands that only run a network forward take CUDA whenever it is usable.
AUTO_TRAIN = "auto: the GPU where its kernel was measured faster than the CPU's, else the CPU"
AUTO_USABLE = "auto: CUDA if usable, else the CPU"


def add_device(parser, default: str | None, auto: str, why: str = "") -> None:
    """``--device``, with what auto means for this command (and why its default, where that is not auto)."""
    what = f"cpu, cuda, cuda:N or auto ({auto}; default: {default or 'auto'}{why})"
    parser.add_argument("--device", type=device, default=default, metavar="DEVICE", help=what)


def add_sizes(parser, **changes) -> None:
    help_text = "layer sizes, the first the image size, the last at least the classes (default: 784,30,10)"
    parser.add_argument("--sizes", **{"type": sizes, "metavar": "N,N,...", "help": help_text, **changes})


def add_epochs(parser, help_text: str, default=None) -> None:
    """``--epochs``: one rule for every command, at least 1 (0 would train or time nothing)."""
    parser.add_argument("--epochs", type=epochs, default=default, metavar="N", help=help_text)


def add_batch_size(parser, help_text: str = f"mini-batch size (default: {BOOK.batch_size})") -> None:
    parser.add_argument("--batch-size", type=positive_int, metavar="N", help=help_text)


def add_data_arguments(
    parser, split: bool = True, download: bool = True, resume: bool = False, validation: bool = True
) -> None:
    """The data flags: ``--data-dir`` or the book's ``--data`` (not both) and the validation split (``split``;
    ``validation``: the command uses that split; ``resume``: it has --resume, which brings its own), and
    downloading (``download``)."""
    source = parser.add_mutually_exclusive_group() if split else parser
    data_dir_help = (
        "folder with the IDX files or mnist.pkl.gz (default: $GPUNET_DATA, else the first of ./data, "
        "the data/ of the checkout gpunet is installed from, and the user cache folder, where downloads go)"
    )
    source.add_argument("--data-dir", default=None, metavar="DIR", help=data_dir_help)
    if split:
        data_help = "the book's mnist.pkl.gz (its own train/validation/test split)"
        source.add_argument("--data", default=None, metavar="FILE", help=data_help)
    if split and validation:
        on_resume = "; on --resume, the checkpoint's" if resume else ""
        held_out = f"training images held out (the last) for validation (default: 10000{on_resume}; not with --data)"
        parser.add_argument("--validation-size", type=count, default=None, metavar="N", help=held_out)
        parser.checks.append(_book_split)
    if download:
        mirror_help = (
            "MNIST mirror base URL to download from, in order (repeatable; default: $GPUNET_MNIST_MIRRORS, "
            "else the built-in list)"
        )
        parser.add_argument("--mirror", action="append", type=mirror, metavar="URL", help=mirror_help)
    if split and download:
        never = "never download missing MNIST files"
        parser.add_argument("--no-download", dest="download", action="store_false", help=never)
    absent = {"data": None, "validation_size": None, "download": None, "mirror": None, "quiet": False}  # load_data's
    parser.set_defaults(**{k: v for k, v in absent.items() if k not in {a.dest for a in parser._actions}})


def _book_split(args) -> str | None:
    if args.data and args.validation_size is not None:
        return "--validation-size does not apply to --data: the book's pickle has its own 10000 validation images"
    return None


def add_quiet(parser, what: str = "no notes while downloading") -> None:
    """``--quiet``: ``what`` it leaves out, for this command; download notes at least (an error stays)."""
    quiet_help = f"{what}; a failed download is still its one-line error"
    parser.add_argument("--quiet", action="store_true", help=quiet_help)
