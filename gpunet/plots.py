"""``gpunet plot``: accuracy (and cost) curves of logged runs, and the test digits a model gets wrong."""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

import numpy as np

from .errors import ConfigError, printable
from .runs import atomic_write, read_log
from .settings import CHAPTER_1


def _pyplot():
    os.environ["MPLBACKEND"] = "Agg"  # files only, no window: another backend named there is not gpunet's
    words = logging.getLogger("matplotlib")
    level = words.level
    # Where HOME or the XDG folders cannot be written, matplotlib keeps its caches in a private temporary
    # folder, removed at exit, and warns twice: the right thing done, and nothing for the user to mend.
    words.setLevel(logging.ERROR)
    try:
        import matplotlib

        matplotlib.use("Agg")  # imported before, with another backend
        import matplotlib.pyplot as plt
    except ImportError:
        raise ConfigError("plots need matplotlib: pip install 'gpunet[plot]'") from None
    finally:
        words.setLevel(level)
    return plt


FORMATS = {".png": "png", ".pdf": "pdf", ".svg": "svg", ".jpg": "jpeg", ".jpeg": "jpeg"}


def output_format(output) -> str:
    """The picture format that ``-o``'s name asks for; refused in one line when it names none we write."""
    suffix = Path(output).suffix.lower()
    if suffix not in FORMATS:
        raise ConfigError(
            f"-o {output}: cannot tell the picture format from {suffix or 'no suffix'!r}; "
            f"end the name in {', '.join(FORMATS)}"
        )
    return FORMATS[suffix]


def _save(plt, fig, output) -> None:
    fmt = output_format(output)
    fig.tight_layout()
    with atomic_write(output) as f:
        fig.savefig(f, format=fmt, dpi=100)
    plt.close(fig)


def label(manifest: dict, path) -> str:
    s = manifest.get("settings", {})
    name = Path(path).name
    if not s:
        return name
    sizes = ",".join(map(str, s.get("sizes", [])))
    objective = "".join(f" {k} {s[k]}" for k, v in CHAPTER_1.items() if s.get(k, v) != v)  # chapter 3's, where set
    return (
        f"{name}: [{sizes}] eta {s.get('eta')} batch {s.get('batch_size')} {s.get('dtype')}{objective} "
        f"seed {s.get('seed')}"
    )


