"""Claims judged from stored per-seed values: the committed runs, the stopping rule, a torch-only machine."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from scipy import stats as sps

from reproductions import record
from reproductions.claims import NOT_COMPUTED, analyse_record, per_seed_values
from reproductions.registry import discover

ROOT = Path(__file__).resolve().parents[2]
RUNS = sorted((ROOT / "results").rglob("run.json"))


def _rec(*parts: str) -> dict:
    return record.read_json(ROOT.joinpath("results", *parts, "run.json"))


@pytest.mark.parametrize("path", RUNS, ids=[str(p.parent.relative_to(ROOT)) for p in RUNS])
def test_analyse_reproduces_each_committed_runs_claims(path):
    rec = record.read_json(path)
    rows, _ = analyse_record(rec, discover()[rec["name"]].card.claims)
    assert rows == rec["claims"]


def _paired_t(a, b, level, scale=100.0):
    """An independent paired t-interval: mean +- t quantile x sd / sqrt(n), by hand."""
    d = [scale * (x - y) for x, y in zip(a, b)]
    n, m = len(d), sum(d) / len(d)
    sd = math.sqrt(sum((x - m) ** 2 for x in d) / (n - 1))
    q = sps.t.ppf(0.5 + level / 2, n - 1)
    return m, (m - q * sd / math.sqrt(n), m + q * sd / math.sqrt(n))


def test_weissi_robustness_claims_are_paired_by_seed():
    rec = _rec("weissi", "20261202T173340Z")
    claims = {c["id"]: c for c in rec["claims"]}
    m = rec["metrics"]
    for metric, expected in (("fgsm_accuracy", (0.64, 0.31, 0.98)), ("pgd_accuracy", (0.69, 0.37, 1.01)),
                             ("accuracy", (-0.13, -0.24, -0.03))):
        est, ci = _paired_t(m["weissi"][metric]["per_seed"], m["l2"][metric]["per_seed"], 0.95)
        claim = claims[f"weissi_vs_l2_{metric}"]
        assert (round(est, 2), round(ci[0], 2), round(ci[1], 2)) == expected  # the issue's own numbers
        assert claim["estimate"] == pytest.approx(est) and claim["ci_unadjusted"] == pytest.approx(ci)
        _, joint = _paired_t(m["weissi"][metric]["per_seed"], m["l2"][metric]["per_seed"], 1 - 0.05 / 3)
        assert claim["ci"] == pytest.approx(joint) and claim["n_seeds"] == 5
    assert claims["weissi_vs_l2_fgsm_accuracy"]["verdict"] == "reproduced"
    assert claims["weissi_vs_l2_pgd_accuracy"]["verdict"] == "reproduced"


def test_drophead_headline_is_inconclusive_after_adjustment():
    rec = _rec("drophead", "20261202T175629Z")
    arms = rec["metrics"]["arms"]
    claim = next(c for c in rec["claims"] if c["id"] == "scheduled_vs_dropout")
    est, ci = _paired_t(arms["scheduled_drophead"]["accuracy"]["per_seed"], arms["dropout"]["accuracy"]["per_seed"],
                        0.95)
    assert (round(est, 2), round(ci[0], 2), round(ci[1], 2)) == (0.96, 0.23, 1.70)  # as the issue quotes it
    assert claim["ci"][0] < 0 < claim["ci"][1] and claim["verdict"] == "inconclusive"


def test_a_run_that_added_seeds_to_some_arms_is_exploratory_and_feeds_no_verdict():
    rec = _rec("drophead", "20261202T181418Z")
    assert "--set seeds=10" in rec["exploratory"]
    # it ran none and dropout only: each of the card's four claims is listed, not measured, never judged
    assert [(c["verdict"], c["estimate"], c["n_seeds"]) for c in rec["claims"]] == [("not measured", None, 0)] * 4
    short = _rec("nvae", "20261202T174100Z")
    assert short["exploratory"] and {c["verdict"] for c in short["claims"]} == {"exploratory"}


def test_per_seed_values_follow_the_run_seeds_in_every_storage_form():
    by_arm = {"seeds": [3, 4], "metrics": {"a": {"acc": {"mean": 0.5, "per_seed": [0.4, 0.6]}}}}
    by_seed = {"seeds": [3, 4], "metrics": {}, "metrics_by_seed": {"4": {"a": {"acc": 0.6}}, "3": {"a": {"acc": 0.4}}}}
    single = {"seeds": [0], "metrics": {"a": {"acc": 0.7}}}
    assert per_seed_values(by_arm, "a.acc") == per_seed_values(by_seed, "a.acc") == [0.4, 0.6]
    assert per_seed_values(single, "a.acc") == [0.7]
    assert per_seed_values(single, "b.acc") is None


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), **extra)
    return env


def test_a_torch_only_machine_runs_and_defers_the_claims_to_analyse(tmp_path):
    """scipy blocked at import: the run completes with "claims not computed", analyse fills them in."""
    block = ("import sys; sys.modules['scipy'] = None; from reproductions.cli import main; "
             "sys.exit(main(sys.argv[1:]))")
    run = subprocess.run([sys.executable, "-c", block, "run", "self-attention", "--preset", "smoke", "--out",
                          str(tmp_path), "--no-progress", "--set", "steps=3"], capture_output=True, text=True,
                         env=_env(), timeout=300)
    assert run.returncode == 0, run.stderr
    assert NOT_COMPUTED in run.stdout
    (run_dir,) = (tmp_path / "self-attention").iterdir()
    rec = record.read_json(run_dir / "run.json")
    assert rec["status"] == "completed" and rec["claims"] == [] and rec["analysis"]["status"] == NOT_COMPUTED
    assert rec["exploratory"] == "not the preset's pre-registered run (--set steps=3)"
    out = subprocess.run([sys.executable, "-m", "reproductions", "analyse", str(run_dir), "--json"],
                         capture_output=True, text=True, env=_env(), timeout=120)
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)[0]["claims"]
    assert [r["id"] for r in rows] == ["exact_vs_sdpa", "learns_reversal"]
    assert rows[0]["estimate"] < 1e-5 and rows[0]["verdict"] == "exploratory"
    assert record.read_json(run_dir / "run.json")["claims"] == rows


def test_analyse_refuses_a_folder_without_a_record_in_one_line(tmp_path):
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "run.json").write_text("{not json", encoding="utf-8")
    for target, message in ((tmp_path / "missing", "no run.json there"), (tmp_path / "bad", "not valid JSON")):
        out = subprocess.run([sys.executable, "-m", "reproductions", "analyse", str(target)],
                             capture_output=True, text=True, env=_env(), timeout=120)
        assert out.returncode == 2 and message in out.stderr and "Traceback" not in out.stderr
        assert len(out.stderr.strip().splitlines()) == 1


def test_one_metric_lookup_serves_the_runner_and_the_site():
    """The site's claim rows and the runner's claim table read metrics through one function:
    a dotted path, a statistic's mean, and an arm's metric named with or without `arms.`."""
    from catalog.sitegen import runview
    from reproductions import record

    metrics = {"arms": {"dropout": {"accuracy": {"mean": 0.81, "std": 0.01}}},
               "optimus": {"ppl": 92.5}, "label": "text"}
    assert runview.lookup is record.lookup
    assert record.lookup(metrics, "optimus.ppl") == 92.5
    assert record.lookup(metrics, "arms.dropout.accuracy") == 0.81
    assert record.lookup(metrics, "dropout.accuracy") == 0.81
    assert record.lookup(metrics, "dropout.loss") is None
    assert record.lookup(metrics, "label") is None  # not a number
