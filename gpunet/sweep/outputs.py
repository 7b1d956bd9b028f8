"""What a sweep leaves in ``--out DIR``, each file written atomically after every finished chunk.

- ``sweep.jsonl``: the run manifest (``"kind": "sweep"``, with the grid), then one object per network and
  epoch. It is the record ``--resume`` reads: a network is in it with all its epochs, or not at all.
- ``networks.csv``: one row per network (best and final accuracy, epoch of best, seconds), from the same records.
- ``best-<configuration>.npz``: the best network of each configuration so far, at its best epoch.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from ..errors import DataError
from ..network import Network
from ..runs import atomic_write, read_log
from ..settings import CHAPTER_1
from .grid import Config
from .stacks import Best, NetworkRecord

LOG = "sweep.jsonl"
CSV = "networks.csv"
CSV_COLUMNS = (
    "configuration sizes eta batch_size dtype cost lmbda init seed best_accuracy best_epoch final_accuracy seconds "
    "kernel".split()
)


def _config_fields(c: Config) -> dict:
    return {"config": c.label, "sizes": list(c.sizes), "eta": c.eta, "batch_size": c.batch_size, "dtype": c.dtype,
            "cost": c.cost, "lmbda": c.lmbda, "init": c.init}  # fmt: skip


def epoch_lines(r: NetworkRecord, eval: str) -> list[dict]:
    seconds = r.seconds / len(r.correct)
    fields = {"type": "epoch", **_config_fields(r.config), "seed": r.seed}
    return [
        dict(
            fields, epoch=e, correct=c, total=r.total, accuracy=c / r.total, eval=eval, seconds=seconds, kernel=r.kernel
        )
        for e, c in enumerate(r.correct)
    ]


def write(out: Path, manifest: dict, records: list[NetworkRecord], eval: str) -> None:
    """Rewrite the log, then the CSV: each file whole or not at all; the log is the truth on resume."""
    lines = [json.dumps({"type": "manifest", **manifest})]
    lines += [json.dumps(line) for r in records for line in epoch_lines(r, eval)]
    table = io.StringIO()
    writer = csv.writer(table, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in records:
        c = r.config
        row = [c.label, "-".join(map(str, c.sizes)), c.eta, c.batch_size, c.dtype, c.cost, c.lmbda, c.init, r.seed]
        row.append(f"{r.best_accuracy:.4f}")
        writer.writerow([*row, r.best_epoch, f"{r.final_accuracy:.4f}", f"{r.seconds:.3f}", r.kernel])
    for name, text in ((LOG, "\n".join(lines) + "\n"), (CSV, table.getvalue())):
        with atomic_write(out / name) as f:
            f.write(text.encode())


def read(out: Path) -> tuple[dict, list[NetworkRecord]]:
    """(manifest, records of the finished networks) of a sweep folder."""
    path = out / LOG
    if not path.is_file():
        raise DataError(f"{out}: no {LOG} here, so not a sweep folder to resume (gpunet sweep --out DIR makes one)")
    manifest, epochs = read_log(path)
    if manifest.get("kind") != "sweep":
        raise DataError(f"{path}: not the log of a gpunet sweep")
    grouped: dict = {}
    try:
        for e in epochs:
            objective = {k: e.get(k, v) for k, v in CHAPTER_1.items()}  # a sweep from before chapter 3: chapter 1's
            objective["lmbda"] = float(objective["lmbda"])
            config = Config(tuple(e["sizes"]), float(e["eta"]), int(e["batch_size"]), e["dtype"], **objective)
            grouped.setdefault((config, int(e["seed"])), []).append(e)
        records = []
        for (config, seed), lines in grouped.items():
            lines.sort(key=lambda e: e["epoch"])
            correct, seconds = [int(e["correct"]) for e in lines], sum(e["seconds"] for e in lines)
            records.append(NetworkRecord(config, seed, correct, int(lines[0]["total"]), seconds, lines[0]["kernel"]))
    except (KeyError, TypeError, ValueError) as e:
        raise DataError(f"{path}: damaged sweep log ({type(e).__name__}: {e})") from None
    return manifest, records


def best_path(out: Path, config: Config) -> Path:
    return out / f"best-{config.slug}.npz"


def save_best(path, best: Best, manifest: dict, grid) -> None:
    """The network as ``gpunet train --save`` writes it: ``evaluate``, ``predict`` and ``train --resume`` take it."""
    c = best.config
    validation_size = manifest.get("settings", {}).get("validation_size", 10_000)
    settings = dict(sizes=list(c.sizes), epochs=grid.epochs, batch_size=c.batch_size, eta=c.eta, dtype=c.dtype)
    settings.update(cost=c.cost, lmbda=c.lmbda, init=c.init)
    settings.update(
        seed=best.seed, eval=grid.eval, validation_size=validation_size, data=sorted(manifest["data"].values())
    )
    sweep = {"configuration": c.label, "best_epoch": best.epoch, "correct": best.correct}
    best.network().save(path, settings=settings, manifest=manifest, sweep=sweep, run=manifest.get("run"))


def load_best(path: Path, config: Config) -> Best:
    net = Network.load(path, device="cpu")
    try:
        seed, correct = int(net.record["settings"]["seed"]), int(net.record["sweep"]["correct"])
    except (KeyError, TypeError, ValueError):
        raise DataError(f"{path}: not the best network of a sweep") from None
    return Best(config, seed, net.epoch - 1, correct, net.weights, net.biases, dict(net.rng.bit_generator.state))


def save_best_paths(path, configs: list[Config]) -> dict:
    """``--save-best PATH`` for each configuration: PATH itself for one, PATH's stem + the configuration for more."""
    path = Path(path)
    if len(configs) == 1:
        return {configs[0]: path}
    suffix = path.suffix or ".npz"
    return {c: path.with_name(f"{path.stem}-{c.slug}{suffix}") for c in configs}
