"""What each ``gpunet`` command does; :mod:`gpunet.cli` parses the arguments and calls these."""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .backend import BackendError, get_backend
from .data import (
    BOOK_PICKLE,
    FILES,
    DataError,
    as_folder,
    data_dir,
    data_dirs,
    load_book_pickle,
    load_host,
    not_found,
    pin,
    pin_split,
)
from .errors import ConfigError
from .kernels import choose, device_for
from .network import Network, mini_batch

TRAIN_DEFAULTS: dict[str, Any] = {
    "sizes": [784, 30, 10],
    "epochs": 30,
    "batch_size": 10,
    "eta": 3.0,
    "dtype": "float32",
    "validation_size": 10_000,
}
FROM_CHECKPOINT = ("sizes", "batch_size", "eta", "dtype", "seed", "validation_size")


def say(*args, **kwargs) -> None:
    """A note for the user on stderr, so stdout stays the book's transcript."""
    print("gpunet:", *args, file=sys.stderr, **kwargs)


def host_data(args):
    """The dataset the arguments name: the book's pickle, or IDX files (downloaded first if missing)."""
    from .download import download, missing

    if getattr(args, "data", None):
        return load_book_pickle(args.data)
    folders = data_dirs(args.data_dir)
    folder = as_folder(data_dir(args.data_dir))
    lacking = missing(folder)
    if lacking and (folder / BOOK_PICKLE).is_file():
        return load_book_pickle(folder / BOOK_PICKLE)
    if lacking and getattr(args, "download", False):
        if len(folders) > 1:
            say(f"no MNIST data in {', '.join(map(str, folders[:-1]))}: downloading it into {folder}")
        download(folder, args.mirror, say=say, looked_in=folders)
    elif len(lacking) == len(FILES) and len(folders) > 1:  # searched, found nothing (a named folder: load_host says)
        raise not_found(
            folders, ", or drop --no-download" if hasattr(args, "download") else ", or run `gpunet data download`"
        )
    size = getattr(args, "validation_size", None)
    return load_host(folder, 10_000 if size is None else size)


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
    """A new network from the flags, or the one in ``--resume``; the settings of the run; its id."""
    from .runs import checkpoint_settings, new_run_id

    if args.resume:
        net = Network.load(args.resume, device=backend)
        settings, run = checkpoint_settings(net, args.resume)
        changed = [k for k in FROM_CHECKPOINT if getattr(args, k) not in (None, settings.get(k))]
        if changed:
            flag = "--" + changed[0].replace("_", "-")
            raise ConfigError(f"{flag} comes from the checkpoint when resuming; leave it out")
        if args.epochs is not None:
            settings["epochs"] = args.epochs
        return net, settings, run
    settings = {k: getattr(args, k) if getattr(args, k) is not None else v for k, v in TRAIN_DEFAULTS.items()}
    settings["seed"] = args.seed if args.seed is not None else int(np.random.SeedSequence().generate_state(1)[0])
    net = Network(settings["sizes"], seed=settings["seed"], device=backend, dtype=settings["dtype"])
    return net, settings, new_run_id()


def _run_targets(args, net) -> dict:
    """The files the run writes: a resumed run goes on writing its checkpoint and its log."""
    log = args.log
    if args.resume and log is None and net.record.get("log"):
        log = Path(net.record["log"])
        if not log.parent.is_dir():
            say(f"the run's log {log} is in a folder that is gone; not logging (--log PATH starts a new one)")
            log = None
    return {"--checkpoint": args.checkpoint or args.resume, "--log": log, "--save": args.save}


def _resume_command(args, checkpoint) -> str:
    data = [f"--data {args.data}"] if args.data else [f"--data-dir {args.data_dir}"] if args.data_dir else []
    return " ".join(["gpunet train --resume", str(checkpoint), *data])


def _check_eval(args, host) -> None:
    """The split that --eval scores has examples in it."""
    if args.eval == "validation" and len(host.validation[1]) == 0:
        raise ConfigError("--eval validation needs --validation-size > 0")
    if args.eval == "test" and len(host.test[1]) == 0:
        raise ConfigError(f"{host.source} has no test images: use --eval validation or --eval none")


def _data_hashes(args, settings, host, files) -> dict:
    """The SHA-256 of each data file, when the run writes files; a resumed run reads the data it started on."""
    from .runs import file_sha256

    hashes = {str(p): file_sha256(p) for p in host.files} if files.paths else {}
    if args.resume and sorted(hashes.values()) != settings["data"]:
        raise DataError(
            f"{args.resume}: trained on other data files than these; give the first run's --data-dir or --data"
        )
    return hashes


def _print_run(args, backend, net, settings, host, data, kernel: str) -> None:
    """The transcript's head: gpunet and the device, the data and the kernel, the settings."""
    device = f"device {backend.name} ({backend.description})"
    print(f"gpunet {__version__} | {device} | {backend.library} | {settings['dtype']}")
    if backend.note:
        print(backend.note)
    print(
        f"sizes {net.sizes} | {len(host.train[1])} train / {len(host.validation[1])} validation / "
        f"{len(host.test[1])} test | {data.nbytes / 1e6:.1f} MB pinned on {backend.name} | kernel {kernel}"
    )
    resumed = f" | resumed at epoch {net.epoch} from {args.resume}" if args.resume else ""
    print(
        f"epochs {settings['epochs']} | mini-batch {settings['batch_size']} | eta {settings['eta']:g} | "
        f"seed {settings['seed']} | eval {args.eval}{resumed}",
        flush=True,
    )


