"""What each ``gpunet`` command does; :mod:`gpunet.cli` parses the arguments and calls these."""

from __future__ import annotations

import json
import os
import platform
import sys

import numpy as np

from . import __version__
from .backend import BackendError, get_backend
from .data import BOOK_PICKLE, DataError, data_dir, load_book_pickle, load_host, pin, pin_split
from .errors import ConfigError
from .kernels import choose, device_for
from .network import Network

TRAIN_DEFAULTS = {"sizes": [784, 30, 10], "epochs": 30, "batch_size": 10, "eta": 3.0, "dtype": "float32"}
FROM_CHECKPOINT = ("sizes", "batch_size", "eta", "dtype", "seed")


def say(*args, **kwargs) -> None:
    """A note for the user on stderr, so stdout stays the book's transcript."""
    print("gpunet:", *args, file=sys.stderr, **kwargs)


def host_data(args):
    """The dataset the arguments name: the book's pickle, or IDX files (downloaded first if missing)."""
    from .download import download, missing

    if getattr(args, "data", None):
        return load_book_pickle(args.data)
    folder = data_dir(args.data_dir)
    if missing(folder) and (folder / BOOK_PICKLE).is_file():
        return load_book_pickle(folder / BOOK_PICKLE)
    if missing(folder) and getattr(args, "download", False):
        download(folder, args.mirror, say=say)
    return load_host(folder, getattr(args, "validation_size", 10_000))


def _train_device(args):
    """The device to train on: auto weighs the kernels for the flags given (else the defaults, as on resume)."""
    sizes, dtype, batch = (getattr(args, k) or TRAIN_DEFAULTS[k] for k in ("sizes", "dtype", "batch_size"))
    return device_for(args.device, sizes, dtype, batch)


def _backend(args):
    backend = get_backend(args.device)
    if backend.note:
        say(backend.note)
    return backend


def _check_fits(sizes, host) -> None:
    rows, cols = host.image_shape
    if sizes[0] != rows * cols:
        raise ConfigError(f"--sizes must start with {rows * cols} (the {rows}x{cols} image size), got {sizes[0]}")
    if sizes[-1] < host.n_classes:
        raise ConfigError(f"--sizes must end with at least {host.n_classes} outputs (one per class), got {sizes[-1]}")


def _network_for(args, backend):
    """A new network from the flags, or the one in ``--resume``; and the settings of the run."""
    if args.resume:
        explicit = [k for k in FROM_CHECKPOINT if getattr(args, k) is not None]
        if explicit:
            flag = "--" + explicit[0].replace("_", "-")
            raise ConfigError(f"{flag} comes from the checkpoint when resuming; leave it out")
        net = Network.load(args.resume, device=backend)
        settings = net.record.get("settings")
        if not settings:
            raise DataError(f"{args.resume}: a saved model, not a checkpoint (it has no training settings)")
        settings = {**settings, "epochs": args.epochs if args.epochs is not None else settings["epochs"]}
        return net, settings
    settings = {k: getattr(args, k) if getattr(args, k) is not None else v for k, v in TRAIN_DEFAULTS.items()}
    settings["seed"] = args.seed if args.seed is not None else int(np.random.SeedSequence().entropy % 2**32)
    net = Network(settings["sizes"], seed=settings["seed"], device=backend, dtype=settings["dtype"])
    return net, settings


