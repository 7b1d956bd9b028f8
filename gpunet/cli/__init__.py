"""The ``gpunet`` command line: one module per command, as pip's ``commands/``.

Each command module has ``NAME``, ``HELP`` (and perhaps ``DESCRIPTION``, and ``WITHOUT_GPU``: what to do
when CUDA cannot run here), ``add_arguments(parser)`` and ``run(args) -> int``; :data:`COMMANDS` lists them in
the order ``gpunet --help`` shows. The options several commands take are defined once in :mod:`.options`; what
they share beyond options is in :mod:`.common`. Every expected failure is a :class:`~gpunet.errors.GpunetError`,
printed by :func:`main` as one line.
"""

from __future__ import annotations

import logging
import sys

from .._version import __version__
from ..backend import CudaUnusable
from ..errors import GpunetError, error_line, log, one_line, printable
from ..io.signals import exit_status, sigterm_as_interrupt
from . import baselines, bench, check, data, evaluate, info, options, plot, predict, show, sweep, train
from .streams import guarded, status_after

COMMANDS = (train, bench, sweep, evaluate, predict, plot, show, baselines, check, info, data)


def build_parser() -> options.Parser:
    description = "The network of Nielsen's 'Neural Networks and Deep Learning', ch. 1."
    parser = options.Parser(prog="gpunet", description=description)
    parser.add_argument("--version", action="version", version=f"gpunet {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=options.Parser, required=True)
    for command in COMMANDS:
        about = getattr(command, "DESCRIPTION", None)
        sub = commands.add_parser(command.NAME, help=command.HELP, description=about, formatter_class=options.Formatter)
        command.add_arguments(sub)
        if hasattr(command, "run"):
            sub.set_defaults(run=command.run, without_gpu=getattr(command, "WITHOUT_GPU", ""))
    return parser


def main(argv=None) -> int:
    with guarded() as stdout:  # a closed or full stdout/stderr ends nothing: the work goes on
        return status_after(stdout, _main(argv))


class Notes(logging.Formatter):
    """Formats a note as ``gpunet: TEXT``, one line a terminal shows as it is."""

    def format(self, record: logging.LogRecord) -> str:
        return f"gpunet: {printable(record.getMessage())}"


def _main(argv) -> int:
    args = build_parser().parse_args(argv)
    notes = logging.StreamHandler(sys.stderr)  # the one handler: notes on stderr, so stdout stays the transcript
    notes.setFormatter(Notes())
    downloads = log.getChild("download")
    levels = log.level, downloads.level  # given back at the end: main() may run inside a Python session
    log.addHandler(notes)
    log.setLevel(logging.INFO)
    downloads.setLevel(logging.WARNING if getattr(args, "quiet", False) else logging.NOTSET)
    try:
        with sigterm_as_interrupt():  # SIGTERM, SIGHUP, ... (docker stop, a closed terminal) end it as Ctrl-C does
            status = args.run(args)
            sys.stdout.flush()
        return status
    except GpunetError as e:  # every expected failure, turned into one line where it happens
        without_gpu = getattr(args, "without_gpu", "")
        instead = f"; {without_gpu}" if isinstance(e, CudaUnusable) and without_gpu else ""
        print(error_line(f"{e}{instead}"), file=sys.stderr)  # CUDA: what this command can do without it
        return 2
    except MemoryError as e:  # anywhere: an array larger than the memory left (ulimit -v, a cgroup, the machine)
        hint = "try smaller --sizes, --batch-size or --chunk, or free memory"
        print(error_line(f"out of memory ({one_line(e)}); {hint}"), file=sys.stderr)
        return 2
    except KeyboardInterrupt as stop:
        print("gpunet: interrupted", file=sys.stderr)
        return exit_status(stop)
    finally:
        log.removeHandler(notes)
        log.setLevel(levels[0])
        downloads.setLevel(levels[1])
