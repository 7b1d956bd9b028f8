"""``gpunet predict``: a saved network's answers for pictures (PNG, JPEG, ...) or IDX image files."""

from __future__ import annotations

import numpy as np

from ..data.images import load_inputs
from ..errors import say
from ..network import Network
from . import options
from .common import backend_for

NAME = "predict"
HELP = "classify PNG/JPEG pictures or IDX image files with a saved network"


def add_arguments(parser) -> None:
    parser.add_argument("model", help="a network saved by gpunet train --save or --checkpoint")
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="PNG/JPEG files (resized to the input) or IDX files")
    polarity = parser.add_mutually_exclusive_group()
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
    parser.add_argument(
        "--device",
        type=options.device,
        default="cpu",
        help="cpu, cuda, cuda:N or auto (the CPU: a few pictures need no GPU)",
    )


def run(args) -> int:
    backend = backend_for(args)
    net = Network.load(args.model, device=backend)
    for name, x, first in load_inputs(args.images, net.sizes[0], invert=args.invert, say=say):
        out = backend.to_host(net.outputs(backend.asarray(x, dtype=net.dtype)))
        # The output activations, normalised to sum to 1, of the three most active outputs: a chunk at a time.
        share = out / np.maximum(out.sum(axis=1, keepdims=True), np.finfo(out.dtype).tiny)
        top = np.argsort(-out, axis=1, kind="stable")[:, :3]
        lines = []
        for k, (digits, shares) in enumerate(zip(top.tolist(), np.take_along_axis(share, top, axis=1).tolist())):
            label = name if first is None else f"{name}[{first + k}]"
            shown = ", ".join(f"{d}: {p:.2f}" for d, p in zip(digits, shares))
            lines.append(f"{label}: {digits[0]}  (top 3: {shown})")
        print("\n".join(lines))
    return 0
