"""``gpunet baselines``: chapter 1's comparison (random guessing, average darkness, an SVM, the network),
measured on the split the network is trained and scored on, beside the book's figures."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..book import baselines as b
from ..data import pin_split
from ..errors import ConfigError, say
from ..network import Network
from ..sweep.outputs import read
from . import options
from .common import load_data

NAME = "baselines"
HELP = "chapter 1's comparison: random guessing, average darkness, an SVM, the network"


def add_arguments(parser) -> None:
    options.add_data_arguments(parser)
    parser.add_argument("--seed", type=options.count, default=0, help="seed of the random-guessing draw")
    svm = parser.add_mutually_exclusive_group()
    svm.add_argument("--skip-svm", action="store_true", help="leave out the SVM (it takes minutes)")
    book_svm = "the SVM with the 2015 defaults the book ran (gamma=1/n_features) instead of today's (gamma='scale')"
    svm.add_argument("--book-svm", action="store_true", help=book_svm)
    parser.add_argument("--model", action="append", metavar="FILE", help="a saved network to score (repeatable)")
    parser.add_argument("--sweep", metavar="DIR", help="the best networks of a sweep's --out folder")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")


def run(args) -> int:
    if args.sweep and not (Path(args.sweep) / "sweep.jsonl").is_file():  # before minutes of SVM, not after
        raise ConfigError(f"{args.sweep}: no sweep.jsonl here; --sweep takes a folder written by gpunet sweep --out")
    if not args.skip_svm:
        b.svm_classifier(args.book_svm, 1)  # scikit-learn is there, or one line says which extra to install
    host = load_data(args)
    (train_x, train_y), (test_x, test_y) = host.train, host.test
    n, total = len(train_y), len(test_y)
    if n == 0 or total == 0:
        raise ConfigError(f"{host.source}: baselines need training and test images, found {n} and {total}")
    say(f"data: {host.source} | trained on {n:,} images, scored on {total:,} test images")
    hits = lambda guesses: int(np.sum(np.asarray(guesses) == test_y))
    expected, drawn = b.random_guess(test_y, host.n_classes, args.seed)
    rows = [
        b.Row("random guessing (expected)", expected, total, b.BOOK_RANDOM, "measured: n / classes"),
        b.Row(f"random guessing (one draw, seed {args.seed})", hits(drawn), total, ""),
    ]
    start = time.perf_counter()
    guesses = b.guess_by_darkness(b.average_darknesses(train_x, train_y, host.n_classes), test_x)
    rows.append(b.Row("average darkness", hits(guesses), total, b.BOOK_DARKNESS, seconds=time.perf_counter() - start))
    networks = _network_rows(args, host, total)  # a model that cannot be read fails now, not after the SVM
    if not args.skip_svm:
        rows.append(_svm_row(train_x, train_y, test_x, hits, total, args.book_svm))
    rows += networks
    if not (host.image_shape == (28, 28) and host.n_classes == 10 and total == 10_000):  # the book's are MNIST's
        rows = [replace(r, book="") for r in rows]
    if args.json:
        print(json.dumps({"data": host.source, "train": n, "test": total, "rows": [r.as_json() for r in rows]}))
    else:
        _print_table(rows)
    return 0


def _svm_row(train_x, train_y, test_x, hits, total, book) -> b.Row:
    what = b.svm_description(book)
    expected = b.svm_estimate(len(train_y), len(test_x), book)
    say(
        f"SVM: {what} on {len(train_y):,} training images: expect about {b.duration(expected)} of one core's time "
        "(scaled from MNIST's, measured on a 2-core AMD EPYC); --skip-svm skips it"
    )
    start = time.perf_counter()
    with b.ticker("gpunet: SVM"):
        predicted = b.svm_predict((train_x, train_y), test_x, book)
    return b.Row(f"SVM: {what}", hits(predicted), total, b.BOOK_SVM, seconds=time.perf_counter() - start)


def _network_rows(args, host, total) -> list[b.Row]:
    rows = [_model_row(path, host, total) for path in args.model or []]
    if args.sweep:
        rows += _sweep_rows(Path(args.sweep), total)
    if rows:
        return rows
    if host.image_shape == (28, 28) and host.n_classes == 10 and (len(host.train[1]), total) == (50_000, 10_000):
        return b.readme_rows(total)  # MNIST's split: the README's measured figures, labelled as such
    return []


def _model_row(path, host, total) -> b.Row:
    net = Network.load(path, device="cpu")
    host.check_fits(net.sizes)
    images, labels = host.test
    x, labels = pin_split(net.backend, images, labels, net.dtype)
    name = f"network {net.sizes} ({Path(path).name}, after {net.epoch} epochs)"
    return b.Row(name, net.evaluate((x, labels)), total, b.BOOK_NETWORK.get(tuple(net.sizes), ""))


def _sweep_rows(out: Path, total: int) -> list[b.Row]:
    """Per configuration of the sweep: its best network at its best epoch, and the median of the best epochs."""
    manifest, records = read(out)
    scored = manifest.get("settings", {}).get("grid", {}).get("eval", "test")
    source = f"measured by gpunet sweep ({out}){'' if scored == 'test' else f', scored on {scored}'}"
    configs: dict = {}
    for r in records:
        configs.setdefault(r.config, []).append(r)
    rows = []
    for config, members in configs.items():
        best = max(members, key=lambda r: r.rank)
        book = b.BOOK_NETWORK.get(tuple(config.sizes), "")
        median = float(np.median([r.correct[r.best_epoch] for r in members]))
        name = f"network {config.label}"
        rows.append(b.Row(f"{name}, median of {len(members)} seeds' best epochs", median, best.total, book, source))
        label = f"{name}, best of {len(members)} seeds (seed {best.seed}, epoch {best.best_epoch})"
        rows.append(b.Row(label, best.correct[best.best_epoch], best.total, book, source))
    return rows


def _print_table(rows: list[b.Row]) -> None:
    width = max(len(r.method) for r in rows)
    print(f"{'method':<{width}}  {'measured':<29}  the book")
    for r in rows:
        star = "" if r.source.startswith("measured") else " *"
        line = f"{r.method:<{width}}  {r.correct:>8,.0f} / {r.total:<6,} {100 * r.accuracy:6.2f} %{star:2}  {r.book}"
        print(line.rstrip())
    notes = sorted({r.source for r in rows if not r.source.startswith("measured")})
    for note in notes:
        print(f"* {note}")
