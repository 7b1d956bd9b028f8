"""``gpunet plot``: accuracy and cost curves of logged runs (and sweeps), or the test digits a model gets wrong."""

from __future__ import annotations

from .. import plots
from ..errors import ConfigError, say
from ..runs import check_writable
from . import options
from .common import predictions

NAME = "plot"
HELP = "draw accuracy/cost curves of logged runs, or the test digits a model gets wrong"
WITHOUT_GPU = "leave out --device to draw on the CPU (the default)"


def add_arguments(parser) -> None:
    parser.add_argument("logs", nargs="*", metavar="LOG", help="JSON-lines logs written by gpunet train --log")
    parser.add_argument("-o", "--output", required=True, help="the picture to write: .png, .pdf, .svg or .jpg")
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


def run(args) -> int:
    plots.output_format(args.output)
    check_writable(args.output, "-o")
    if args.misclassified:
        _, host, _, predicted = predictions(args, args.misclassified, "test")
        shown, wrong = plots.misclassified(host.test, host.image_shape, predicted, args.output, args.count or 36)
        say(f"{shown} of the {wrong} misclassified test digits (of {len(predicted)}) drawn to {args.output}")
    else:
        if not args.logs:
            raise ConfigError("give one or more JSON-lines logs (from gpunet train --log), or --misclassified MODEL")
        drawn = plots.curves(args.logs, args.output)
        say(f"curves of {drawn} drawn to {args.output}")
    return 0
