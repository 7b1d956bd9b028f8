"""``gpunet plot``: accuracy and cost curves of logged runs (and sweeps), or the test digits a model gets wrong."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import plots
from ..data import pin_split
from ..errors import ConfigError, say
from ..runs import check_writable
from . import options
from .common import predictions

NAME = "plot"
HELP = "draw accuracy/cost curves of logged runs, or the test digits a model gets wrong"
WITHOUT_GPU = "leave out --device to draw on the CPU (the default)"


def add_arguments(parser) -> None:
    parser.add_argument("logs", nargs="*", metavar="LOG", help="JSON-lines logs written by gpunet train --log")
    output = (
        "the picture to write: .png, .pdf, .svg or .jpg (default: the log's name with .png for one log, "
        "curves.png for several, MODEL's name with -misclassified.png)"
    )
    parser.add_argument("-o", "--output", help=output)
    parser.add_argument("--misclassified", metavar="MODEL", help="draw the test digits MODEL gets wrong instead")
    parser.add_argument(
        "--count", type=options.positive_int, metavar="N", help="with --misclassified: how many digits (default: 36)"
    )
    options.add_device(
        parser, "cpu", "with --misclassified; " + options.AUTO_USABLE, ", as one pass over the test set needs no GPU"
    )
    options.add_data_arguments(parser, download=False, validation=False)  # it draws test digits
    parser.checks.append(_one_picture)


def _one_picture(args) -> str | None:
    if args.logs and args.misclassified:
        return "give LOG files (curves) or --misclassified MODEL (digits), not both: one picture per command"
    if args.count is not None and not args.misclassified:
        return "--count is for --misclassified MODEL (how many digits to draw)"
    return None


def default_output(args) -> str:
    """Where the picture goes without ``-o``: beside the one log or the model, else curves.png here."""
    if args.misclassified:
        model = Path(args.misclassified)
        return str(model.with_name(f"{model.stem}-misclassified.png"))
    return str(Path(args.logs[0]).with_suffix(".png")) if len(args.logs) == 1 else "curves.png"


def run(args) -> int:
    if not args.logs and not args.misclassified:
        raise ConfigError("give one or more JSON-lines logs (from gpunet train --log), or --misclassified MODEL")
    output = args.output or default_output(args)
    plots.output_format(output)
    check_writable(output, "-o")
    if args.misclassified:
        net, host, split, predicted = predictions(args, args.misclassified, "test")
        wrong = np.flatnonzero(predicted != split[1])[: args.count or 36]
        x, _ = pin_split(net.backend, split[0][wrong], split[1][wrong], net.dtype)
        outputs = net.backend.to_host(net.outputs(x))
        shown, total = plots.misclassified(host.test, host.image_shape, predicted, output, wrong, outputs)
        say(f"{shown} of the {total} misclassified test digits (of {len(predicted)}) drawn to {output}")
    else:
        drawn = plots.curves(args.logs, output)
        say(f"curves of {drawn} drawn to {output}")
    return 0
