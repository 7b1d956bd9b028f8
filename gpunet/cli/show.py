"""``gpunet show FILE``: what a model, checkpoint or log holds: its settings, seed, epochs, best and history."""

from __future__ import annotations

import json

from ..errors import printable
from ..io.jsonl import read_log
from ..io.model_files import read_model
from .common import counted

NAME = "show"
HELP = "show a model's, checkpoint's or log's settings, seed, epochs, best epoch and history"
DESCRIPTION = (
    "FILE is a model or checkpoint (.npz, from --save, --save-best or --checkpoint) or a --log file (any other "
    "name). Everything it prints comes from the file, escaped; a file of another kind is a one-line error."
)


def add_arguments(parser) -> None:
    parser.add_argument("file", metavar="FILE", help="a gpunet model or checkpoint (.npz), or a --log file")


def _shown(value) -> str:
    """A value from the file as one line: text escaped, anything else as JSON."""
    return printable(value if isinstance(value, str) else json.dumps(value))


def _dict(value) -> dict:
    """``value`` where the file holds a JSON object, else {}."""
    return value if isinstance(value, dict) else {}


def _settings(settings) -> str:
    """The settings a run records, in its order, less the data's checksums (the manifest names the files)."""
    if not isinstance(settings, dict) or not settings:
        return "settings: none recorded (a network saved from Python?)"
    return "settings: " + " | ".join(f"{_shown(k)} {_shown(v)}" for k, v in settings.items() if k != "data")


def _score(entry: dict) -> str:
    correct, total = entry.get("correct"), entry.get("total")
    if isinstance(correct, int) and isinstance(total, int) and total > 0:
        return f"{correct} / {total} ({correct / total:.2%})"
    return "not scored"


def _show_model(path) -> None:
    model = read_model(path)
    record = model.record
    trained = counted(model.epoch, "epoch")
    print(f"{_shown(str(path))}: gpunet model | sizes {model.sizes} | {model.dtype} | {trained} trained")
    print(_settings(record.get("settings")))
    print(" | ".join(f"{k} {_shown(v)}" for k, v in model.objective.items()) + " (what its parameters minimise)")
    manifest = _dict(record.get("manifest"))
    kernel = _dict(manifest.get("kernel"))
    about = {"run": record.get("run"), "kernel": kernel.get("name"), "gpunet": manifest.get("gpunet")}
    about["git_commit"] = manifest.get("git_commit")
    print(" | ".join(f"{k} {_shown(v)}" for k, v in about.items() if v is not None) or "run: none recorded")
    best = record.get("best")
    if isinstance(best, dict):
        print(f"the run's best epoch {_shown(best.get('epoch'))}: {_score(best)}")
    seconds = record.get("epoch_seconds")
    if isinstance(seconds, list) and all(isinstance(s, (int, float)) for s in seconds) and seconds:
        print(f"history: {len(seconds)} epochs timed, {sum(seconds):.1f} s training in all")
    if isinstance(record.get("log"), str):
        print(f"its log: {_shown(record['log'])} (gpunet show LOG for the accuracy per epoch)")


def _show_log(path) -> None:
    manifest, epochs = read_log(path)
    print(
        f"{_shown(str(path))}: gpunet log | run {_shown(manifest.get('run'))} | {counted(len(epochs), 'epoch')} logged"
    )
    print(_settings(manifest.get("settings")))
    kernel = _dict(manifest.get("kernel"))
    about = {"device": manifest.get("device"), "kernel": kernel.get("name"), "gpunet": manifest.get("gpunet")}
    about["git_commit"] = manifest.get("git_commit")
    print(" | ".join(f"{k} {_shown(v)}" for k, v in about.items() if v is not None))
    scored = [e for e in epochs if isinstance(e.get("correct"), int)]
    if scored:
        best = max(scored, key=lambda e: e["correct"])  # the first of equals, as train's summary
        print(f"best epoch {best['epoch']}: {_score(best)} | final epoch {scored[-1]['epoch']}: {_score(scored[-1])}")
    for e in epochs:
        cost = f" | training cost {e['training_cost']:.4f}" if "training_cost" in e else ""
        seconds = e.get("seconds")
        timed = f" | train {seconds:.2f} s" if isinstance(seconds, (int, float)) else ""
        print(f"Epoch {e['epoch']}: {_score(e)}{timed}{cost}")


def run(args) -> int:
    (_show_model if args.file.endswith(".npz") else _show_log)(args.file)
    return 0
