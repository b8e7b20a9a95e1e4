"""The README's reproductions table is written from the committed run records, never by hand."""

from __future__ import annotations

import json

import pytest

from support.helpers import REPO


def test_readme_table_is_the_one_the_committed_runs_give():
    from catalog.glance import END, START, glance_table

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split(START, 1)[1].split(END, 1)[0].strip()
    assert section == glance_table(REPO / "results"), \
        "README's table differs from results/: run `python -m catalog.glance --write README.md`"


def _run(folder, name, stamp, *, preset="cpu", status="completed", command=(), nll=None):
    from reproductions.claims import analyse_into
    from reproductions.nvae import CARD

    run_dir = folder / name / stamp
    run_dir.mkdir(parents=True)
    record = {"name": name, "preset": preset, "status": status, "command": list(command), "seeds": [0],
              "duration_s": 600, "metrics": {"nll_nats": nll}, "metrics_std": {}}
    analyse_into(record, CARD.claims)
    (run_dir / "run.json").write_text(json.dumps(record), encoding="utf-8")
    return run_dir


def test_the_preset_as_it_stands_wins_over_a_newer_side_experiment(tmp_path):
    from catalog.glance import latest_run

    _run(tmp_path, "nvae", "20260101T000000Z", nll=99.0)
    _run(tmp_path, "nvae", "20260102T000000Z", nll=95.0, command=["run", "nvae", "--set", "steps=10"])
    _run(tmp_path, "nvae", "20260103T000000Z", nll=90.0, status="failed")
    _run(tmp_path, "nvae", "20260104T000000Z", nll=80.0, preset="smoke")
    run_dir, record = latest_run(tmp_path, "nvae", "cpu")
    assert run_dir.name == "20260101T000000Z" and record["metrics"]["nll_nats"] == 99.0
    assert latest_run(tmp_path, "nvae", "gpu") is None


def test_a_row_puts_our_number_beside_the_papers_with_the_verdict(tmp_path):
    from catalog.glance import glance_rows

    _run(tmp_path, "nvae", "20260101T000000Z", nll=96.25)
    row = next(r for r in glance_rows(tmp_path) if r.startswith("| `nvae`"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[0].startswith("`nvae` (2007.03898)") and "`" + tmp_path.name in cells[0]
    # 96.25 nats is beyond the paper's 78.01 +- 2 on the worse (higher) side
    assert cells[1:] == ["NVAE test NLL", "78.01 ± 2.00 nats (main results table)", "96.2 nats, 1 seed",
                         "**contradicted**"]
    _run(tmp_path, "nvae", "20260102T000000Z", nll=79.0)
    row = next(r for r in glance_rows(tmp_path) if r.startswith("| `nvae`"))
    assert row.endswith("| 79.0 nats, 1 seed | **reproduced** |")
    missing = next(r for r in glance_rows(tmp_path) if r.startswith("| `weissi`"))
    assert "no `cpu` run committed" in missing


def test_write_needs_the_markers(tmp_path):
    from catalog.glance import main

    readme = tmp_path / "README.md"
    readme.write_text("# no table here\n", encoding="utf-8")
    assert main(["--results", str(tmp_path), "--write", str(readme)]) == 1
    assert readme.read_text(encoding="utf-8") == "# no table here\n"
    readme.write_text("a\n<!-- glance:start -->\nold\n<!-- glance:end -->\nb\n", encoding="utf-8")
    assert main(["--results", str(tmp_path), "--write", str(readme)]) == 0
    text = readme.read_text(encoding="utf-8")
    assert text.startswith("a\n<!-- glance:start -->\n| reproduction | claim") and text.endswith("<!-- glance:end -->\nb\n")
    assert "old" not in text


@pytest.mark.parametrize("bad", ["", "<!-- glance:start --> no end"])
def test_replace_section_refuses_text_without_both_markers(bad):
    from catalog.glance import glance_table, replace_section

    with pytest.raises(ValueError):
        replace_section(bad, glance_table.__name__)
