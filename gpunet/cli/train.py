"""``gpunet train``: one network trained by mini-batch SGD, an epoch line each, its files kept as it goes."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .._version import __version__
from ..data import DataError, pin
from ..errors import ConfigError, GpunetError, say
from ..io.find import shown
from ..io.identity import checksums, matches
from ..io.signals import exit_status
from ..kernels import KERNELS, choose, compile_seconds, device_for
from ..maths import COSTS, mini_batch
from ..network import Network
from ..runs import RunFiles, checkpoint_settings, manifest, new_run_id
from ..settings import BOOK, CONSTRAINTS, COST_NAMES, DTYPES, INIT_NAMES, Settings
from . import options
from .common import ProgressBar, counted, load_data

NAME = "train"
HELP = "train a network by mini-batch SGD and print test accuracy per epoch"
WITHOUT_GPU = "use --device cpu to train on the CPU"
# What the run writes besides the settings, kept with them so that a resumed run writes the same
# (these defaults: for checkpoints written before they were kept).
OUTPUTS = {"eval": "test", "monitor_cost": False, "monitor": [], "stop_after": 0, "halve_eta": 0}
DIFFER = "its epochs from here may differ in the last digits from an unbroken run's"


@dataclass(frozen=True)
class Plan:
    """A run: its settings, what it scores and logs, its id; on resume what the flags changed."""

    settings: Settings
    eval: str
    monitor_cost: bool
    run: str
    moved: str = ""  # "--epochs N moves the run's end ..."
    rules: dict = field(default_factory=dict)  # chapter 3's: {"stop_after": N, "halve_eta": N}, 0 for off
    monitor: tuple = ()  # of options.MONITORS: the quantities logged beside the --eval accuracy


def add_arguments(parser) -> None:
    options.add_device(parser, "auto", options.AUTO_TRAIN)
    options.add_sizes(parser)
    options.add_epochs(parser, "epochs to reach, counted from 0, on resume too (default: 30)")
    options.add_batch_size(parser)
    parser.add_argument("--eta", type=options.eta, help="learning rate (default: 3.0)")
    cost_choice = "cost function: chapter 1's quadratic or chapter 3's cross-entropy (default: quadratic)"
    parser.add_argument("--cost", choices=COST_NAMES, help=cost_choice)
    parser.add_argument("--lmbda", type=options.lmbda, metavar="L", help="L2 regularisation's lambda (default: 0)")
    init_help = "initial weights: large N(0, 1) (chapter 1) or default N(0, 1/n_in) (chapter 3) (default: large)"
    parser.add_argument("--init", choices=INIT_NAMES, help=init_help)
    parser.add_argument("--seed", type=options.count, help="random seed (default: a fresh one, printed in the header)")
    parser.add_argument("--dtype", choices=DTYPES, help="floating-point type (default: float32)")
    options.add_data_arguments(parser, resume=True)
    options.add_quiet(parser, "only the header and the summary: no epoch lines, progress bar or download notes")
    eval_help = "data scored after each epoch (default: test)"
    parser.add_argument("--eval", choices=["test", "validation", "none"], help=eval_help)
    kernel_help = "run the epochs in this kernel (default: the fastest that runs here; `gpunet info` lists them)"
    parser.add_argument("--kernel", choices=list(KERNELS), help=kernel_help)
    no_fused_help = "the same as --kernel portable (the array-API loop; kept for older scripts)"
    parser.add_argument("--no-fused", dest="kernel", action="store_const", const="portable", help=no_fused_help)
    parser.add_argument("--save", metavar="PATH", help="write the trained network to PATH (.npz) at the end")
    best_help = "write the network of the best scored epoch so far to PATH (.npz), as sweep's --save-best"
    parser.add_argument("--save-best", metavar="PATH", help=best_help)
    parser.add_argument("--checkpoint", metavar="PATH", help="write the network to PATH (.npz) after every epoch")
    resume_help = (
        "continue from a checkpoint; its settings are used (with --epochs N, to N), with its --eval and "
        "--monitor-cost, and it goes on writing that checkpoint, and its log and --save file beside it"
    )
    parser.add_argument("--resume", type=options.path, metavar="PATH", help=resume_help)
    parser.add_argument("--log", metavar="PATH", help="write the manifest and one JSON object per epoch to PATH")
    force_help = "overwrite a --save/--checkpoint/--log file that is not this run's (refused otherwise)"
    parser.add_argument("--force", action="store_true", help=force_help)
    cost_help = "also log the cost on the training data (the run's --cost, with L2's term)"
    parser.add_argument("--monitor-cost", action="store_true", default=None, help=cost_help)
    monitor_help = (
        "also log and print, per epoch: training-cost, training-accuracy (an extra pass over the training data), "
        "evaluation-cost (on the --eval data), comma-separated, or all (with L2's term, as network2.py)"
    )
    parser.add_argument("--monitor", type=options.monitors, metavar="LIST", help=monitor_help)
    stop_help = "early stopping: end the run after N epochs without a new best on the --eval data (default: never)"
    parser.add_argument("--stop-after", type=options.count, metavar="N", help=stop_help)
    halve_help = (
        "halve eta after N epochs without a new best on the --eval data (or since the last halving), "
        "ending the run when eta is 1/128 of --eta (default: never)"
    )
    parser.add_argument("--halve-eta", type=options.count, metavar="N", help=halve_help)


def _network_for(args) -> tuple[Network, Plan]:
    """Returns a new network from the flags, or the one in ``--resume``, and the run's plan; on a device that
    auto weighs the kernels for, for the flags given (else the book's, as on resume)."""
    given = {k: getattr(args, k) for k in CONSTRAINTS if getattr(args, k) is not None}
    chosen = replace(BOOK, **{"seed": int(np.random.SeedSequence().generate_state(1)[0]), **given})
    backend = device_for(args.device, list(chosen.sizes), chosen.dtype, chosen.batch_size)
    if args.resume:
        net = Network.load(args.resume, device=backend)
        settings, run = checkpoint_settings(net, args.resume)
        settings = {**OUTPUTS, **settings}
        changed = [k for k in (*CONSTRAINTS, *OUTPUTS) if k != "epochs" and getattr(args, k) not in (None, settings[k])]
        if changed:
            flag = "--" + changed[0].replace("_", "-")
            raise ConfigError(f"{flag} comes from the checkpoint when resuming; leave it out")
        kept = Settings(**{k: settings[k] for k in CONSTRAINTS})
        moved = ""
        if args.epochs is not None and args.epochs != kept.epochs:
            moved = f"--epochs {args.epochs} moves the run's end from epoch {kept.epochs} (kept on resume)"
            kept = replace(kept, epochs=args.epochs)
        net.cost = COSTS[kept.cost]
        rules = {k: settings[k] for k in ("stop_after", "halve_eta")}  # SGD checks them
        monitor = tuple(options.monitors(",".join(settings["monitor"]))) if settings["monitor"] else ()
        return net, Plan(kept, settings["eval"], settings["monitor_cost"], run, moved, rules, monitor)
    net = Network(
        chosen.sizes, seed=chosen.seed, device=backend, dtype=chosen.dtype, cost=chosen.cost, init=chosen.init
    )
    rules = {k: getattr(args, k) or 0 for k in ("stop_after", "halve_eta")}
    monitor = tuple(args.monitor or ())
    return net, Plan(chosen, args.eval or "test", bool(args.monitor_cost), new_run_id(), rules=rules, monitor=monitor)


def _run_targets(args, net) -> dict:
    """The files the run writes: a resumed run goes on writing its checkpoint, and its log and its --save file
    when they are beside the checkpoint (a path from the file names no other folder)."""
    targets = {"--checkpoint": args.checkpoint or args.resume, "--log": args.log, "--save": args.save}
    targets["--save-best"] = args.save_best
    for flag, key, what in (
        ("--log", "log", "logging"),
        ("--save", "save", "saving the network at the end"),
        ("--save-best", "save_best", "saving the best epoch's network"),
    ):
        if args.resume and targets[flag] is None and isinstance(net.record.get(key), str):
            path = Path(net.record[key])
            if path.parent == Path(args.resume).resolve().parent:
                targets[flag] = path
            else:
                say(f"the run's {flag[2:]} file {path} is not beside the checkpoint; not {what} ({flag} PATH again)")
    return targets


def _resume_command(args, checkpoint) -> str:
    data = [f"--data {args.data}"] if args.data else [f"--data-dir {args.data_dir}"] if args.data_dir else []
    return " ".join(["gpunet train --resume", str(checkpoint), *data])


def _kernel_for(args, net, s, batch: int):
    """Returns (kernel, reason): ``--kernel``, else on resume the run's own kernel where it still runs here (the
    same results bit for bit), else the fastest; a resumed run on another kernel says so."""
    manifest = net.record.get("manifest") if args.resume else None
    kernel_record = manifest.get("kernel") if isinstance(manifest, dict) else None
    kept = kernel_record.get("name") if isinstance(kernel_record, dict) else None
    kept = kept if kept in KERNELS else None
    objective = {"cost": s.cost, "lmbda": s.lmbda}
    if args.kernel is None and kept is not None:
        try:
            kernel, _ = choose(net.backend, net.sizes, s.dtype, batch, kept, **objective)
            return kernel, "the run's own, kept on resume"
        except GpunetError as e:
            kernel, why = choose(net.backend, net.sizes, s.dtype, batch, **objective)
            say(f"the run's kernel {kept} cannot run here ({e}); resumed in {kernel.name}: {DIFFER}")
            return kernel, why
    kernel, why = choose(net.backend, net.sizes, s.dtype, batch, args.kernel, **objective)
    if kept is not None and kernel.name != kept:
        say(f"the run was trained in kernel {kept}, resumed in {kernel.name}: {DIFFER}")
    return kernel, why


def _check_eval(eval: str, host, save_best, rules: dict, monitor=()) -> None:
    """Refuses an --eval whose split has no examples, or none with chapter 3's rules."""
    if eval == "none" and any(rules.values()):
        raise ConfigError("--stop-after and --halve-eta count epochs without improvement: leave out --eval none")
    if eval == "none" and "evaluation-cost" in monitor:
        raise ConfigError("--monitor evaluation-cost needs the --eval data: leave out --eval none")
    if eval == "validation" and len(host.validation[1]) == 0:
        raise ConfigError("--eval validation needs --validation-size > 0")
    if eval == "none" and save_best:
        raise ConfigError("--save-best needs epochs scored to pick the best: leave out --eval none")
    if eval == "test" and len(host.test[1]) == 0:
        raise ConfigError(f"{host.source} has no test images: use --eval validation or --eval none")


def _data_hashes(args, net, host, files) -> dict:
    """Returns the identity of each data file (:mod:`gpunet.io.identity`) when the run writes files; a resumed
    run reads the data it started on: the same images and labels, however the files are compressed."""
    hashes = checksums(host) if files.paths else {}
    if args.resume and not matches(net.record["settings"]["data"], hashes):  # checkpoint_settings checked it
        raise DataError(
            f"{args.resume}: trained on other data than {host.source}; give the first run's --data-dir or --data"
        )
    return hashes


def _print_run(args, backend, net, plan, host, data, kernel: str, batch: int) -> None:
    """Prints the transcript's head: gpunet and the device, the data and the kernel, the settings as used."""
    s = plan.settings
    device = f"device {backend.name} ({backend.description})"
    print(f"gpunet {__version__} | {device} | {backend.library} | {s.dtype}")
    if backend.note:
        print(backend.note)
    print(
        f"sizes {net.sizes} | data {shown(host.source)}: {len(host.train[1])} train / {len(host.validation[1])} "
        f"validation / {len(host.test[1])} test, {data.nbytes / 1e6:.1f} MB in memory on {backend.name} | "
        f"kernel {kernel}"
    )
    outputs, classes = net.sizes[-1], host.n_classes
    if outputs != classes:  # allowed (the book's code runs it), but rarely meant: 784,30 has no output layer
        print(
            f"warning: the last layer has {outputs} units for {classes} classes: units {classes}-{outputs - 1} "
            f"are trained towards 0 and are never a right answer (one unit per class: end --sizes with {classes})"
        )
    resumed = f" | resumed at epoch {net.epoch} from {args.resume}" if args.resume else ""
    resumed += f" | {plan.moved}" if plan.moved else ""
    mini = f"{batch}"
    if batch != s.batch_size:  # the book's slicing: a mini-batch is at most the training set
        mini += f" (all the training images; --batch-size {s.batch_size} is more)"
    chapter_3 = (s.cost, s.lmbda, s.init) != ("quadratic", 0.0, "large")  # chapter 1's run: its header as before
    objective = f" | cost {s.cost} | lmbda {s.lmbda:g} | init {s.init}" if chapter_3 else ""
    print(
        f"epochs {s.epochs} | mini-batch {mini} | eta {s.eta:g}{objective} | seed {s.seed} | eval {plan.eval}{resumed}",
        flush=True,
    )


def _say_interrupted(args, files) -> None:
    checkpoint = files.paths.get("--checkpoint")
    if files.saved_epoch is not None:
        say(f"interrupted; epoch {files.saved_epoch} is saved in {checkpoint}: resume with")
        say(f"  {_resume_command(args, checkpoint)}")
    elif checkpoint:
        say(f"interrupted before the first epoch ended; nothing was saved yet ({checkpoint} is written after each)")
    else:
        say("interrupted; nothing was saved (--checkpoint PATH keeps every epoch)")


def run(args) -> int:
    net, plan = _network_for(args)
    backend = net.backend
    s = plan.settings
    if args.resume and net.epoch >= s.epochs:
        say(
            f"nothing to do: {args.resume} has {net.epoch} epochs, the run ends at {s.epochs}; "
            f"give --epochs N (N > {net.epoch}) to train on"
        )
        return 0
    if args.resume and isinstance(net.record.get("stopped"), str):
        say(f"nothing to do: the run in {args.resume} stopped after epoch {net.epoch - 1}: {net.record['stopped']}")
        return 0
    with RunFiles(_run_targets(args, net), plan.run, net.epoch if args.resume else None, args.force) as files:
        if args.resume and net.epoch and files.paths["--checkpoint"] == Path(args.resume):
            files.saved_epoch = net.epoch - 1  # the checkpoint resumed from holds it already
        host = load_data(args, s.validation_size)  # the run's, on resume the checkpoint's
        host.check_fits(net.sizes)
        _check_eval(plan.eval, host, files.paths.get("--save-best"), plan.rules, plan.monitor)
        batch = mini_batch(s.batch_size, len(host.train[1]))
        kernel, why = _kernel_for(args, net, s, batch)
        hashes = _data_hashes(args, net, host, files)
        data = pin(host, backend, net.dtype, net.sizes[-1])
        outputs = {"eval": plan.eval, "monitor_cost": plan.monitor_cost, "monitor": list(plan.monitor), **plan.rules}
        outputs["data"] = sorted(hashes.values())
        settings = {**s.record(), **outputs}  # as the checkpoint and the manifest keep them
        _print_run(args, backend, net, plan, host, data, f"{kernel.name} ({why})", batch)
        written = {key: files.paths.get(flag) for key, flag in (("log", "--log"), ("save", "--save"))}
        written["save_best"] = files.paths.get("--save-best")
        record: dict = {
            "settings": settings,
            "run": plan.run,
            **{key: str(path.resolve()) if path else None for key, path in written.items()},
            "best": _kept_best(net) if args.resume else None,  # the best scored epoch so far
        }
        if files.paths:
            record["manifest"] = manifest(backend, settings, hashes, data.nbytes, plan.run)
            record["manifest"]["kernel"] = {"name": kernel.name, "reason": why}
            files.start_log(record["manifest"])
        record["epoch_seconds"] = list(net.record.get("epoch_seconds", [])) if args.resume else []
        bar = None if args.quiet else ProgressBar.if_watched(len(host.train[1]), unit="ex", unit_scale=True)

        def after_epoch(result):
            if bar:
                bar.close()  # clear the epoch's bar before its line
            monitored = _monitored(net, data, plan)
            if not args.quiet:
                print(f"{result}{_monitored_line(monitored)}", flush=True)
            record["epoch_seconds"].append(result.seconds)
            entry = {"epoch": result.epoch, "seconds": result.seconds, "eval": plan.eval, **monitored}
            if result.correct is not None:
                entry.update(correct=result.correct, total=result.total, accuracy=result.correct / result.total)
            if result.eta is not None:
                entry["eta"] = result.eta
            if result.stopped:  # kept in the log and the checkpoint: a resumed run that stopped does no more
                entry["stopped"] = record["stopped"] = result.stopped
                print(f"stopped after epoch {result.epoch}: {result.stopped}", flush=True)
            if plan.monitor_cost and "training_cost" not in entry:  # --monitor training-cost has it already
                entry["training_cost"] = net.total_cost(data.training_data, s.lmbda)
            files.after_epoch(net, entry, record)

        try:
            results = net.SGD(
                data.training_data,
                s.epochs - net.epoch,
                s.batch_size,
                s.eta,
                lmbda=s.lmbda,
                **plan.rules,
                test_data={"test": data.test_data, "validation": data.validation_data, "none": None}[plan.eval],
                callback=after_epoch,
                kernel=kernel.name,
                progress=bar,
            )
        except KeyboardInterrupt as stop:  # Ctrl-C, or SIGTERM, SIGHUP, ... (signals.Terminated)
            _say_interrupted(args, files)
            return exit_status(stop)
        finally:
            if bar:
                bar.close()
        files.save(net, record)
        print(_summary(results, files, record["best"]), flush=True)
    return 0


def _monitored(net, data, plan) -> dict:
    """The quantities ``plan.monitor`` names for the network as it is now, as the log keeps them."""
    s, xp, out = plan.settings, net.xp, {}
    x, y = data.training_data
    if "training-cost" in plan.monitor:
        out["training_cost"] = net.total_cost((x, y), s.lmbda)
    if "training-accuracy" in plan.monitor:  # the one-hot targets' labels: one pass over the training data
        correct = int(net.correct((x, xp.argmax(y, axis=-1))))
        out.update(training_correct=correct, training_accuracy=correct / x.shape[0])
    if "evaluation-cost" in plan.monitor:
        ex, labels = {"test": data.test_data, "validation": data.validation_data}[plan.eval]
        one_hot = xp.astype(
            xp.expand_dims(labels, axis=-1) == xp.arange(y.shape[-1], device=net.backend.device), net.dtype
        )
        out["evaluation_cost"] = net.total_cost((ex, one_hot), s.lmbda)
    return out


def _monitored_line(monitored: dict) -> str:
    """What ``_monitored`` found, for the epoch's line ("" for nothing)."""
    parts = [f"training cost {monitored['training_cost']:.4f}"] if "training_cost" in monitored else []
    if "training_accuracy" in monitored:
        parts.append(f"training accuracy {monitored['training_accuracy']:.2%}")
    if "evaluation_cost" in monitored:
        parts.append(f"evaluation cost {monitored['evaluation_cost']:.4f}")
    return "".join(f" | {p}" for p in parts)


def _kept_best(net) -> dict | None:
    """The best epoch a checkpoint records ({"epoch", "correct", "total"}), None where it records none."""
    best = net.record.get("best")
    fields = ("epoch", "correct", "total")
    ok = isinstance(best, dict) and all(isinstance(best.get(k), int) and best[k] >= 0 for k in fields)
    return {k: best[k] for k in fields} if ok else None


def _summary(results, files, best: dict | None) -> str:
    """The end of the transcript: the run's best and last epoch, the time, and what was written where: --save
    the last epoch's network, --save-best the best's."""
    parts = []
    scored = [r for r in results if r.correct is not None]
    if scored and best is not None:  # the run's best (RunFiles.after_epoch), on resume its earlier epochs' too
        pct = lambda correct, total: f"{correct} / {total} ({correct / total:.2%})"  # noqa: E731
        last = scored[-1]
        parts += [f"best epoch {best['epoch']}: {pct(best['correct'], best['total'])}"]
        parts += [f"final {pct(last.correct, last.total)}"]
    train, scoring = sum(r.seconds for r in results), sum(r.eval_seconds for r in results)
    timed = (
        f"{counted(len(results), 'epoch')} in {train + scoring:.1f} s ({train:.1f} s training, {scoring:.1f} s eval)"
    )
    if compiling := compile_seconds():  # numba's first run on this machine: not in the epochs' times
        timed += f", after {compiling:.1f} s compiling the CPU kernel (once)"
    parts.append(timed)
    best_model = f"best model (epoch {best['epoch']})" if best else "best model"
    outputs = (("--save", "final model"), ("--save-best", best_model), ("--checkpoint", "checkpoint"), ("--log", "log"))
    kept = [f"{what} {files.paths[flag]}" for flag, what in outputs if flag in files.paths]
    parts.append("saved " + ", ".join(kept) if kept else "nothing saved (--save PATH)")
    return "done: " + " | ".join(parts)
