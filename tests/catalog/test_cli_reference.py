"""docs/cli.md is generated from the Typer app, never by hand: it must match the commands."""

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RUN = [sys.executable, "-m", "catalog.cli.reference"]


def test_reference_matches_the_app():
    from catalog.cli.reference import render

    text = (REPO / "docs" / "cli.md").read_text(encoding="utf-8")
    assert text == render(), "docs/cli.md differs from the app: run `python -m catalog.cli.reference --write docs/cli.md`"


def _section(text: str, command: str) -> str:
    return text.split(f"## `digest {command}`\n", 1)[1].split("\n## ", 1)[0]


def test_reference_shows_what_help_shows(tmp_path):
    """The oracle is the installed `digest` script's own --help, in its own process."""
    from catalog.cli.reference import render

    text = render()
    for command in ("search", "papers", "site build"):
        help_text = subprocess.run([str(Path(sys.executable).parent / "digest"), *command.split(), "--help"],
                                   capture_output=True, text=True, check=True, env={"COLUMNS": "200", "PATH": ""}).stdout
        section = _section(text, command)
        usage = re.search(r"Usage: (digest [^\n]*?)\s*$", help_text, re.M).group(1)
        assert f"```text\n{usage}\n```" in section, command
        first_cells = " ".join(re.findall(r"^\| `([^`]*)` \|", section, re.M))
        for option in set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", help_text)) - {"--help"}:
            assert re.search(rf"(?<![\w-]){option}(?![\w-])", first_cells), (command, option)
    assert "| `query <str>` |" in _section(text, "search")
    assert "env var: DIGEST_DB" in text.split("## `digest arxiv`")[0]


def test_reference_script_writes_and_checks(tmp_path):
    out = tmp_path / "cli.md"
    subprocess.run(RUN + ["--write", str(out)], check=True, cwd=REPO)
    assert out.read_text(encoding="utf-8") == (REPO / "docs" / "cli.md").read_text(encoding="utf-8")
    assert subprocess.run(RUN + ["--check", str(out)], cwd=REPO).returncode == 0
    out.write_text(out.read_text(encoding="utf-8").replace("## `digest search`", "## `digest find`"), encoding="utf-8")
    stale = subprocess.run(RUN + ["--check", str(out)], cwd=REPO, capture_output=True, text=True)
    assert stale.returncode == 1 and "out of date" in stale.stderr and stale.stderr.count("\n") == 1
