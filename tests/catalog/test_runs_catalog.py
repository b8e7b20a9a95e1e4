"""Reproductions and runs in the catalog: card sync, run import (idempotent), `digest run/runs/import-runs`."""

from __future__ import annotations

import json
import os
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("torch")

from sqlalchemy import func, select  # noqa: E402

from catalog.db import catalog_exists, session  # noqa: E402
from catalog.errors import DigestError  # noqa: E402
from catalog.models import Paper, Reproduction, Run  # noqa: E402
from catalog.runs import import_run, import_runs, list_runs, sync_reproductions  # noqa: E402
from reproductions import registry, runner  # noqa: E402

REPO = Path(__file__).resolve().parents[2]

CARD = '''
from reproductions.api import Card, Claim

CARD = Card(
    name="toy-mean", paper_id="1234.56789", title="Estimating a mean", authors="Test",
    summary="The sample mean converges.", measures="absolute error of the sample mean",
    claims=(Claim(metric="abs_error", value=0.05, source="Eq. 1", higher_is_better=False, kind="bound"),),
    presets={"smoke": {"n": 200, "fail": False}, "cpu": {"n": 2000, "fail": False},
             "gpu": {"n": 20000, "fail": False}},
)


def run(config, ctx):
    import torch

    if config["fail"]:
        raise RuntimeError("asked to fail")
    x = torch.randn(config["n"])
    for i in range(1, 5):
        ctx.log(i, running_mean=x[: i * config["n"] // 4].mean().item())
    return {"abs_error": abs(x.mean().item()), "n": config["n"]}
'''


@pytest.fixture
def toy(tmp_path, monkeypatch):
    pkg = tmp_path / "plugins" / "toy_mean_repro"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(textwrap.dedent(CARD))
    monkeypatch.syspath_prepend(str(pkg.parent))
    monkeypatch.setenv(registry.EXTRA_ENV, "toy_mean_repro")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(pkg.parent), str(REPO)]))
    sys.modules.pop("toy_mean_repro", None)
    return "toy-mean"


def make_run(name, out, **kw):
    return runner.run(runner.RunRequest(name=name, out=out, preset="smoke", device="cpu", progress=False, **kw),
                      echo=lambda _: None)


def test_sync_creates_reproduction_and_pending_paper_once(toy, engine):
    with session(engine) as s:
        s.add(Paper(arxiv_id="9999.00001", title="unrelated"))
    for _ in range(2):
        with session(engine) as s:
            sync_reproductions(s)
    with session(engine) as s:
        repro = s.scalar(select(Reproduction).where(Reproduction.slug == toy))
        assert repro.arxiv_id == "1234.56789" and repro.title == "Estimating a mean"
        assert repro.measures == "absolute error of the sample mean"
        assert repro.presets == ["smoke", "cpu", "gpu"]
        assert repro.paper_claims == [{"metric": "abs_error", "value": 0.05, "unit": "", "source": "Eq. 1",
                                       "note": "", "higher_is_better": False, "id": "", "statement": "",
                                       "kind": "bound", "arms": [], "tolerance": 0.0, "scale": 1.0, "label": ""}]
        assert repro.paper.status == "pending" and repro.paper.arxiv_id == "1234.56789"
        assert s.scalar(select(func.count()).select_from(Reproduction).where(Reproduction.slug == toy)) == 1
        assert s.scalar(select(func.count()).select_from(Paper).where(Paper.arxiv_id == "1234.56789")) == 1


def test_import_run_is_idempotent_and_updates(toy, engine, tmp_path):
    result = make_run(toy, tmp_path / "runs")
    with session(engine) as s:
        first = import_run(s, result.run_dir).id
    with session(engine) as s:
        again = import_run(s, result.run_dir)
        assert again.id == first
        assert s.scalar(select(func.count()).select_from(Run)) == 1
        assert again.status == "completed" and again.preset == "smoke" and again.device.startswith("cpu")
        assert again.metrics["metrics"]["abs_error"] == pytest.approx(result.metrics["abs_error"])
        claim = again.metrics["claims"][0]
        assert claim["paper"]["value"] == 0.05 and claim["estimate"] == pytest.approx(result.metrics["abs_error"])
        assert claim["verdict"] == ("reproduced" if result.metrics["abs_error"] <= 0.05 else "contradicted")
        assert again.config == {"n": 200, "fail": False}
        assert again.versions["torch"] and "curves.png" in again.artefacts
        assert again.duration_s == result.record["duration_s"]
        assert again.reproduction.arxiv_id == "1234.56789"

    rec_path = result.run_dir / "run.json"
    rec = json.loads(rec_path.read_text())
    rec["status"], rec["metrics"] = "interrupted", {"abs_error": 0.5}
    rec_path.write_text(json.dumps(rec))
    with session(engine) as s:
        updated = import_run(s, result.run_dir)
        assert updated.id == first and updated.status == "interrupted"
        assert updated.metrics["metrics"] == {"abs_error": 0.5}


