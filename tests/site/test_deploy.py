"""`digest site deploy` (issue 31): mirrored into a served folder atomically, committed to a gh-pages
branch of a local bare repository (with .nojekyll), its bad inputs; and the example workflow and
crontab, whose `digest` commands must exist in the CLI. Real subprocesses of the installed
`digest` script and of git; SQLite (the engine does not touch what is tested here).
"""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml

from catalog.db import open_db
from catalog.demo import sample_corpus
from catalog.ingest import ingest_paths, ingest_records
from catalog.sitegen.build import build_site
from test_publish import REPO, digest, new_posts, one_line_error, tree

# ------------------------------------------------------------------ deploy

@pytest.fixture(scope="module")
def built_out(tmp_path_factory):
    folder = tmp_path_factory.mktemp("deploy")
    engine = open_db(folder / "deploy.db")
    ingest_paths(engine, sample_corpus())
    build_site(engine, folder / "out", run_roots=[])
    return {"folder": folder, "engine": engine, "out": folder / "out"}


def test_deploy_to_a_served_folder_mirrors_the_site_atomically(built_out, tmp_path):
    out, served = built_out["out"], tmp_path / "www" / "digest"
    proc = digest("site", "deploy", "--out", str(out), "--to", str(served), "--json")
    assert proc.returncode == 0, proc.stderr
    assert served.is_symlink() and tree(served) == tree(out / "site")
    kept = served / "about" / "index.html"
    inode = kept.stat().st_ino
    (served / "gone").mkdir()  # a file the next build does not have
    (served / "gone" / "index.html").write_text("stale")
    ingest_records(built_out["engine"], new_posts(3))
    build_site(built_out["engine"], out, run_roots=[])
    gone = set(tree(served)) - set(tree(out / "site"))  # the stale file, and search fragments of the old index
    assert "gone/index.html" in gone
    proc = digest("site", "deploy", "--out", str(out), "--to", str(served))
    assert proc.returncode == 0, proc.stderr
    assert f"{len(gone)} removed" in proc.stdout and tree(served) == tree(out / "site")
    assert not (served / "gone").exists() and "Kill test post 2" in (served / "posts" / "index.html").read_text()
    assert kept.stat().st_ino == inode  # an unchanged file is the served one, linked
    # the served copy and the standby the next deploy brings up to date, each marked complete
    assert sorted(p.name for p in (tmp_path / "www" / ".digest.generations").iterdir()) == [
        "g000001", "g000001.json", "g000002", "g000002.json"]
    # a third deploy brings the standby (the first copy) up to date and serves it
    ingest_records(built_out["engine"], new_posts(2, start=3))
    build_site(built_out["engine"], out, run_roots=[])
    proc = digest("site", "deploy", "--out", str(out), "--to", str(served))
    assert proc.returncode == 0, proc.stderr
    assert tree(served) == tree(out / "site") and os.readlink(served).endswith("g000003")
    assert kept.stat().st_ino == inode


def test_deploy_bad_inputs_are_one_line_errors(built_out, tmp_path):
    out = str(built_out["out"])
    one_line_error(digest("site", "deploy", "--out", out), "--gh-pages", "--to")
    one_line_error(digest("site", "deploy", "--out", out, "--gh-pages", "--to", str(tmp_path / "x")), "one of them")
    one_line_error(digest("site", "deploy", "--out", str(tmp_path / "nothing"), "--to", str(tmp_path / "x")),
                   "no built site")
    precious = tmp_path / "home"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    one_line_error(digest("site", "deploy", "--out", out, "--to", str(precious)), "not a site")
    assert (precious / "notes.txt").read_text() == "keep me"
    one_line_error(digest("site", "deploy", "--out", out, "--gh-pages", cwd=tmp_path), "not in a git repository")


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def test_deploy_to_a_gh_pages_branch_of_a_local_bare_repository(built_out, tmp_path):
    bare, work = tmp_path / "remote.git", tmp_path / "work"
    git("init", "--bare", "-q", str(bare), cwd=tmp_path)
    git("clone", "-q", str(bare), str(work), cwd=tmp_path)
    (work / "README").write_text("the project\n")
    git("add", "README", cwd=work)
    git("-c", "user.name=t", "-c", "user.email=t@localhost", "commit", "-qm", "start", cwd=work)
    git("push", "-q", "origin", "HEAD", cwd=work)
    out, site = built_out["out"], built_out["out"] / "site"
    one_line_error(digest("site", "deploy", "--out", str(out), "--gh-pages", "--remote", "nowhere", cwd=work), "nowhere")
    for _ in range(2):
        proc = digest("site", "deploy", "--out", str(out), "--gh-pages", cwd=work)
        assert proc.returncode == 0, proc.stderr
    files = set(git("ls-tree", "-r", "--name-only", "gh-pages", cwd=bare).split())
    assert files == set(tree(site)) | {".nojekyll"}
    assert git("show", "gh-pages:index.html", cwd=bare).encode() == (site / "index.html").read_bytes()
    assert git("rev-list", "--count", "gh-pages", cwd=bare).strip() == "2"  # the second deploy follows the first
    # another branch name
    proc = digest("site", "deploy", "--out", str(out), "--gh-pages", "--branch", "pages", "--remote", "origin", cwd=work)
    assert proc.returncode == 0 and ".nojekyll" in git("ls-tree", "--name-only", "pages", cwd=bare).split()


