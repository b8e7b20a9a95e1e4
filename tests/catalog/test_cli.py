"""The `digest` CLI: commands, JSON output, exit codes, one-line errors, docs coverage."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from support.helpers import REPO, message, telegram_export, write_json


def all_commands() -> list[str]:
    """Every command path of the app, e.g. ["ingest", "search", "arxiv sync", ...]."""
    import typer

    from catalog.cli import app

    def walk(group, prefix=""):
        out = []
        for name, cmd in getattr(group, "commands", {}).items():
            path = f"{prefix}{name}"
            sub = walk(cmd, path + " ")
            out += sub if sub else [path]
            if sub and getattr(cmd, "invoke_without_command", False):
                out.append(path)
        return out

    return walk(typer.main.get_command(app))


def test_demo_then_search_each_language(cli):
    result = cli("demo", "--no-site")
    assert result.exit_code == 0, result.output
    assert "ingested 29 posts" in result.output
    for query, lang in (("трансформеров", "ru"), ("schedule", "en"), ("自注意力", "zh")):
        result = cli("search", query, "--json")
        assert result.exit_code == 0, result.output
        hits = json.loads(result.stdout)
        assert hits and lang in {h["language"] for h in hits}
        assert {"id", "source", "url", "published_at", "snippet", "tags", "arxiv_ids"} <= set(hits[0])


def test_ingest_summary_text_and_json(cli, sample_files):
    result = cli("ingest", *map(str, sample_files))
    assert result.exit_code == 0
    assert "29 new, 0 updated, 0 unchanged" in result.output
    result = cli("ingest", "--json", *map(str, sample_files))
    data = json.loads(result.stdout)
    assert data["posts_unchanged"] == 29 and data["posts_new"] == 0 and data["sources"] == 3
    assert data["arxiv_ids"] >= 5 and data["tags"] > 10


def test_show_tags_sources(cli, sample_files):
    cli("ingest", *map(str, sample_files))
    hit = json.loads(cli("search", "NVAE", "--lang", "en", "--json").stdout)[0]
    post = json.loads(cli("show", str(hit["id"]), "--json").stdout)
    assert {"id", "source", "url", "published_at", "text", "raw", "tags", "arxiv_ids", "links"} <= set(post)
    assert "2007.03898" in post["arxiv_ids"]
    assert json.loads(post["raw"])["id"] == int(post["external_id"])  # raw is the message as read
    assert "NVAE" in cli("show", str(hit["id"])).output
    tags = json.loads(cli("tags", "--json").stdout)
    assert {"tag": "nlp", "posts": 6, "origins": ["hashtag"]} in tags
    sources = json.loads(cli("sources", "--json").stdout)
    assert sorted(s["posts"] for s in sources) == [8, 10, 11]
    assert "Paper Notes" in cli("sources").output


def test_search_table_escapes_markup(cli, tmp_path):
    write_json(tmp_path / "r.json", telegram_export([message(1, "[bold red]not markup[/bold red] payload")]))
    cli("ingest", str(tmp_path / "r.json"))
    result = cli("search", "payload")
    assert result.exit_code == 0
    assert "[bold red]" in result.output


@pytest.mark.parametrize("args, code, pattern", [
    (["search", "x"], 1, r"no catalog at .*digest ingest"),
    (["show", "1"], 1, r"no catalog at"),
    (["ingest", "/definitely/not/here"], 1, r"no such file or folder"),
    (["ingest", "--format", "nope", "{sample}"], 1, r"unknown format 'nope' \(known: .*telegram-json"),
    (["search", "x", "--since", "2020-99-01", "--db-exists"], 2, r"bad date"),
    (["search", "x", "--limit", "0", "--db-exists"], 2, r"--limit"),
    (["show", "12345", "--db-exists"], 1, r"no post with id 12345"),
    (["nonsense-command"], 2, r"No such command"),
])
def test_exit_codes_and_one_line_errors(cli, sample_files, args, code, pattern):
    if "--db-exists" in args:
        args = [a for a in args if a != "--db-exists"]
        cli("ingest", str(sample_files[0]))
    args = [str(sample_files[0]) if a == "{sample}" else a for a in args]
    result = cli(*args)
    assert result.exit_code == code, result.output
    assert re.search(pattern, result.output), result.output
    assert "Traceback" not in result.output
    if code == 1:
        assert len(result.stderr.strip().splitlines()) == 1
        assert result.stderr.startswith("digest: error: ")


def test_bad_file_via_cli_keeps_catalog(cli, sample_files, tmp_path):
    cli("ingest", *map(str, sample_files))
    bad = tmp_path / "bad.json"
    bad.write_text('{"name": "x", "messages": [{"id": 1, "type": "message", "text": ', encoding="utf-8")
    result = cli("ingest", str(bad), "--format", "telegram-json")
    assert result.exit_code == 1
    assert "bad.json" in result.stderr and "invalid JSON" in result.stderr
    assert len(json.loads(cli("sources", "--json").stdout)) == 3


def test_console_script_entry_point_errors_are_one_line(tmp_path):
    """The real process: no traceback, one line on stderr, exit 1; --debug shows the traceback."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "catalog.cli", "--db", str(tmp_path / "none.db"), "search", "x"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    proc = subprocess.run(cmd[:3] + ["--debug"] + cmd[3:], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert proc.returncode == 1 and "Traceback" in proc.stderr


def test_db_from_environment(tmp_path, sample_files, monkeypatch):
    from typer.testing import CliRunner

    from catalog.cli import app

    db = tmp_path / "env.db"
    monkeypatch.setenv("DIGEST_DB", str(db))
    result = CliRunner().invoke(app, ["ingest", str(sample_files[0])])
    assert result.exit_code == 0 and db.exists()


def test_every_command_is_in_the_reference_and_help(cli):
    reference = (REPO / "docs" / "cli.md").read_text(encoding="utf-8")
    commands = all_commands()
    assert {"ingest", "search", "show", "tags", "sources", "demo"} <= set(commands)
    top_help = cli("--help").output
    for command in commands:
        assert f"## `digest {command}`" in reference, f"`digest {command}` is not in docs/cli.md"
        assert command.split()[0] in top_help
        result = cli(*command.split(), "--help")
        assert result.exit_code == 0 and "Usage" in result.output, command