def _say_interrupted(args, files) -> None:
    checkpoint = files.paths.get("--checkpoint")
    if files.saved_epoch is not None:
        say(f"interrupted; epoch {files.saved_epoch} is saved in {checkpoint}: resume with")
        say(f"  {_resume_command(args, checkpoint)}")
    else:
        say("interrupted; nothing was saved (--checkpoint PATH keeps every epoch)")


def cmd_train(args) -> int:
    from .runs import RunFiles, manifest
    from .signals import exit_status

    backend = _train_device(args)
    net, settings, run = _network_for(args, backend)
    if args.resume and net.epoch >= settings["epochs"]:
        say(
            f"nothing to do: {args.resume} has {net.epoch} epochs, the run ends at {settings['epochs']}; "
            f"give --epochs N (N > {net.epoch}) to train on"
        )
        return 0
    with RunFiles(_run_targets(args, net), run, net.epoch if args.resume else None, args.force) as files:
        if args.resume and net.epoch and files.paths["--checkpoint"] == Path(args.resume):
            files.saved_epoch = net.epoch - 1  # the checkpoint resumed from holds it already
        args.validation_size = settings["validation_size"]  # the run's, on resume the checkpoint's
        host = host_data(args)
        _check_fits(net.sizes, host)
        _check_eval(args, host)
        batch = mini_batch(settings["batch_size"], len(host.train[1]))
        kernel, why = choose(backend, net.sizes, settings["dtype"], batch, args.kernel)
        hashes = _data_hashes(args, settings, host, files)
        data = pin(host, backend, net.dtype, net.sizes[-1])
        settings.update(eval=args.eval, data=sorted(hashes.values()))
        _print_run(args, backend, net, settings, host, data, f"{kernel.name} ({why})")
        log = files.paths.get("--log")
        record = {"settings": settings, "run": run, "log": str(log.resolve()) if log else None}
        if files.paths:
            record["manifest"] = manifest(backend, settings, hashes, data.nbytes, run)
            record["manifest"]["kernel"] = {"name": kernel.name, "reason": why}
            files.start_log(record["manifest"])
        record["epoch_seconds"] = list(net.record.get("epoch_seconds", [])) if args.resume else []
        bar = _progress_bar(len(host.train[1]))

        def after_epoch(result):
            if bar:
                bar.close()  # clear the epoch's bar before its line
            print(result, flush=True)
            record["epoch_seconds"].append(result.seconds)
            entry = {"epoch": result.epoch, "seconds": result.seconds, "eval": args.eval}
            if result.correct is not None:
                entry.update(correct=result.correct, total=result.total, accuracy=result.correct / result.total)
            if args.monitor_cost:
                entry["training_cost"] = net.total_cost(data.training_data)
            files.after_epoch(net, entry, record)

        try:
            net.SGD(
                data.training_data,
                settings["epochs"] - net.epoch,
                settings["batch_size"],
                settings["eta"],
                test_data={"test": data.test_data, "validation": data.validation_data, "none": None}[args.eval],
                callback=after_epoch,
                kernel=kernel.name,
                progress=bar,
            )
        except KeyboardInterrupt as stop:  # Ctrl-C, or SIGTERM (signals.Terminated)
            _say_interrupted(args, files)
            return exit_status(stop)
        finally:
            if bar:
                bar.close()
        if files.save(net, record):
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
    x, _ = pin_split(backend, split[0], split[1], net.dtype)
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
    for name, x in load_inputs(args.images, net.sizes[0], invert=args.invert, say=say):
        out = backend.to_host(net.outputs(backend.asarray(x, dtype=net.dtype)))
        for k, activations in enumerate(out):
            label = name if len(out) == 1 else f"{name}[{k}]"
            # The output activations, normalised to sum to 1, of the three most active outputs.
            share = activations / max(float(activations.sum()), np.finfo(activations.dtype).tiny)
            top = np.argsort(-activations, kind="stable")[:3]
            shown = ", ".join(f"{d}: {share[d]:.2f}" for d in top)
            print(f"{label}: {int(top[0])}  (top 3: {shown})")
    return 0


def cmd_plot(args) -> int:
    from . import plots
    from .writing import check_writable

    plots.output_format(args.output)
    check_writable(args.output, "-o")
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

    folder = as_folder(data_dir(args.data_dir))
    fetched = download(folder, args.mirror, say=say, looked_in=data_dirs(args.data_dir))
    print(f"downloaded {len(fetched)} file(s) into {folder}" if fetched else f"all four MNIST files are in {folder}")
    return 0


def cmd_data_verify(args) -> int:
    from .download import verify

    folder = as_folder(data_dir(args.data_dir))
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
