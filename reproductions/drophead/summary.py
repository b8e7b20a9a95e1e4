"""Per-arm summaries, the paired differences run.json shows, and the accuracy-by-arm plot.

The verdicts come from `reproductions.claims` (paired t with Holm); these unadjusted t-intervals
are the quick look the metrics carry beside them.
"""

from __future__ import annotations

import math
import statistics

# Two-sided 95% Student-t quantiles t_{0.975, df}, df = 1..30 (standard table values).
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
         2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
         2.045, 2.042)


def t_quantile_975(df: int) -> float:
    """t_{0.975, df}; beyond the table, the normal quantile with a first-order correction."""
    if df < 1:
        return math.nan
    return _T975[df - 1] if df <= len(_T975) else 1.959964 * (1 + 1 / (4 * df))


def mean_std(xs: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof 1; 0 for a single value)."""
    return statistics.fmean(xs), (statistics.stdev(xs) if len(xs) > 1 else 0.0)


def paired_difference(a: list[float], b: list[float]) -> dict:
    """Mean of a - b over paired seeds with a 95% t-interval (NaN bounds with one seed)."""
    diffs = [x - y for x, y in zip(a, b, strict=True)]
    m, s = mean_std(diffs)
    n = len(diffs)
    half = t_quantile_975(n - 1) * s / math.sqrt(n) if n > 1 else math.nan
    return {"mean": m, "ci95": [m - half, m + half], "per_seed": diffs, "n": n}


def arm_summary(runs: list[dict]) -> dict:
    """One arm's numbers over its seeds: test accuracy per seed, fit gauge, validation, timing."""
    accs = [r["accuracy"] for r in runs]
    m, s = mean_std(accs)
    train_m, _ = mean_std([r["train_accuracy"] for r in runs])
    out = {"accuracy": {"mean": m, "std": s, "per_seed": accs},
           "train_accuracy_mean": train_m,
           "train_minus_test_points": 100 * (train_m - m),
           "final_loss_mean": statistics.fmean(r["final_loss"] for r in runs),
           "mean_drophead_rate": statistics.fmean(r["mean_drophead_rate"] for r in runs),
           "seconds_per_run": statistics.fmean(r["seconds"] for r in runs)}
    if all("val_accuracy" in r for r in runs):
        vm, vs = mean_std([r["val_accuracy"] for r in runs])
        out["val_accuracy"] = {"mean": vm, "std": vs, "per_seed": [r["val_accuracy"] for r in runs]}
    return out


def plot_arms(metrics: dict, path, title: str) -> None:
    """Bar per arm at the mean with a ±std error bar, and the per-seed accuracies as dots."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    arms = list(metrics["arms"])
    fig, ax = plt.subplots(figsize=(7.2, 3.8))
    for i, arm in enumerate(arms):
        a = metrics["arms"][arm]["accuracy"]
        ax.bar(i, 100 * a["mean"], yerr=100 * a["std"], capsize=6, color="#8fb3d9", edgecolor="#2b4f7a")
        ax.scatter([i] * len(a["per_seed"]), [100 * v for v in a["per_seed"]], color="#2b4f7a", s=14, zorder=3)
    lows = [100 * min(metrics["arms"][a]["accuracy"]["per_seed"]) for a in arms]
    highs = [100 * max(metrics["arms"][a]["accuracy"]["per_seed"]) for a in arms]
    ax.set_ylim(max(0.0, min(lows) - 3), min(100.0, max(highs) + 2))
    ax.set_xticks(range(len(arms)), [a.replace("_", "\n") for a in arms])
    ax.set_ylabel("accuracy (%)")
    ax.set_title(f"{title} — mean ± std over {len(metrics['seeds'])} seeds")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
