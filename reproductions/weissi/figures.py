"""The run's figures: weight-norm trajectories, the result table and the clean-vs-robust frontier."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

ARM_METRICS = ("accuracy", "fgsm_accuracy", "pgd_accuracy")
COLORS = {"none": "tab:gray", "l2": "tab:blue", "weissi_e": "tab:orange", "weissi": "tab:red"}
MARKERS = {"none": "s", "l2": "o", "weissi_e": "^", "weissi": "D"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only
    import matplotlib.pyplot as plt

    return plt


def plot_norms(trajectories: dict[str, list[list[dict[str, Any]]]], path) -> None:
    """One panel per weight layer (its Frobenius norm by epoch) and one for sum_l log ||W_l||; a line per seed."""
    plt = _pyplot()
    arms = list(trajectories)
    n_layers = len(trajectories[arms[0]][0][0]["norms"])
    fig, axes = plt.subplots(1, n_layers + 1, figsize=(3.4 * (n_layers + 1), 3.2))
    for arm in arms:
        for i, traj in enumerate(trajectories[arm]):
            ep = [t["epoch"] for t in traj]
            norms = np.array([t["norms"] for t in traj])  # (epochs+1, layers)
            label = arm if i == 0 else None
            for k in range(n_layers):
                axes[k].plot(ep, norms[:, k], color=COLORS.get(arm), alpha=0.6, label=label)
            axes[-1].plot(ep, np.log(norms).sum(1), color=COLORS.get(arm), alpha=0.6, label=label)
    for k in range(n_layers):
        axes[k].set_title(f"||W_{k + 1}||_F", fontsize=9)
    axes[-1].set_title("sum_l log ||W_l||_F", fontsize=9)
    for ax in axes:
        ax.set_xlabel("epoch", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0].legend(fontsize=7)
    fig.suptitle("Weight-norm trajectories (one line per seed)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_table(metrics: dict[str, dict[str, Any]], columns: Sequence[str], title: str, path) -> None:
    """Mean ± std per arm of the three accuracies (%) and the log norm product; `columns` are their headers."""
    plt = _pyplot()
    keys = [*ARM_METRICS, "generalisation_gap", "log_norm_product"]
    cells = []
    for m in metrics.values():
        row = []
        for k in keys:
            s = m[k]
            row.append(f"{s['mean']:.2f} ± {s['std']:.2f}" if k == "log_norm_product"
                       else f"{100 * s['mean']:.2f} ± {100 * s['std']:.2f}")
        cells.append(row)
    fig, ax = plt.subplots(figsize=(10, 0.5 + 0.45 * (len(cells) + 1)))
    ax.axis("off")
    table = ax.table(cellText=cells, rowLabels=list(metrics), colLabels=list(columns), loc="center")
    table.scale(1, 1.5)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_frontier(points: list[dict[str, Any]], finals: dict[str, dict[str, Any]], path, zoom: float = 0.05) -> None:
    """Clean test accuracy against FGSM and PGD accuracy: a small marker per (arm, lambda) of the grid
    (tuning seeds, labelled with the lambda), a large one with ±1 std bars per final arm (all seeds)."""
    plt = _pyplot()
    # a lambda that wrecks the model (clean accuracy far below every final arm) would squash the axes
    # around the interesting corner: it is named in the caption instead of drawn
    floor = min(m["accuracy"]["mean"] for m in finals.values()) - zoom
    shown = [p for p in points if p["accuracy"] >= floor]
    off = [f"{p['arm']} {p['lambda']:g}: clean {100 * p['accuracy']:.1f}, FGSM {100 * p['fgsm_accuracy']:.1f}, "
           f"PGD {100 * p['pgd_accuracy']:.1f}" for p in points if p["accuracy"] < floor]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6))
    for ax, robust, name in ((axes[0], "fgsm_accuracy", "FGSM"), (axes[1], "pgd_accuracy", "PGD-20")):
        for p in shown:
            x, y = 100 * p["accuracy"], 100 * p[robust]
            ax.plot(x, y, MARKERS.get(p["arm"], "o"), color=COLORS.get(p["arm"]), alpha=0.55, markersize=6)
            if p["lambda"] is not None:
                ax.annotate(f"{p['lambda']:g}", (x, y), fontsize=6, xytext=(3, 2), textcoords="offset points")
        for arm, m in finals.items():
            ax.errorbar(100 * m["accuracy"]["mean"], 100 * m[robust]["mean"], xerr=100 * m["accuracy"]["std"],
                        yerr=100 * m[robust]["std"], fmt=MARKERS.get(arm, "o"), color=COLORS.get(arm),
                        markersize=10, markeredgecolor="black", capsize=3, label=f"{arm} (final, all seeds)")
        ax.set_xlabel("clean test accuracy (%)", fontsize=9)
        ax.set_ylabel(f"{name} test accuracy (%)", fontsize=9)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=8)
    for arm in dict.fromkeys(p["arm"] for p in shown):
        axes[0].plot([], [], MARKERS.get(arm, "o"), color=COLORS.get(arm), alpha=0.55, label=f"{arm} grid")
    axes[0].legend(fontsize=7)
    fig.suptitle("Clean vs robust accuracy: one small marker per arm and lambda (tuning seeds), "
                 "large markers the chosen lambdas over all seeds", fontsize=9)
    if off:
        fig.text(0.5, 0.01, "not drawn (clean accuracy more than " f"{100 * zoom:g} points below every arm): "
                 + "; ".join(off), ha="center", fontsize=7)
    fig.tight_layout(rect=(0, 0.06 if off else 0, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
