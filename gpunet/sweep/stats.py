"""The statistics of a sweep: per configuration, the distribution of best-epoch and final accuracy over seeds."""

from __future__ import annotations

import numpy as np

BOOTSTRAP_SEED = 12  # fixed: the same records always print the same interval
BOOTSTRAP_RESAMPLES = 10_000
SATURATED = 0.90  # runs below this accuracy got stuck (the book's "saturated" networks)


def describe(values) -> dict:
    """n, mean, sd (n - 1), min, median, max, and a 95 % percentile-bootstrap interval of the mean."""
    v = np.asarray(values, dtype=np.float64)
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    means = v[rng.integers(0, len(v), (BOOTSTRAP_RESAMPLES, len(v)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return {
        "n": len(v),
        "mean": float(v.mean()),
        "sd": float(v.std(ddof=1)) if len(v) > 1 else float("nan"),
        "min": float(v.min()),
        "median": float(np.median(v)),
        "max": float(v.max()),
        "ci95": (float(low), float(high)),
        "below_90": int((v < SATURATED).sum()),
    }


def summary(records) -> dict:
    """Config -> {"best": describe(...), "final": describe(...)}, configurations in the order first seen."""
    groups: dict = {}
    for r in records:
        groups.setdefault(r.config, []).append(r)
    return {
        c: {"best": describe([r.best_accuracy for r in rs]), "final": describe([r.final_accuracy for r in rs])}
        for c, rs in groups.items()
    }


def _pct(x: float) -> str:
    return "-" if np.isnan(x) else f"{100 * x:.2f}"


def table(records, epochs: int, eval: str) -> str:
    """The table printed at the end of a sweep, two rows (best epoch, final epoch) per configuration."""
    lines = []
    head = f"{'':7}{'n':>5}  {'mean ± sd (%)':>15}  {'min':>6} {'median':>6} {'max':>6}  {'95% CI of mean':>16}"
    head += f"  {'<90%':>5}"
    for config, stats in summary(records).items():
        lines += ["", f"{config.label} | {eval} accuracy over {epochs} epochs", head]
        for name, s in stats.items():
            mean_sd = f"{_pct(s['mean'])} ± {_pct(s['sd'])}"
            ci = f"[{_pct(s['ci95'][0])}, {_pct(s['ci95'][1])}]"
            lines.append(
                f"{name:<7}{s['n']:>5}  {mean_sd:>15}  {_pct(s['min']):>6} {_pct(s['median']):>6} "
                f"{_pct(s['max']):>6}  {ci:>16}  {s['below_90']:>5}"
            )
    return "\n".join(lines[1:])