# ------------------------------------------------------------------ the example workflow

def cli_tree():
    import typer.main

    from catalog.cli import app

    return typer.main.get_command(app)


def check_digest_command(line: str) -> None:
    """Every `digest` command of `line` names commands and options the CLI has."""
    lex = shlex.shlex(line.replace("$", ""), posix=True, punctuation_chars=True)
    lex.whitespace_split = True
    words = list(lex)
    assert "digest" in words, line

    def options(cmd) -> set[str]:
        return {opt for p in cmd.params for opt in [*getattr(p, "opts", []), *getattr(p, "secondary_opts", [])]}

    for start in [i for i, w in enumerate(words) if w == "digest"]:
        command, args = cli_tree(), words[start + 1:]
        ctx_params = options(command)
        i = 0
        while i < len(args) and args[i] not in ("&&", ";", "||", "|", "}", "digest"):
            word = args[i]
            if word.startswith("-"):
                assert word.split("=")[0] in ctx_params, f"{word} is no option of {command.name}: {line}"
                param = next(p for p in command.params
                             if word.split("=")[0] in [*p.opts, *getattr(p, "secondary_opts", [])])
                i += 1 if (getattr(param, "is_flag", False) or "=" in word) else 2
                continue
            if hasattr(command, "commands"):  # a group (Typer's own click: no isinstance)
                assert word in command.commands, f"{word} is no command of digest: {line}"
                command = command.commands[word]
                ctx_params = options(command)
            i += 1


def test_the_example_workflow_runs_hourly_and_its_commands_exist():
    flow = yaml.safe_load((REPO / "examples" / "publish-site.yml").read_text(encoding="utf-8"))
    triggers = flow[True] if True in flow else flow["on"]  # YAML 1.1 reads the key `on` as true
    minute, *rest = triggers["schedule"][0]["cron"].split()
    assert minute.isdigit() and rest == ["*", "*", "*", "*"]  # hourly
    steps = flow["jobs"]["publish"]["steps"]
    runs = [s["run"] for s in steps if "run" in s]
    lines = [ln for run in runs for ln in run.splitlines() if "digest " in ln]
    assert any("sync" in ln and "--site-url" in ln for ln in lines) and any("deploy" in ln for ln in lines)
    for line in lines:
        check_digest_command(line)
    uses = [s.get("uses", "") for s in steps]
    # the catalog is restored before the sync and saved after it
    restore = next(i for i, u in enumerate(uses) if u.startswith("actions/cache/restore"))
    save = next(i for i, u in enumerate(uses) if u.startswith("actions/cache/save"))
    sync = next(i for i, s in enumerate(steps) if "sync" in s.get("run", ""))
    assert restore < sync < save and steps[restore]["with"]["path"] == steps[save]["with"]["path"] == "data"
    assert flow["env"]["DIGEST_DB"].startswith("data/")
    cron = [ln for ln in (REPO / "examples" / "crontab").read_text().splitlines() if ln and not ln.startswith("#")]
    assert len(cron) == 1 and cron[0].split()[1:5] == ["*", "*", "*", "*"]
    check_digest_command(" ".join(cron[0].split()[5:]))


def test_the_command_check_catches_a_wrong_command():
    with pytest.raises(AssertionError):
        check_digest_command("digest site publish --out build")
    with pytest.raises(AssertionError):
        check_digest_command("digest sync --site build --site-address x")
