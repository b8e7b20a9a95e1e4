"""`python -m reproductions campaign`: plan, refusal, back-to-back runs, resume, the table.

Three toy reproductions written to a temp folder and registered like plugins
(``$DIGEST_REPRODUCTIONS``): two with planned times, one without.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from reproductions import campaign, cli, registry  # noqa: E402
from reproductions.api import Card, Claim  # noqa: E402

REPO = Path(__file__).resolve().parents[2]

TOY = '''
import torch

from reproductions.api import Card, Claim

CARD = Card(
    name={name!r}, paper_id="0000.0000{idx}", title="Toy {name}", authors="Test", summary="", measures="a fit",
    claims=(Claim(metric="fit.mse", value=0.01, unit="MSE", source="Table 1", higher_is_better=False),),
    presets={{"smoke": {{"steps": 6, "interrupt_at": -1}}, "gpu": {{"steps": 6, "interrupt_at": -1}}}},
    budget_s={budget!r},
)


def run(config, ctx):
    torch.manual_seed(ctx.seed)
    w = torch.zeros(2, requires_grad=True)
    opt = torch.optim.SGD([w], lr=0.3)
    x = torch.randn(64, 2)
    y = x @ torch.tensor([1.0, -1.0])
    start = 0
    saved = ctx.load_checkpoint()
    if saved is not None:
        w.data.copy_(saved["w"])
        start = saved["step"]
        ctx.note("resumed_from_step", start)
    state = {{"step": start}}
    ctx.autosave(lambda: {{"w": w.detach().clone(), "step": state["step"]}})
    for step in range(start, config["steps"]):
        if step == config["interrupt_at"] and not ctx.resume:
            raise KeyboardInterrupt
        loss = ((x @ w - y) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        ctx.count_examples(len(x))
        state["step"] = step + 1
    return {{"fit": {{"mse": ((x @ w - y) ** 2).mean().item()}}, "steps_done": state["step"]}}
'''

TOYS = {"camp_fast": ("camp-fast", {"smoke": 30.0, "gpu": 120.0}),
        "camp_second": ("camp-second", {"smoke": 45.0, "gpu": 600.0}),
        "camp_unplanned": ("camp-unplanned", {})}


@pytest.fixture
def toys(tmp_path, monkeypatch):
    root = tmp_path / "plugins"
    for idx, (module, (name, budget)) in enumerate(TOYS.items()):
        (root / module).mkdir(parents=True)
        (root / module / "__init__.py").write_text(textwrap.dedent(TOY.format(name=name, idx=idx, budget=budget)))
        sys.modules.pop(module, None)
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.setenv(registry.EXTRA_ENV, ",".join(TOYS))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(root), str(REPO)]))
    return {name: entry for name, entry in registry.discover().items() if name.startswith("camp-")}


def go(entries, out, **kw):
    lines: list[str] = []
    kw.setdefault("only", ["camp-fast", "camp-second"])
    result = campaign.run_campaign(preset=kw.pop("preset", "smoke"), out=out, device="cpu", progress=False,
                                   entries=entries, echo=lines.append, **kw)
    return result, lines


def run_dirs(out: Path) -> list[Path]:
    return sorted(p.parent for p in out.rglob("run.json"))


def test_plan_is_printed_and_an_over_budget_plan_is_refused_before_any_run(toys, tmp_path):
    with pytest.raises(campaign.CampaignRefused, match="plan 12.0 min exceeds the 5 min budget"):
        go(toys, tmp_path, preset="gpu", budget_min=5)
    assert run_dirs(tmp_path) == []
    lines: list[str] = []
    with pytest.raises(campaign.CampaignRefused, match="no planned time for preset 'smoke' in the card of camp-unplanned"):
        campaign.run_campaign(preset="smoke", out=tmp_path, only=None, entries=toys, echo=lines.append, device="cpu")
    assert any("camp-fast" in l and "0.5 min" in l for l in lines) and any("unknown" in l for l in lines)
    assert run_dirs(tmp_path) == []


def test_force_runs_an_unplanned_reproduction(toys, tmp_path):
    result, _ = go(toys, tmp_path, only=["camp-unplanned"], force=True)
    assert result.status == "completed" and [r["status"] for r in result.rows] == ["completed"]


def test_campaign_runs_back_to_back_and_ends_with_one_table(toys, tmp_path, capsys):
    result, lines = go(toys, tmp_path)
    assert result.status == "completed" and result.exit_code == 0
    plan_total = next(l for l in lines if "to run" in l)
    assert "1.2 min of a 12 min budget" in plan_total and lines.index(plan_total) < lines.index(
        next(l for l in lines if l.startswith("run folder:")))  # the plan comes before any run
    by_name = {r["reproduction"]: r for r in result.rows}
    assert set(by_name) == {"camp-fast", "camp-second"}
    for row in by_name.values():
        rec = json.loads((Path(row["run_dir"]) / "run.json").read_text())
        assert row["metric"] == "fit.mse" and row["paper"] == 0.01
        assert row["ours"] == pytest.approx(rec["metrics"]["fit"]["mse"]) and row["device"] == "cpu"
        assert row["wall_s"] == rec["duration_s"] and rec["examples_per_rank"] == [6 * 64]
    table = campaign.table_lines(result.rows)
    assert table[0].split()[:3] == ["reproduction", "status", "headline"] and len(table) == 4
    state = json.loads((tmp_path / campaign.STATE_FILE).read_text())
    assert state["preset"] == "smoke" and state["table"] == json.loads(json.dumps(result.rows))
    # Again: everything is done, nothing runs, the same table comes back.
    before = run_dirs(tmp_path)
    again, lines = go(toys, tmp_path)
    assert run_dirs(tmp_path) == before and again.rows == result.rows
    assert sum("done earlier: skipped" in l for l in lines) == 2


def test_interrupted_campaign_resumes_the_interrupted_run_and_skips_the_finished(toys, tmp_path, monkeypatch):
    second = toys["camp-second"]
    interrupting = dict(toys, **{"camp-second": registry.Entry(
        Card(**{**second.card.__dict__, "presets": {"smoke": {"steps": 6, "interrupt_at": 3}}}), second.module)})
    result, _ = go(interrupting, tmp_path)
    assert result.status == "interrupted" and result.exit_code == 130
    status = {r["reproduction"]: r["status"] for r in result.rows}
    assert status == {"camp-fast": "completed", "camp-second": "interrupted"}
    first_dir = {r["reproduction"]: r["run_dir"] for r in result.rows}
    resumed, lines = go(interrupting, tmp_path)
    assert resumed.status == "completed"
    rows = {r["reproduction"]: r for r in resumed.rows}
    assert rows["camp-fast"]["run_dir"] == first_dir["camp-fast"]  # skipped, not rerun
    assert rows["camp-second"]["run_dir"] == first_dir["camp-second"]  # the same folder, resumed
    rec = json.loads((Path(first_dir["camp-second"]) / "run.json").read_text())
    assert rec["status"] == "completed" and rec["notes"]["resumed_from_step"] == 3 and rec["resumed_at"]
    assert rec["metrics"]["steps_done"] == 6 and rec["examples_per_rank"] == [6 * 64]
    assert len(run_dirs(tmp_path)) == 2


def test_headline_is_the_cards_choice_else_the_first_claim_else_the_first_number():
    base = dict(paper_id="1", title="t", authors="a", summary="", measures="")
    claims = (Claim(metric="bleu", value=28.4), Claim(metric="acc", value=0.9))
    metrics = {"loss": 0.5, "acc": 0.8}
    assert campaign.headline_of(Card(name="a", claims=claims, **base), metrics) == ("bleu", 28.4, None)
    assert campaign.headline_of(Card(name="b", claims=claims, headline="acc", **base), metrics) == ("acc", 0.9, 0.8)
    assert campaign.headline_of(Card(name="c", headline="loss", **base), metrics) == ("loss", None, 0.5)
    assert campaign.headline_of(Card(name="d", **base), metrics) == ("loss", None, 0.5)
    assert campaign.headline_of(Card(name="e", **base), {}) == (None, None, None)


def test_cli_campaign_needs_torch_alone_and_prints_the_table(toys, tmp_path):
    """A fresh interpreter: the campaign path must not import the catalog's dependencies."""
    script = textwrap.dedent(f'''
        import sys
        from reproductions.cli import main
        code = main(["campaign", "--preset", "smoke", "--only", "camp-fast", "--out", {str(tmp_path)!r},
                     "--device", "cpu", "--no-progress"])
        heavy = sorted(m for m in ("sqlalchemy", "arxiv", "bs4", "mkdocs", "typer", "catalog") if m in sys.modules)
        print("HEAVY", heavy)
        sys.exit(code)
    ''')
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert "HEAVY []" in done.stdout
    table = [l for l in done.stdout.splitlines() if l.startswith("camp-fast")]
    assert len(table) == 1 and "completed" in table[0] and "fit.mse" in table[0] and "cpu" in table[0]
    assert "campaign plan, preset smoke" in done.stderr


