"""A campaign: every reproduction's preset run back to back, with a plan, a budget and one table.

``python -m reproductions campaign --preset gpu`` is meant for the one hour someone lends a GPU:

1. the plan: each card's ``budget_s[preset]`` (planned wall seconds) is printed, and the
   campaign refuses to start when a card has no number or the sum exceeds ``--budget-min``
   (``--force`` runs anyway);
2. the runs, one after the other, through `reproductions.runner.run` into ``OUT/NAME/<time>/``;
   ``OUT/campaign.json`` says which are done, so running the same command again after an
   interruption skips the finished ones and resumes the interrupted one (the runner's resume);
3. one table: reproduction, headline metric (`headline_of`), the paper's number, ours, wall
   time, device (the GPU's name, or ``cpu``).

Like the rest of the runner it needs torch alone: nothing here imports the catalog.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from reproductions import record
from reproductions.api import Card
from reproductions.errors import RunnerError, RunnerUsageError
from reproductions.registry import Entry, discover

STATE_FILE = "campaign.json"
DEFAULT_BUDGET_MIN = 12.0

Echo = Callable[[str], None]


class CampaignRefused(RunnerError):
    """The plan is over budget or incomplete and --force was not given (exit 1)."""


@dataclass(frozen=True)
class PlanRow:
    name: str
    budget_s: float | None  # None: the card gives no number for this preset
    done: bool = False  # finished in an earlier invocation of this campaign


@dataclass
class CampaignResult:
    rows: list[dict[str, Any]]  # one per reproduction, for the table and --json
    status: str  # completed | failed (some run failed) | interrupted
    state_path: Path

    @property
    def exit_code(self) -> int:
        return {"completed": 0, "interrupted": 130}.get(self.status, 1)


# ---------------------------------------------------------------- the headline metric

def headline_of(card: Card, metrics: dict[str, Any]) -> tuple[str | None, float | None, float | None]:
    """(metric key, the paper's number, ours) for the campaign table.

    The key is ``card.headline`` when set, else the first claim's metric, else the first
    number the experiment returned. The paper's number is the claim with that key, if any.
    """
    single = [c for c in card.claims if c.kind != "difference"]  # a difference claim is not one metric
    key = card.headline or (single[0].paths()[0] if single else None)
    if key is None:
        first = record.headline(metrics, limit=1)
        key = next(iter(first), None)
    if key is None:
        return None, None, None
    paper = next((c.value for c in single if c.paths()[0] == key), None)
    return key, paper, record.lookup(metrics, key)


# ---------------------------------------------------------------- the plan

def select(entries: dict[str, Entry], preset: str, only: list[str] | None) -> list[Entry]:
    """The reproductions to run, in registry order; unknown --only names and missing presets are usage errors."""
    unknown = [n for n in only or () if n not in entries]
    if unknown:
        raise RunnerUsageError(f"unknown reproduction(s) {', '.join(unknown)}; known: {', '.join(entries)}")
    chosen = [e for e in entries.values() if not only or e.card.name in only]
    lacking = [e.card.name for e in chosen if preset not in e.card.presets]
    if lacking:
        raise RunnerUsageError(f"no preset {preset!r} in {', '.join(lacking)}; leave them out with --only")
    return chosen


def make_plan(chosen: list[Entry], preset: str, state: dict[str, Any]) -> list[PlanRow]:
    done = {n for n, s in state.get("reproductions", {}).items() if s.get("status") == record.FINISHED}
    return [PlanRow(e.card.name, e.card.budget_s.get(preset), e.card.name in done) for e in chosen]


def plan_lines(plan: list[PlanRow], preset: str, budget_s: float) -> list[str]:
    width = max([len(r.name) for r in plan] + [12])
    lines = [f"campaign plan, preset {preset} (planned wall time per reproduction, from its card):"]
    for row in plan:
        planned = "unknown" if row.budget_s is None else f"{row.budget_s / 60:6.1f} min"
        lines.append(f"  {row.name:<{width}}  {planned}" + ("  (done earlier: skipped)" if row.done else ""))
    todo = [r for r in plan if not r.done]
    known = sum(r.budget_s for r in todo if r.budget_s is not None)
    unknown = sum(r.budget_s is None for r in todo)
    lines.append(f"  {'to run':<{width}}  {known / 60:6.1f} min" + (f" + {unknown} unknown" if unknown else "")
                 + f" of a {budget_s / 60:g} min budget")
    return lines


def check_plan(plan: list[PlanRow], preset: str, budget_s: float, force: bool) -> None:
    """Refuse a plan that is over budget or has unknown budgets, unless forced."""
    if force:
        return
    todo = [r for r in plan if not r.done]
    unknown = [r.name for r in todo if r.budget_s is None]
    if unknown:
        raise CampaignRefused(f"no planned time for preset {preset!r} in the card of {', '.join(unknown)} (Card.budget_s); "
                              "--force runs anyway, --only leaves them out")
    total = sum(r.budget_s for r in todo)
    if total > budget_s:
        raise CampaignRefused(f"plan {total / 60:.1f} min exceeds the {budget_s / 60:g} min budget; "
                              "--force runs anyway, --only runs fewer, --budget-min raises it")


# ---------------------------------------------------------------- state between invocations

def read_state(out: Path, preset: str) -> dict[str, Any]:
    path = out / STATE_FILE
    if not path.is_file():
        return {"preset": preset, "started_at": record.iso(record.utc_now()), "reproductions": {}}
    try:
        state = record.read_json(path)
    except (OSError, ValueError) as exc:
        raise RunnerUsageError(f"{path} is not a campaign state file ({exc}); use another --out") from None
    if state.get("preset") != preset:
        raise RunnerUsageError(f"{out} holds a campaign of preset {state.get('preset')!r}, not {preset!r}; "
                               "use another --out")
    return state


def _save(out: Path, state: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    record.write_json(out / STATE_FILE, state)


def _request_for(name: str, preset: str, out: Path, previous: dict[str, Any] | None, options: dict[str, Any]) -> Any:
    """A fresh run, or the runner's resume when this reproduction was interrupted in an earlier invocation."""
    from reproductions.run_request import RunRequest

    request = RunRequest(name=name, preset=preset, out=out, **options)
    if previous and previous.get("status") in ("running", "interrupted"):
        unfinished = record.latest_unfinished(out, name)
        if unfinished is not None:
            request.resume_from = unfinished
    return request


# ---------------------------------------------------------------- the table

def table_row(entry: Entry, item: dict[str, Any]) -> dict[str, Any]:
    rec: dict[str, Any] = {}
    run_dir = item.get("run_dir")
    if run_dir and (Path(run_dir) / record.RUN_FILE).is_file():
        rec = record.read_json(Path(run_dir) / record.RUN_FILE)
    metric, paper, ours = headline_of(entry.card, rec.get("metrics") or {})
    device = rec.get("device") or {}
    return {"reproduction": entry.card.name, "status": item.get("status", "not run"), "metric": metric,
            "paper": paper, "ours": ours, "wall_s": rec.get("duration_s"),
            "device": device.get("name") if device.get("type") == "cuda" else device.get("type"),
            "run_dir": run_dir}


def _num(value: float | None) -> str:
    return "—" if value is None else f"{value:.4g}"


def table_lines(rows: list[dict[str, Any]]) -> list[str]:
    header = ("reproduction", "status", "headline metric", "paper", "ours", "wall", "device")
    cells = [header] + [(r["reproduction"], r["status"], r["metric"] or "—", _num(r["paper"]), _num(r["ours"]),
                         "—" if r["wall_s"] is None else f"{r['wall_s'] / 60:.1f} min", r["device"] or "—")
                        for r in rows]
    widths = [max(len(str(c[i])) for c in cells) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines


# ---------------------------------------------------------------- the campaign

def run_campaign(*, preset: str | None = None, out: Path = Path("results"), only: list[str] | None = None,
                 force: bool = False, budget_min: float = DEFAULT_BUDGET_MIN, data_dir: Path | None = None,
                 device: str = "auto", progress: bool = True, entries: dict[str, Entry] | None = None,
                 echo: Echo | None = None) -> CampaignResult:
    """Plan, check, run what is left, and return the table rows (see the module docstring)."""
    from reproductions.runner import run

    echo = echo or (lambda line: print(line, file=sys.stderr))
    out = Path(out)
    if preset is None:  # as for one run: gpu when CUDA is there, else cpu
        import torch

        preset = "gpu" if torch.cuda.is_available() else "cpu"
    entries = discover() if entries is None else entries
    chosen = select(entries, preset, only)
    state = read_state(out, preset)
    budget_s = budget_min * 60
    plan = make_plan(chosen, preset, state)
    for line in plan_lines(plan, preset, budget_s):
        echo(line)
    check_plan(plan, preset, budget_s, force)
    items = state["reproductions"]
    status = "completed"
    options = {"device": device, "data_dir": data_dir, "progress": progress}
    for entry in chosen:
        name = entry.card.name
        if items.get(name, {}).get("status") == record.FINISHED:
            continue
        request = _request_for(name, preset, out, items.get(name), options)
        items[name] = {"status": "running", "run_dir": str(request.resume_from) if request.resume_from else None}
        _save(out, state)  # a kill from here on leaves "running": the next invocation resumes
        result = run(request, entries=entries, echo=echo)
        items[name] = {"status": result.status, "run_dir": str(result.run_dir),
                       "duration_s": result.record.get("duration_s")}
        _save(out, state)
        if result.status == "interrupted":
            status = "interrupted"
            break
        if result.status != record.FINISHED:
            status = "failed"  # the others still run; this one starts afresh next time
    rows = [table_row(e, items.get(e.card.name, {})) for e in chosen]
    state["table"] = rows
    _save(out, state)
    return CampaignResult(rows, status, out / STATE_FILE)