def cmd_train(args) -> int:
    from .runs import JsonLog, check_writable, manifest

    for flag in ("save", "checkpoint", "log"):
        if getattr(args, flag):
            check_writable(getattr(args, flag), f"--{flag}")
    backend = _train_device(args)
    host = host_data(args)
    net, settings = _network_for(args, backend)
    _check_fits(net.sizes, host)
    if args.eval == "validation" and len(host.validation[1]) == 0:
        raise ConfigError("--eval validation needs --validation-size > 0")
    batch = min(settings["batch_size"], max(len(host.train[1]), 1))  # as Network.SGD clamps it
    kernel, why = choose(backend, net.sizes, settings["dtype"], batch, args.kernel)
    data = pin(host, backend, net.dtype)
    settings.update(eval=args.eval, validation_size=len(host.validation[1]))
    device = f"device {backend.name} ({backend.description})"
    print(f"gpunet {__version__} | {device} | {backend.library} | {settings['dtype']}")
    if backend.note:
        print(backend.note)
    print(
        f"sizes {net.sizes} | {len(host.train[1])} train / {len(host.validation[1])} validation / "
        f"{len(host.test[1])} test | {data.nbytes / 1e6:.1f} MB pinned on {backend.name} | "
        f"kernel {kernel.name} ({why})"
    )
    resumed = f" | resumed at epoch {net.epoch} from {args.resume}" if args.resume else ""
    print(
        f"epochs {settings['epochs']} | mini-batch {settings['batch_size']} | eta {settings['eta']:g} | "
        f"seed {settings['seed']} | eval {args.eval}{resumed}",
        flush=True,
    )
    record = {"settings": settings}
    if args.save or args.log or args.checkpoint:
        record["manifest"] = manifest(backend, settings, host.files, data.nbytes)
        record["manifest"]["kernel"] = {"name": kernel.name, "reason": why}
    log = JsonLog(args.log, record.get("manifest", {})) if args.log else None
    seconds = list(net.record.get("epoch_seconds", [])) if args.resume else []
    saved = {"epoch": None}
    bar = _progress_bar(len(host.train[1]))

    def after_epoch(result):
        if bar:
            bar.close()  # clear the epoch's bar before its line
        print(result, flush=True)
        seconds.append(result.seconds)
        entry = {"epoch": result.epoch, "seconds": result.seconds, "eval": args.eval}
        if result.correct is not None:
            entry.update(correct=result.correct, total=result.total, accuracy=result.correct / result.total)
        if args.monitor_cost:
            entry["training_cost"] = net.total_cost(data.training_data)
        if log:
            log.append(entry)
        if args.checkpoint:
            net.save(args.checkpoint, **record, epoch_seconds=seconds)
            saved["epoch"] = result.epoch

    remaining = max(settings["epochs"] - net.epoch, 0)
    try:
        net.SGD(
            data.training_data,
            remaining,
            settings["batch_size"],
            settings["eta"],
            test_data={"test": data.test_data, "validation": data.validation_data, "none": None}[args.eval],
            callback=after_epoch,
            kernel=kernel.name,
            progress=bar,
        )
    except KeyboardInterrupt:
        if saved["epoch"] is not None:
            say(f"interrupted; epoch {saved['epoch']} is saved in {args.checkpoint}: resume with")
            say(f"  gpunet train --resume {args.checkpoint}")
        else:
            say("interrupted; nothing was saved (--checkpoint PATH keeps every epoch)")
        return 130
    finally:
        if bar:
            bar.close()
    if args.save:
        net.save(args.save, **record, epoch_seconds=seconds)
        say(f"saved the network to {args.save}")
    return 0


class _Bar:
    """A tqdm bar over the examples of each epoch, only when a person is watching a terminal."""

    def __init__(self, total):
        from tqdm import tqdm

        self.tqdm, self.total, self.bar = tqdm, total, None

    def __call__(self, done: int) -> None:
        if self.bar is None:
            self.bar = self.tqdm(total=self.total, unit="ex", leave=False, unit_scale=True)
        self.bar.update(done)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _progress_bar(total):
    return _Bar(total) if sys.stdout.isatty() and sys.stderr.isatty() else None


def _predictions(args, model, split_name):
    """A saved network's answers on one split: (network, host data, the split, predicted labels on the host)."""
    backend = _backend(args)
    net = Network.load(model, device=backend)
    host = host_data(args)
    _check_fits(net.sizes, host)
    split = {"test": host.test, "validation": host.validation, "train": host.train}[split_name]
    x, _ = pin_split(backend, *split, net.dtype)
    return net, host, split, backend.to_host(net.predict(x))