def curves(logs, output) -> str:
    """Accuracy per epoch, one line per run (and the cost, where it was logged), a band per sweep configuration;
    with ``train --monitor``, chapter 3's overfitting figures: the training data's accuracy and the evaluation
    data's cost dashed beside the evaluation accuracy and the training cost. Returns what was drawn, in words
    ("2 runs and 48 networks of 1 sweep")."""
    plt = _pyplot()
    runs = [(path, *read_log(path)) for path in logs]
    with_cost = any(k in e for _, _, epochs in runs for e in epochs for k in ("training_cost", "evaluation_cost"))
    if not with_cost and not any("accuracy" in e for _, _, epochs in runs for e in epochs):
        raise ConfigError(
            f"nothing to plot: {', '.join(map(str, logs))} scored no epoch (trained with --eval none) and logged "
            "no cost; train with --eval test or validation, or --monitor-cost"
        )
    fig, axes = plt.subplots(1, 2 if with_cost else 1, figsize=(12 if with_cost else 7, 4.5), squeeze=False)
    for path, manifest, epochs in runs:
        if manifest.get("kind") == "sweep":
            sweep_bands(axes[0, 0], epochs, Path(path).name)
            continue
        scored = [e for e in epochs if "accuracy" in e]
        name = printable(label(manifest, path))  # an ESC or undecodable byte: matplotlib can draw neither
        (line,) = axes[0, 0].plot(
            [e["epoch"] for e in scored], [100 * e["accuracy"] for e in scored], marker=".", label=name
        )
        if scored:  # the best epoch, the first of equals, as train's summary names it
            best = max(scored, key=lambda e: e["accuracy"])
            axes[0, 0].plot(
                best["epoch"], 100 * best["accuracy"], marker="*", markersize=12, color=line.get_color(),
                linestyle="none", label=f"best: {100 * best['accuracy']:.2f} % at epoch {best['epoch']}",
            )  # fmt: skip
        trained = [e for e in epochs if "training_accuracy" in e]
        if trained:
            axes[0, 0].plot(
                [e["epoch"] for e in trained], [100 * e["training_accuracy"] for e in trained], linestyle="--",
                color=line.get_color(), label=f"{Path(path).name}: on the training data",
            )  # fmt: skip
        for key, style, on in (("training_cost", "-", "training"), ("evaluation_cost", "--", "evaluation")):
            costed = [e for e in epochs if key in e]
            if costed:
                axes[0, 1].plot([e["epoch"] for e in costed], [e[key] for e in costed], marker=".", markersize=3,
                                linestyle=style, color=line.get_color(),
                                label=f"{Path(path).name}: on the {on} data")  # fmt: skip
    evals = {e.get("eval", "test") for _, _, epochs in runs for e in epochs}
    from matplotlib.ticker import MaxNLocator

    dashed = any("training_accuracy" in e for _, _, epochs in runs for e in epochs)
    on = f"{'/'.join(sorted(evals))} accuracy (%)" + (", training data's dashed" if dashed else "")
    axes[0, 0].set(xlabel="epoch", ylabel=on, title="Accuracy")
    if with_cost:
        named = {m.get("settings", {}).get("cost", "quadratic") for _, m, _ in runs if m.get("kind") != "sweep"}
        cost = f"mean {' / '.join(sorted(named))} cost" if named else "mean cost"
        axes[0, 1].set(xlabel="epoch", ylabel=cost, title="Cost")
    for ax in axes.flat:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    _save(plt, fig, output)
    sweeps = [epochs for _, manifest, epochs in runs if manifest.get("kind") == "sweep"]
    networks = len({(e.get("config"), e.get("seed")) for epochs in sweeps for e in epochs})
    said = [_count(len(runs) - len(sweeps), "run")] if len(runs) > len(sweeps) else []
    said += [f"{_count(networks, 'network')} of {_count(len(sweeps), 'sweep')}"] if sweeps else []
    return " and ".join(said)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def sweep_bands(ax, epochs, name: str) -> None:
    """A sweep's accuracy per epoch, per configuration: the median over its networks and the interquartile band."""
    by_config: dict = {}
    for e in epochs:
        by_config.setdefault(e["config"], {}).setdefault(e["epoch"], []).append(100 * e["accuracy"])
    for config, per_epoch in by_config.items():
        x = sorted(per_epoch)
        q1, median, q3 = np.percentile([per_epoch[k] for k in x], [25, 50, 75], axis=1)
        n = len(per_epoch[x[0]])
        (line,) = ax.plot(x, median, marker=".", label=printable(f"{name}: {config}, median and quartiles of {n}"))
        ax.fill_between(x, q1, q3, color=line.get_color(), alpha=0.25, linewidth=0)


def misclassified(test, image_shape, predicted, output, wrong, outputs) -> tuple[int, int]:
    """A grid of the test images at the indices ``wrong`` (some the model gets wrong), each titled with its
    index, true label, the model's answer and that answer's output activation (a row of ``outputs``);
    returns (digits drawn, digits the model gets wrong)."""
    plt = _pyplot()
    images, labels = test
    cols = max(1, min(len(wrong), 9))
    rows = max(1, math.ceil(len(wrong) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(1.3 * cols, 1.5 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, i, out in zip(axes.flat, wrong, outputs):
        ax.imshow(images[i].reshape(image_shape), cmap="gray_r")
        ax.set_title(f"#{i}: true {labels[i]}\nnet {predicted[i]} (output {out[predicted[i]]:.2f})", fontsize=7)
    if not len(wrong):
        axes[0, 0].set_title("no misclassified test images")
    _save(plt, fig, output)
    return len(wrong), int(np.count_nonzero(predicted != labels))


def history_figure(*histories, labels=None):
    """Returns a matplotlib Figure of the accuracy per epoch of each :class:`~gpunet.History` (``labels`` name
    them), the best epoch starred; written nowhere: a notebook shows it inline, ``fig.savefig(path)`` keeps it."""
    if not any(h.best for h in histories):
        raise ConfigError("nothing to plot: no epoch was scored (give SGD test_data to score each epoch)")
    try:
        import matplotlib.pyplot as plt  # the backend matplotlib chose: the inline one in a notebook
    except ImportError:
        raise ConfigError("plots need matplotlib: pip install 'gpunet[plot]'") from None
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(7, 4.5))
    plt.close(fig)  # a notebook shows the figure once, as the cell's value, not again as pyplot's
    for k, history in enumerate(histories):
        best = history.best
        name = f"{labels[k]}: " if labels else ""
        label = f"{name}best {100 * best.correct / best.total:.2f} % (epoch {best.epoch})" if best else name
        (line,) = ax.plot(history.epoch, 100 * history.accuracy, marker=".", label=label)
        if best:
            ax.plot([best.epoch], [100 * best.correct / best.total], "*", color=line.get_color(), markersize=14)
    ax.set(xlabel="epoch", ylabel="test accuracy (%)", title="Accuracy per epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
