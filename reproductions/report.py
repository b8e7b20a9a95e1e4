"""Words and numbers for readers: one sentence per claim, numbers with few significant digits.

Shared by the runner's closing summary and the site (catalog.sitegen), so the terminal and
the page say the same thing. No dotted metric key and no number with more than 4
significant digits leaves this module.
"""

from __future__ import annotations

import math
from typing import Any

VERDICT_WORDS = {"reproduced": "reproduced", "contradicted": "contradicted", "inconclusive": "inconclusive",
                 "exploratory": "exploratory run: no verdict", "not measured": "not measured by this run"}


def num(x: Any, sig: int = 3, signed: bool = False, trim: bool = False) -> str:
    """`x` with `sig` significant digits: 0.9711 -> "0.971", 4447872 -> "4.45e+06", 2.4e-07 -> "2.4e-07".
    Trailing zeros are kept (2.0 beside 1.5 in an interval) unless `trim` (a config value: 0.001)."""
    if x is None:
        return "—"
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return str(x)
    if not math.isfinite(x):
        return "—"
    if isinstance(x, int) and abs(x) < 10 ** sig:
        text = str(x)
    elif 10 ** sig <= abs(x) < 1e6:  # 1234.5 -> "1230", 60000 -> "60000": digits past `sig` become zeros
        text = str(int(round(x, sig - len(str(int(abs(x)))))))
    elif x == 0:
        text = "0"
    elif 1e-4 <= abs(x) < 10 ** sig:
        text = f"{x:#.{sig}g}".rstrip(".")
        if "e" in text:  # '#g' switches to exponent near the top of the range
            text = f"{x:.{sig}g}"
        if trim and "." in text:
            text = text.rstrip("0").rstrip(".")
    else:
        text = f"{x:.{max(1, sig - 1)}e}" if abs(x) >= 10 ** sig else f"{x:.{sig - 1}e}"
        mantissa, exp = text.split("e")
        text = f"{mantissa.rstrip('0').rstrip('.')}e{exp}"
    if signed and x > 0:
        text = "+" + text
    return text.replace("-", "−") if text.startswith("-") or "e-" in text else text


def label_of(key: str, labels: dict[str, str]) -> str:
    """A reader's name for an arm or metric key; never the dotted key itself."""
    if key in labels:
        return labels[key]
    parts = key.split(".")
    for i in range(len(parts) - 1, 0, -1):  # the longest labelled prefix names the arm
        head = ".".join(parts[:i])
        if head in labels:
            return ", ".join([labels[head]] + [label_of(p, labels) for p in parts[i:]])
    if len(parts) > 1:
        return ", ".join(label_of(p, labels) for p in parts)
    return key.replace("_", " ")


def claim_label(claim: dict[str, Any], labels: dict[str, str] | None = None) -> str:
    """The claim's short name: the card's label, else its arms and metric in words."""
    labels = labels or {}
    if claim.get("label"):
        return str(claim["label"])
    arms = [label_of(a, labels) for a in claim.get("arms") or []]
    metric = label_of(str(claim.get("metric") or ""), labels)
    if claim.get("kind") == "difference" and len(arms) == 2:
        return f"{arms[0]} vs {arms[1]}, {metric}"
    return f"{arms[0]}, {metric}" if arms else metric


def _interval(ci: Any, signed: bool) -> str:
    if not ci or None in ci:
        return ""
    return f" [{num(ci[0], 2, signed)}, {num(ci[1], 2, signed)}]"


def paper_text(claim: dict[str, Any]) -> str:
    paper = claim.get("paper") or {}
    value, unit = paper.get("value"), paper.get("unit") or ""
    if claim.get("kind") == "bound":
        sign = "≤" if claim.get("direction") == "lower" else "≥"
        return f"{sign} {num(value, 3, trim=True)} {unit}".strip()
    if value is None:
        return "no figure"
    tol = paper.get("tolerance")
    text = f"{value:+.4g}" if claim.get("kind") == "difference" else f"{value:.4g}"
    if text.lstrip("+-").isdigit() and claim.get("kind") != "bound":
        text += ".0"  # a paper's "+1.0 points", not "+1"
    if tol:
        text += f" ± {num(tol)}"
    return f"{text} {unit}".strip()


def claim_sentence(claim: dict[str, Any], label: str, p_holm: float | None = None) -> str:
    """``Scheduled DropHead vs dropout: +0.963 points [−0.088, +2.0] adjusted, 5 seeds — inconclusive (paper: +1.0 points)``."""
    if claim.get("estimate") is None:  # the run left out what the claim needs
        return f"{label}: {VERDICT_WORDS['not measured']} (paper: {paper_text(claim)})"
    kind, n = claim.get("kind"), claim.get("n_seeds") or 0
    unit = (claim.get("paper") or {}).get("unit") or ""
    signed = kind == "difference"
    est = f"{num(claim.get('estimate'), 3, signed)} {unit}".rstrip()
    seeds = f"{n} seed" + ("" if n == 1 else "s")
    verdict = VERDICT_WORDS.get(str(claim.get("verdict")), str(claim.get("verdict")))
    if kind == "difference":
        if claim.get("ci"):
            adjusted = " adjusted" if str(claim.get("adjustment", "")).startswith("Holm") else ""
            body = f"{est}{_interval(claim['ci'], True)}{adjusted}, {seeds}"
        else:
            body = f"{est}, {seeds} (no interval)"
        extra = ""
        ci = claim.get("ci") or []
        if p_holm is not None and ci and claim.get("verdict") in ("reproduced", "contradicted") and ci[0] <= 0 <= ci[1]:
            extra = f"; Holm-adjusted p = {num(p_holm, 2)}, the simultaneous interval is more cautious"
        return f"{label}: {body} — {verdict}{extra} (paper: {paper_text(claim)})"
    if kind == "bound":
        mean = f" (mean of {n} seeds)" if n > 1 else ""
        return f"{label}: {est}{mean} — {verdict} (required on every seed: {paper_text(claim)})"
    return f"{label}: {est}{_interval(claim.get('ci'), False)}, {seeds} — {verdict} (paper: {paper_text(claim)})"