def cmd_evaluate(args) -> int:
    net, _, split, predicted = _predictions(args, args.model, args.split)
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


def cmd_predict(args) -> int:
    from .images import load_inputs

    backend = _backend(args)
    net = Network.load(args.model, device=backend)
    for name, x in load_inputs(args.images, net.sizes[0], invert=args.invert):
        out = backend.to_host(net.outputs(backend.asarray(x, dtype=net.dtype)))
        for k, activations in enumerate(out):
            label = name if len(out) == 1 else f"{name}[{k}]"
            shown = " ".join(f"{a:.3f}" for a in activations)
            print(f"{label}: {int(np.argmax(activations))}  (output activations: {shown})")
    return 0


def cmd_plot(args) -> int:
    from . import plots

    if args.misclassified:
        _, host, _, predicted = _predictions(args, args.misclassified, "test")
        shown = plots.misclassified(host.test, host.image_shape, predicted, args.output, args.count)
        say(f"{shown} misclassified test digits drawn to {args.output}")
    else:
        if not args.logs:
            raise ConfigError("give one or more JSON-lines logs (from gpunet train --log), or --misclassified MODEL")
        plots.curves(args.logs, args.output)
        say(f"curves of {len(args.logs)} run(s) drawn to {args.output}")
    return 0


def cmd_bench(args) -> int:
    from . import bench

    if args.sizes is None and args.batch_size is None:
        configs = bench.BOOK_CONFIGS
    else:
        configs = [(args.sizes or [784, 30, 10], args.batch_size or 10)]
    cpu = get_backend("cpu")
    machine = f"{cpu.description}, {os.cpu_count()} cores | {cpu.library}"
    if not args.json:
        print(f"gpunet {__version__} bench | {machine} | {args.epochs} timed epochs per path, no evaluation")
        print(bench.HEADER, flush=True)
    report = (lambda row: None) if args.json else (lambda row: print(bench.format_row(row), flush=True))
    skipped = {}

    def missing(what, why):
        skipped[what] = why
        say(f"{what}: not measured: {why}")

    rows = bench.run(
        host_data(args), args.device, configs, args.dtype, args.epochs, args.book_examples, report, missing
    )
    if args.json:
        print(json.dumps({"gpunet": __version__, "machine": machine, "rows": rows, "skipped": skipped}, indent=2))
    return 0


def cmd_info(args) -> int:
    from .kernels import describe

    cpu = get_backend("cpu")
    print(f"gpunet {__version__} | Python {platform.python_version()} | {platform.platform()}")
    print(f"cpu: {cpu.description} | {cpu.library}")
    try:
        cuda = get_backend("cuda")
        print(f"cuda: {cuda.name} {cuda.description} | {cuda.library}")
    except BackendError as e:
        print(f"cuda: not usable: {e}")
    for line in describe():
        print(line)
    try:
        print(f"data: {host_data(args).describe()}")
    except DataError as e:
        print(f"data: not usable: {e}")
    return 0


def cmd_data_download(args) -> int:
    from .download import download

    folder = data_dir(args.data_dir)
    fetched = download(folder, args.mirror, say=say)
    print(f"downloaded {len(fetched)} file(s) into {folder}" if fetched else f"all four MNIST files are in {folder}")
    return 0


def cmd_data_verify(args) -> int:
    from .download import verify

    folder = data_dir(args.data_dir)
    for line in verify(folder):
        print(line)
    host = load_host(folder, 10_000)
    if (len(host.train[1]) + len(host.validation[1]), len(host.test[1]), host.image_shape) != (
        60_000,
        10_000,
        (28, 28),
    ):
        raise ConfigError(f"{folder}: not MNIST's 60000 + 10000 28x28 images")
    print(f"ok  {host.describe()}")
    return 0


def cmd_data_info(args) -> int:
    print(host_data(args).describe())
    return 0
