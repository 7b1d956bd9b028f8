"""``gpunet predict``: a saved network's answers for pictures (PNG, JPEG, ...) or IDX image files."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np

from ..errors import ConfigError, DataError, error_line, say
from ..io.fs import check_writable
from ..io.images import SHEET_MOST, inverted_note, load_inputs, write_sheet
from ..network import Network
from . import options
from .common import backend_for

NAME = "predict"
HELP = "classify PNG/JPEG pictures or IDX image files with a saved network"
DESCRIPTION = (
    "A picture is read as MNIST's digits were made: the ink above the paper's level (estimated over the whole "
    "picture: a lamp's gradient is paper), the digit's bounding box scaled into 20x20 and put in the "
    "28x28 field with its centre of mass at the centre; a picture with no ink (or almost none) gets no answer. "
    "Where it has transparency, what is drawn is the digit."
)
WITHOUT_GPU = "leave out --device to classify on the CPU (the default)"


def add_arguments(parser) -> None:
    parser.add_argument("model", help="a network saved by gpunet train --save or --checkpoint")
    images_help = "PNG/JPEG files (centred as MNIST did, see above) or IDX image files"
    parser.add_argument("images", nargs="+", metavar="IMAGE", help=images_help)
    polarity = parser.add_mutually_exclusive_group()
    invert_help = (
        "turn dark digits on a light background into MNIST's light on black (by default: pictures whose "
        "border is light are inverted, with one note for the run)"
    )
    polarity.add_argument("--invert", dest="invert", action="store_const", const="yes", help=invert_help)
    never = "never invert, even a light picture"
    polarity.add_argument("--no-invert", dest="invert", action="store_const", const="no", help=never)
    parser.set_defaults(invert="auto")
    show = "write what the network saw to PATH (a PNG): every input of this call as 28x28, with its name and answer"
    parser.add_argument("--show-input", metavar="PATH", help=show)
    options.add_device(parser, "cpu", options.AUTO_USABLE, ", as a few pictures need no GPU")


def run(args) -> int:
    if args.show_input is not None:
        if not args.show_input.lower().endswith(".png"):
            raise ConfigError(f"--show-input {args.show_input}: the sheet is a PNG; end the name in .png")
        check_writable(args.show_input, "--show-input")
    backend = backend_for(args)
    net = Network.load(args.model, device=backend)
    failed = 0
    inverted: list[str] = []  # the names of the pictures inverted, for one note
    shown: list | None = [] if args.show_input else None
    for path in args.images:  # a file that cannot be read is one line; the others are still classified
        try:
            for name, x, first in load_inputs([path], net.sizes[0], invert=args.invert, inverted=inverted):
                _answer(backend, net, name, x, first, shown)
        except DataError as e:
            print(error_line(str(e)), file=sys.stderr, flush=True)
            failed += 1
    if inverted:
        say(inverted_note(inverted))
    if shown is not None:
        write_sheet(args.show_input, shown[:SHEET_MOST], math.isqrt(net.sizes[0]))
        most = f"the first {SHEET_MOST} of {len(shown)}" if len(shown) > SHEET_MOST else f"{len(shown)}"
        say(f"what the network saw: {most} inputs drawn to {args.show_input}")
    return 2 if failed else 0


def _answer(backend, net, name, x, first, shown) -> None:
    """The network's answer for each row of ``x`` (None: a picture with no digit in it), each also appended to
    ``shown`` (name, row, answer) unless it is None; ``first``: the index of the first row in its IDX file
    (None: a file of one image)."""
    if x is None:
        print(f"{name}: no digit: the picture has no ink (or almost none), nothing to classify", flush=True)
        if shown is not None:
            shown.append((Path(name).name, None, "no digit"))
        return
    out = backend.to_host(net.outputs(backend.asarray(x, dtype=net.dtype)))
    # The output activations, normalised to sum to 1, of the three most active outputs: a chunk at a time.
    share = out / np.maximum(out.sum(axis=1, keepdims=True), np.finfo(out.dtype).tiny)
    top = np.argsort(-out, axis=1, kind="stable")[:, :3]
    lines = []
    for k, (digits, shares) in enumerate(zip(top.tolist(), np.take_along_axis(share, top, axis=1).tolist())):
        label = name if first is None else f"{name}[{first + k}]"
        top3 = ", ".join(f"{d}: {p:.2f}" for d, p in zip(digits, shares))
        lines.append(f"{label}: {digits[0]}  (top 3: {top3})")
        if shown is not None:
            shown.append((Path(label).name, x[k], f"{digits[0]} ({shares[0]:.2f})"))
    print("\n".join(lines), flush=True)