def test_import_runs_reads_a_results_folder_even_without_the_card(toy, engine, tmp_path, monkeypatch):
    make_run(toy, tmp_path / "results")
    make_run(toy, tmp_path / "results", overrides={"fail": True})
    # The catalog may import runs of a reproduction not installed where it runs.
    monkeypatch.delenv(registry.EXTRA_ENV)
    with session(engine) as s:
        runs = import_runs(s, tmp_path / "results")
        assert sorted(r.status for r in runs) == ["completed", "failed"]
        failed = next(r for r in runs if r.status == "failed")
        assert failed.metrics["error"] == "RuntimeError: asked to fail"
        assert runs[0].reproduction.title == "Estimating a mean"
    with session(engine) as s:
        assert len(import_runs(s, tmp_path / "results")) == 2
        assert s.scalar(select(func.count()).select_from(Run)) == 2
        rows = list_runs(s, toy)
        assert len(rows) == 2 and list_runs(s, "other") == []
        done = next(r for r in rows if r.status == "completed")
        assert set(done.headline) == {"abs_error", "n"}


def test_runs_without_a_start_time_are_listed_last_on_every_engine(engine):
    """SQLite sorts NULL first and PostgreSQL last: `digest runs` says where they go (after the dated)."""
    from datetime import datetime

    with session(engine) as s:
        repro = Reproduction(slug="toy-order", title="Order")
        s.add(repro)
        s.flush()
        s.add_all([Run(reproduction_id=repro.id, preset="smoke", run_dir="a", started_at=None),
                   Run(reproduction_id=repro.id, preset="smoke", run_dir="b", started_at=datetime(2024, 1, 1)),
                   Run(reproduction_id=repro.id, preset="smoke", run_dir="c", started_at=datetime(2024, 2, 1))])
    with session(engine) as s:
        assert [r.run_dir for r in list_runs(s)] == ["c", "b", "a"]


def test_import_rejects_folders_that_are_not_runs(engine, tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "run.json").write_text("{not json")
    with session(engine) as s:
        with pytest.raises(DigestError, match="not a run folder"):
            import_run(s, tmp_path / "empty")
        with pytest.raises(DigestError, match="cannot read"):
            import_run(s, tmp_path / "bad")
        with pytest.raises(DigestError, match="no such folder"):
            import_runs(s, tmp_path / "missing")


# ---------------------------------------------------------------- the CLI
# `cli`: no catalog there yet; `catalog_cli`: the catalog of `engine`.

def test_cli_run_list_json_and_table(toy, cli):
    result = cli("run", "--list", "--json")
    assert result.exit_code == 0, result.output
    items = {i["name"]: i for i in json.loads(result.stdout)}
    assert items[toy]["paper_id"] == "1234.56789" and items[toy]["presets"] == ["smoke", "cpu", "gpu"]
    assert items[toy]["measures"] == "absolute error of the sample mean"
    table = cli("run", "--list")
    assert table.exit_code == 0 and "toy-mean" in table.stdout and "1234.56789" in table.stdout


def test_cli_run_records_in_catalog_then_runs_json(toy, catalog_cli, tmp_path):
    # the catalog exists: the run gets recorded
    result = catalog_cli("run", toy, "--preset", "smoke", "--device", "cpu", "--no-progress",
                         "--out", str(tmp_path / "runs"), "--set", "n=400")
    assert result.exit_code == 0, result.output
    assert "recorded as run 1" in result.stdout and "(required on every seed: ≤ 0.05)" in result.stdout
    assert "exploratory run: no verdict" in result.stdout  # --set n=400 is not the preset's run
    runs = json.loads(catalog_cli("runs", "--json").stdout)
    assert len(runs) == 1 and runs[0]["name"] == toy and runs[0]["status"] == "completed"
    assert set(runs[0]["headline"]) == {"abs_error", "n"} and runs[0]["headline"]["n"] == 400
    assert json.loads(catalog_cli("runs", "other", "--json").stdout) == []

    imported = catalog_cli("import-runs", str(tmp_path / "runs"), "--json")
    assert imported.exit_code == 0 and len(json.loads(imported.stdout)) == 1
    assert len(json.loads(catalog_cli("runs", "--json").stdout)) == 1  # same folder: same row

    failed = catalog_cli("run", toy, "--preset", "smoke", "--device", "cpu", "--no-progress",
                         "--out", str(tmp_path / "runs"), "--set", "fail=true")
    assert failed.exit_code == 1
    statuses = sorted(r["status"] for r in json.loads(catalog_cli("runs", "--json").stdout))
    assert statuses == ["completed", "failed"]


