"""``gpunet evaluate``: a saved network's accuracy, per class, and its confusion matrix."""

from __future__ import annotations

import numpy as np

from . import options
from .common import predictions

NAME = "evaluate"
HELP = "score a saved network: accuracy, per-class accuracy, confusion matrix"
WITHOUT_GPU = "use --device cpu to score on the CPU"


def add_arguments(parser) -> None:
    parser.add_argument("model", help="a network saved by gpunet train --save or --checkpoint")
    parser.add_argument("--split", choices=["test", "validation", "train"], default="test", help="data to score")
    options.add_device(parser, "auto", options.AUTO_USABLE)
    options.add_data_arguments(parser, download=False)


def run(args) -> int:
    net, _, split, predicted = predictions(args, args.model, args.split)
    labels = split[1].astype(np.int64)
    classes = net.sizes[-1]
    confusion = np.zeros((classes, classes), np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    correct = int(np.trace(confusion))
    print(
        f"{args.model} on {args.split}: {correct} / {len(labels)} correct, accuracy {correct / max(len(labels), 1):.2%}"
    )
    print("per class (true label: accuracy, count)")
    for c in range(classes):
        count = confusion[c].sum()
        if count:
            print(f"  {c}: {confusion[c, c] / count:7.2%}  {count}")
    print("confusion matrix (rows: true label, columns: predicted)")
    width = max(4, len(str(confusion.max())) + 1)
    print("    " + "".join(f"{c:>{width}}" for c in range(classes)))
    for c in range(classes):
        print(f"{c:>3} " + "".join(f"{v:>{width}}" for v in confusion[c]))
    return 0
