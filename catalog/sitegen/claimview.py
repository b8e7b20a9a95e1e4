"""What a reader sees first on a reproduction page: a badge and a sentence per claim, then the arms.

The claims come judged in the run record (``reproductions.claims``); the words and numbers
come from `reproductions.report`, the same module the runner's closing summary uses, so the
page and the terminal agree. No dotted metric key and no number with more than 4
significant digits leaves here: keys go through the card's labels (`reader_name`), numbers
through `report.num`.
"""

from __future__ import annotations

from typing import Any

from markupsafe import Markup

from reproductions.report import VERDICT_WORDS, claim_label, claim_sentence, label_of, num

VERDICTS = ("reproduced", "contradicted", "inconclusive", "exploratory", "not measured")


def reader_name(key: str, labels: dict[str, str]) -> str:
    """A metric, arm or config key in words: the card's label, else its parts without dots."""
    return label_of(str(key), labels)


def badge(verdict: Any) -> Markup:
    """A coloured verdict badge; the word comes from a fixed set, never from the record's text."""
    word = str(verdict) if verdict in VERDICTS else "not judged"
    css = word.replace(" ", "-")
    return Markup(f'<span class="digest-verdict digest-verdict--{css}">{VERDICT_WORDS.get(word, word)}</span>')


def is_judged(claim: Any) -> bool:
    """A claim in the judged shape (run.json since verdicts exist), not an older {metric, paper, ours}."""
    return isinstance(claim, dict) and "verdict" in claim and isinstance(claim.get("paper"), dict)


def claim_lines(stored: dict[str, Any], labels: dict[str, str]) -> list[dict[str, Any]]:
    """One {badge, sentence} per claim of a run; older records get a plain line and no verdict."""
    per_claim = (stored.get("analysis") or {}).get("per_claim") or {}
    lines = []
    for claim in stored.get("claims") or []:
        if is_judged(claim):
            label = labels.get(claim["id"]) or claim_label(claim, labels)
            p_holm = (per_claim.get(claim["id"]) or {}).get("p_holm")
            lines.append({"badge": badge(claim["verdict"]), "sentence": claim_sentence(claim, label, p_holm),
                          "verdict": claim["verdict"], "kind": claim.get("kind"),
                          "note": str((claim.get("paper") or {}).get("note") or "")})
        elif isinstance(claim, dict) and claim.get("metric"):
            unit = f" {claim.get('unit')}" if claim.get("unit") else ""
            lines.append({"badge": badge(None), "verdict": None, "kind": "value", "note": "",
                          "sentence": f"{reader_name(claim['metric'], labels)}: ours {num(claim.get('ours'))}{unit} "
                                      f"(paper: {num(claim.get('paper'), 4, trim=True)}{unit}; recorded before verdicts — "
                                      "run `digest runs analyse` on its folder)"})
    return lines


def verdict_run(runs: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The run whose claims the page leads with: the newest completed, pre-registered run with claims."""
    for run in runs:  # newest first
        if run["status"] == "completed" and not run.get("exploratory") and run.get("claim_lines"):
            return run
    return next((run for run in runs if run.get("claim_lines")), None)


def preset_tables(presets: dict[str, dict[str, Any]], paper: dict[str, Any],
                  labels: dict[str, str]) -> list[dict[str, Any]]:
    """Each preset as key/value rows; `differs` marks a value the paper set otherwise."""
    from catalog.sitegen.runview import flatten

    tables = []
    for name, config in presets.items():
        rows = []
        for key, value in flatten(dict(config)).items():
            known = key in paper
            rows.append({"key": reader_name(key, labels), "value": value,
                         "paper": paper.get(key) if known else None,
                         "differs": known and paper.get(key) != value})
        tables.append({"name": name, "rows": rows})
    return tables