@pytest.mark.parametrize("args, message, code", [
    (["--only", "no-such"], "unknown reproduction(s) no-such", 2),
    (["--only", "camp-fast", "--budget-min", "0.1"], "exceeds the 0.1 min budget", 1),
])
def test_cli_campaign_bad_input_is_one_line(toys, tmp_path, capsys, args, message, code):
    assert cli.main(["campaign", "--preset", "smoke", "--out", str(tmp_path), *args]) == code
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.strip().splitlines()[-1].startswith("python -m")


def test_cli_campaign_refuses_an_out_folder_of_another_preset(toys, tmp_path, capsys):
    (tmp_path / campaign.STATE_FILE).write_text(json.dumps({"preset": "gpu", "reproductions": {}}))
    assert cli.main(["campaign", "--preset", "smoke", "--out", str(tmp_path), "--only", "camp-fast"]) == 2
    assert "holds a campaign of preset 'gpu'" in capsys.readouterr().err


def test_the_real_gpu_plan_fits_twelve_minutes_once_cards_give_budgets():
    """Issue 13's bar: every card plans its gpu preset, and the campaign's plan fits 12 minutes."""
    cards = {name: e.card for name, e in registry.discover().items() if e.module.startswith("reproductions.")}
    if not any(c.budget_s for c in cards.values()):
        pytest.skip("no card gives budget_s yet")
    missing = sorted(name for name, c in cards.items() if "gpu" not in c.budget_s)
    assert not missing, f"cards without budget_s['gpu']: {missing}"
    plan = campaign.make_plan([registry.Entry(c, "") for c in cards.values()], "gpu", {})
    campaign.check_plan(plan, "gpu", campaign.DEFAULT_BUDGET_MIN * 60, force=False)  # raises when over