def test_cli_without_catalog_still_runs_and_says_so(toy, cli, tmp_path):
    result = cli("run", toy, "--preset", "smoke", "--device", "cpu", "--no-progress",
                 "--out", str(tmp_path / "runs"))
    assert result.exit_code == 0, result.output
    assert "not recorded" in result.stdout and not catalog_exists(cli.db)


def test_cli_errors_are_one_line_with_exit_codes(toy, cli, tmp_path):
    unknown = cli("run", "no-such-paper")
    assert unknown.exit_code == 2
    assert unknown.stderr.strip() == "digest: error: unknown reproduction 'no-such-paper'; known: " + ", ".join(
        sorted(registry.discover()))
    bad_set = cli("run", toy, "--preset", "smoke", "--set", "m=3", "--out", str(tmp_path / "r"))
    assert bad_set.exit_code == 2
    assert "digest: error: unknown --set key(s) for toy-mean: m" in bad_set.stderr
    assert not (tmp_path / "r").exists()
    no_name = cli("run")
    assert no_name.exit_code == 2 and "--list" in no_name.stderr


def test_both_command_lines_build_the_same_request_from_the_same_options(toy, cli, tmp_path, monkeypatch):
    """One option table, one builder: `digest run` and `python -m reproductions run` cannot drift apart."""
    from reproductions import cli as runner_cli

    seen = []

    def capture(request, **kw):
        seen.append(request)
        raise KeyboardInterrupt  # stop before anything runs; both CLIs turn it into exit 130

    monkeypatch.setattr(runner, "run", capture)
    argv = [toy, "--preset", "cpu", "--device", "cpu", "--seed", "3", "--seeds", "2", "--set", "n=10",
            "--set", "fail=false", "--data-dir", str(tmp_path / "d"), "--out", str(tmp_path / "o"), "--nproc", "2",
            "--nnodes", "2", "--node-rank", "1", "--rdzv-endpoint", "127.0.0.1:29999", "--no-progress"]
    assert runner_cli.main(["run", *argv]) == 130
    assert cli("run", *argv).exit_code != 0
    assert len(seen) == 2 and seen[0] == seen[1]
    assert seen[0].overrides == {"n": 10, "fail": False} and seen[0].nnodes == 2 and not seen[0].progress
    seen.clear()
    assert runner_cli.main(["run", toy]) == 130 and cli("run", toy).exit_code != 0
    assert seen[0] == seen[1] and seen[0].out == Path("runs") and seen[0].preset is None


def test_cli_run_all_runs_the_campaign_and_records_every_run(toy, catalog_cli, tmp_path):
    out = str(tmp_path / "results")
    refused = catalog_cli("run", "--all", "--preset", "smoke", "--device", "cpu", "--out", out)
    assert refused.exit_code == 1 and "no planned time for preset 'smoke'" in refused.stderr
    assert "toy-mean" in refused.stderr and "unknown" in refused.stderr  # the plan came first
    done = catalog_cli("run", "--all", "--only", toy, "--force", "--preset", "smoke", "--device", "cpu",
                       "--no-progress", "--out", out, "--json")
    assert done.exit_code == 0, done.output
    rows = json.loads(done.stdout)
    assert [(r["reproduction"], r["status"], r["metric"], r["paper"]) for r in rows] == [
        (toy, "completed", "abs_error", 0.05)]
    assert rows[0]["catalog_run_id"] == 1
    runs = json.loads(catalog_cli("runs", "--json").stdout)
    assert len(runs) == 1 and runs[0]["status"] == "completed"
    for args, message in ((["run", toy, "--all"], "drop 'toy-mean'"), (["run", toy, "--force"], "go with --all"),
                          (["run", "--all", "--set", "n=3"], "--set apply to one run")):
        bad = catalog_cli(*args)
        assert bad.exit_code == 2 and message in bad.stderr, bad.output
