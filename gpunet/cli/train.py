"""``gpunet train``: one network trained by mini-batch SGD, an epoch line each, its files kept as it goes."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .._version import __version__
from ..data import DataError, pin
from ..errors import ConfigError, say
from ..kernels import KERNELS, choose, device_for
from ..maths import mini_batch
from ..network import Network
from ..runs import RunFiles, checkpoint_settings, file_sha256, manifest, new_run_id
from ..runs.signals import exit_status
from ..validation import TRAIN_DEFAULTS
from . import options
from .common import ProgressBar, load_data

NAME = "train"
HELP = "train a network by mini-batch SGD and print test accuracy per epoch"
FROM_CHECKPOINT = ("sizes", "batch_size", "eta", "dtype", "seed", "validation_size")


def add_arguments(parser) -> None:
    parser.add_argument(
        "--device",
        type=options.device,
        default="auto",
        help="cpu, cuda, cuda:N or auto (the GPU where its kernel was measured faster than the CPU's, else the CPU)",
    )
    parser.add_argument("--sizes", type=options.sizes, metavar="N,N,...", help="layer sizes (default: 784,30,10)")
    parser.add_argument(
        "--epochs", type=options.epochs, help="epochs to reach, counted from 0, on resume too (default: 30)"
    )
    parser.add_argument("--batch-size", type=options.positive_int, help="mini-batch size (default: 10)")
    parser.add_argument("--eta", type=options.eta, help="learning rate (default: 3.0)")
    parser.add_argument("--seed", type=options.count, help="random seed (default: a fresh one, printed in the header)")
    parser.add_argument("--dtype", choices=["float32", "float64"], help="floating-point type (default: float32)")
    options.add_data_arguments(parser)
    parser.add_argument(
        "--eval", choices=["test", "validation", "none"], default="test", help="data scored after each epoch"
    )
    parser.add_argument(
        "--kernel",
        choices=list(KERNELS),
        help="run the epochs in this kernel (default: the fastest that runs here; `gpunet info` lists them)",
    )
    parser.add_argument(
        "--no-fused",
        dest="kernel",
        action="store_const",
        const="portable",
        help="the same as --kernel portable (the array-API loop; kept for older scripts)",
    )
    parser.add_argument("--save", metavar="PATH", help="write the trained network to PATH (.npz) at the end")
    parser.add_argument("--checkpoint", metavar="PATH", help="write the network to PATH (.npz) after every epoch")
    parser.add_argument(
        "--resume",
        metavar="PATH",
        help="continue from a checkpoint; its settings are used (with --epochs N, to N), and it goes on writing "
        "that checkpoint and its log",
    )
    parser.add_argument("--log", metavar="PATH", help="write the manifest and one JSON object per epoch to PATH")
    parser.add_argument(
        "--force",
        action="store_true",
        help="overwrite a --save/--checkpoint/--log file that is not this run's (refused otherwise)",
    )
    parser.add_argument(
        "--monitor-cost", action="store_true", help="also log the mean quadratic cost on the training data"
    )


def _train_device(args):
    """The device to train on: auto weighs the kernels for the flags given (else the defaults, as on resume)."""
    sizes, dtype, batch = (getattr(args, k) or TRAIN_DEFAULTS[k] for k in ("sizes", "dtype", "batch_size"))
    return device_for(args.device, sizes, dtype, batch)


def _network_for(args, backend):
    """A new network from the flags, or the one in ``--resume``; the settings of the run; its id."""
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


def run(args) -> int:
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
        host = load_data(args)
        host.check_fits(net.sizes)
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
        bar = ProgressBar.if_watched(len(host.train[1]))

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
