"""Every command the way a user starts it: the installed `digest` script and `python -m
reproductions`, each invocation in a process of its own.

Inside one pytest process a module imported by an earlier test can hide an import cycle
that crashes the same command in a fresh interpreter (`digest paper --bibtex` once did).
So nothing here imports the code under test: the command matrix runs the installed
console script on a demo catalog (SQLite always, PostgreSQL too), and the import test
imports each module of the three packages in a process that has loaded none of them.

A command that exists but has no row in the matrix fails `test_every_command_is_in_the_matrix`:
a new command gets its rows when it is added.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from support.helpers import REPO

BIN = Path(sys.executable).parent
DIGEST = BIN / "digest"
PAPER = "2004.13342"  # cited by the bundled sample corpus
SAMPLE = REPO / "catalog" / "sample" / "paper_notes_en.json"
COMMITTED_RUN = next((REPO / "results" / "self-attention").glob("2*"), None)
WORKERS = 4  # processes at once: start-up is mostly waiting on imports, two cores keep four busy


@dataclass(frozen=True)
class Case:
    args: tuple[str, ...]
    ok: bool = True  # False: deliberately bad input, a one-line error and exit 1 or 2
    ok_on_postgresql: bool | None = None  # where the server differs (None: as `ok`)

    def on(self, db: str) -> Case:
        if self.ok_on_postgresql is None or not db.startswith("postgresql"):
            return self
        return Case(self.args, self.ok_on_postgresql)


def case(*args: str, ok: bool = True, ok_on_postgresql: bool | None = None) -> Case:
    return Case(tuple(args), ok, ok_on_postgresql)


# Commands that only read the catalog: run side by side.
READS = [
    case("search", "регуляризация"), case("search", "attention", "--json"),
    case("search", "модель", "--tag", "nlp", "--lang", "ru", "--since", "2020-01-01", "--limit", "3"),
    case("search", "attention", "--has-reproduction", "--all"), case("search", "attention", "--no-reproduction"),
    case("search", "attention", "--since", "notadate", ok=False),
    case("show", "1"), case("show", "1", "--json"), case("show", "999999", ok=False),
    case("tags"), case("tags", "--json"),
    case("paper", PAPER), case("paper", PAPER, "--json"), case("paper", PAPER, "--bibtex"),
    case("paper", "9999.99999", ok=False),
    case("papers"), case("papers", "--json"), case("papers", "--bibtex"), case("papers", "--top"),
    case("papers", "--top", "--by", "posts", "--limit", "3", "--json"), case("papers", "--status", "ok"),
    case("related", "1"), case("related", "1", "--json"), case("related", PAPER, "--papers"),
    case("related", "999999", ok=False),
    case("feed"), case("feed", "--rss"), case("feed", "--tag", "nlp"), case("feed", "--paper", PAPER),
    case("feed", "--source", "channel1000000001", "--site-url", "https://example.org/digest/"),
    case("feed", "--tag", "nosuchtag", ok=False),
    case("runs"), case("runs", "--json"), case("runs", "self-attention"),
    case("run", "--list"), case("run", "--list", "--json"), case("run", "nosuch", ok=False),
    case("following"), case("following", "--json"),
    case("sources"), case("sources", "--json"), case("sources", "merge", "1", "2", "--dry-run"),
    case("arxiv", "sync", "--offline"), case("arxiv", "sync", "--offline", "--json"),
    case("ingest", "--formats"), case("ingest", "/nonexistent/export.json", ok=False),
]

# Commands that write, in chains: a chain runs in order ({tmp} is a fresh folder), the chains
# side by side (on SQLite its writers take turns on the file's lock).
WRITE_CHAINS = [
    [case("ingest", str(SAMPLE)), case("ingest", str(SAMPLE), "--json")],
    [case("import-runs", str(COMMITTED_RUN)), case("import-runs", str(COMMITTED_RUN), "--json")],
    [case("follow", "@digest_sample_channel"), case("follow", "@another_sample_channel", "--json"),
     case("follow", "http://169.254.169.254/latest", ok=False),
     case("unfollow", "@digest_sample_channel"), case("unfollow", "@another_sample_channel"),
     case("sync", "--no-arxiv", ok=False)],  # nothing followed any more
    [case("sources", "alias", "3", "@digest_sample_zh"), case("sources", "alias", "2", "@digest_sample_en", "--json"),
     case("sources", "alias", "1", "@digest_sample_zh", ok=False)],  # taken by source 3
    [case("related", "1", "--rebuild"),
     case("arxiv", "add", PAPER, "--api-url", "http://127.0.0.1:9/")],  # already known: no request made
    [case("db", "copy", "{db}", "sqlite:///{tmp}/copy.db"), case("db", "copy", "{db}", "{tmp}/copy.db", ok=False),
     case("db", "check"), case("db", "check", "--json"), case("db", "check", "--full"),
     case("db", "backup", "{tmp}/backup.db", ok_on_postgresql=False),  # PostgreSQL: pg_dump or db copy
     case("db", "backup", "{tmp}/copy.db", ok=False)],  # never overwrites a file
    [case("site", "build", "--out", "{tmp}/build"), case("site", "build", "--out", "{tmp}/build", "--json"),
     case("site", "build", "--out", "{tmp}/build", "--site-url", "https://example.org/digest/"),
     case("site", "build", "--out", "{tmp}/build", "--site-url", "example.org", ok=False),
     case("site", "deploy", "--out", "{tmp}/build", "--to", "{tmp}/www"),
     case("site", "deploy", "--out", "{tmp}/nothing-built", "--to", "{tmp}/www2", ok=False)],
    [case("run", "self-attention", "--preset", "smoke", "--set", "steps=20", "--out", "{tmp}/runs", "--no-progress"),
     case("runs", "analyse", "{tmp}/analyse-me"), case("runs", "analyse", "{tmp}/analyse-me", "--json"),
     case("runs", "analyse", "{tmp}/no-such-run", ok=False)],
    [case("demo", "--offline", "--no-site")],
]
WRITES = [c for chain in WRITE_CHAINS for c in chain]

# `digest site serve` runs until stopped: it must answer HTTP (tested on its own below).
LONG_RUNNING = {("site", "serve")}

REPRODUCTIONS = [
    case("list"),
    case("run", "self-attention", "--preset", "smoke", "--set", "steps=20", "--out", "{tmp}/rruns", "--no-progress"),
    case("run", "nosuch", "--preset", "smoke", ok=False),
    case("campaign", "--preset", "smoke", "--only", "nosuch", "--out", "{tmp}/camp", ok=False),
    case("analyse", "{tmp}/analyse-me"), case("analyse", "{tmp}/no-such-run", ok=False),
]


@dataclass
class Outcome:
    case: Case
    code: int
    out: str
    err: str

    def problem(self) -> str | None:
        shown = " ".join(self.case.args)
        if "Traceback" in self.err or "Traceback" in self.out:
            return f"{shown}: traceback\n{self.err[-2000:]}"
        if self.case.ok:
            if self.code != 0:
                return f"{shown}: exit {self.code}\n{self.err[-2000:]}"
            if not (self.out.strip() or self.err.strip()):
                return f"{shown}: exit 0 but printed nothing"
            return None
        lines = self.err.strip().splitlines()
        if self.code not in (1, 2) or len(lines) != 1:
            return f"{shown}: bad input should give one line and exit 1/2, got exit {self.code}:\n{self.err[-2000:]}"
        return None


def _env(db: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "COV_"))}
    env.update(DIGEST_DB=db, OMP_NUM_THREADS="1", COLUMNS="120", NO_COLOR="1")
    env.pop("DIGEST_ARXIV_API_URL", None)
    return env


def _run(argv: list[str], env: dict[str, str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def _fill(c: Case, db: str, tmp: Path) -> list[str]:
    return [a.replace("{db}", db).replace("{tmp}", str(tmp)) for a in c.args]


def first_per_command(cases: list[Case]) -> list[Case]:
    """The first case of each command (`search`, `sources merge`, …) and every bad input: the
    options that only change the output's form were run on SQLite, and print the same rows."""
    seen: set[tuple[str, ...]] = set()
    kept = []
    for c in cases:
        command = c.args[:2] if c.args[0] in GROUPS else c.args[:1]
        if command not in seen or not c.ok:
            kept.append(c)
            seen.add(command)
    return kept


GROUPS = {"arxiv", "site", "sources", "db"}


def run_matrix(prefix: list[str], cases: list[Case], db: str, tmp: Path, *, parallel: bool) -> list[str]:
    env = _env(db)
    if not (tmp / "analyse-me").exists():  # `analyse` rewrites a run folder in place: give it a copy
        shutil.copytree(COMMITTED_RUN, tmp / "analyse-me", dirs_exist_ok=True)

    def one(c: Case) -> Outcome:
        c = c.on(db)
        proc = _run(prefix + _fill(c, db, tmp), env, tmp)
        return Outcome(c, proc.returncode, proc.stdout, proc.stderr)

    if parallel:
        with ThreadPoolExecutor(WORKERS) as pool:
            outcomes = list(pool.map(one, cases))
    else:
        outcomes = [one(c) for c in cases]
    return [p for p in (o.problem() for o in outcomes) if p]


def walk_help(env: dict[str, str]) -> dict[tuple[str, ...], subprocess.CompletedProcess]:
    """`digest [GROUP…] --help` for every command path, each in its own process, found by
    reading the groups' help pages (a group's page lists its commands)."""
    import re

    pages: dict[tuple[str, ...], subprocess.CompletedProcess] = {}
    level: list[tuple[str, ...]] = [()]
    with ThreadPoolExecutor(WORKERS) as pool:
        while level:
            done = list(pool.map(lambda p: (p, _run([str(DIGEST), *p, "--help"], env, REPO, timeout=60)), level))
            pages.update(done)
            level = [(*p, name) for p, proc in done if "Commands" in proc.stdout
                     for name in re.findall(r"^│ ([a-z][a-z-]*) ", proc.stdout.split("Commands", 1)[1], flags=re.M)]
    return pages


@pytest.fixture(scope="module")
def help_pages(tmp_path_factory) -> dict[tuple[str, ...], subprocess.CompletedProcess]:
    return walk_help(_env(str(tmp_path_factory.mktemp("fresh-help") / "none.db")))


def run_chains(prefix: list[str], chains: list[list[Case]], db: str, tmp: Path) -> list[str]:
    """Each chain in order, the chains side by side."""
    with ThreadPoolExecutor(WORKERS) as pool:
        found = pool.map(lambda chain: run_matrix(prefix, chain, db, tmp, parallel=False), chains)
        return [p for problems in found for p in problems]


def leaf_commands(pages: dict[tuple[str, ...], subprocess.CompletedProcess]) -> set[tuple[str, ...]]:
    return {path for path, proc in pages.items() if path and "Commands" not in proc.stdout}


@pytest.fixture(scope="module")
def demo_sqlite(tmp_path_factory) -> tuple[str, Path]:
    tmp = tmp_path_factory.mktemp("fresh-sqlite")
    db = str(tmp / "demo.db")
    proc = _run([str(DIGEST), "demo", "--offline", "--no-site"], _env(db), tmp)
    assert proc.returncode == 0, proc.stderr
    return db, tmp


def test_every_command_is_in_the_matrix(help_pages):
    covered = {c.args[:2] for c in READS + WRITES} | {c.args[:1] for c in READS + WRITES} | LONG_RUNNING
    commands = leaf_commands(help_pages)
    assert len(commands) >= 20, commands  # the --help walk itself works
    missing = sorted(" ".join(p) for p in commands if p not in covered)
    assert not missing, f"commands with no row in the fresh-process matrix: {missing}"


def test_every_command_in_a_fresh_process_sqlite(demo_sqlite):
    db, tmp = demo_sqlite
    problems = run_matrix([str(DIGEST)], READS, db, tmp, parallel=True)
    problems += run_chains([str(DIGEST)], WRITE_CHAINS, db, tmp)
    assert not problems, "\n\n".join(problems)


def test_every_command_in_a_fresh_process_postgresql(pg_url, tmp_path):
    proc = _run([str(DIGEST), "demo", "--offline", "--no-site"], _env(pg_url), tmp_path)
    assert proc.returncode == 0, proc.stderr
    problems = run_matrix([str(DIGEST)], first_per_command(READS), pg_url, tmp_path, parallel=True)
    # `db copy` goes PostgreSQL -> SQLite here. Past the catalog, a training run and a second or
    # third build of the site do the same on both engines: SQLite's matrix has them.
    chains = [[c for n, c in enumerate(chain) if c.args[0] not in ("run", "demo")
               and (c.args[:2] != ("site", "build") or n == 0)] for chain in WRITE_CHAINS]
    problems += run_chains([str(DIGEST)], [chain for chain in chains if chain], pg_url, tmp_path)
    assert not problems, "\n\n".join(problems)


def test_every_help_page_in_a_fresh_process(help_pages, tmp_path):
    problems = [Outcome(Case((*path, "--help")), p.returncode, p.stdout, p.stderr).problem()
                for path, p in sorted(help_pages.items())]
    sub = [case(s, "--help") for s in ("list", "run", "campaign", "analyse")] + [case("--help")]
    problems += run_matrix([sys.executable, "-m", "reproductions"], sub, str(tmp_path / "none.db"), tmp_path,
                           parallel=True)
    assert not [p for p in problems if p], "\n\n".join(p for p in problems if p)
    assert ("site", "build") in help_pages and ("arxiv", "sync") in help_pages  # the walk reached the groups


def test_reproductions_subcommands_in_a_fresh_process(tmp_path):
    problems = run_matrix([sys.executable, "-m", "reproductions"], REPRODUCTIONS, str(tmp_path / "none.db"), tmp_path,
                          parallel=True)
    assert not problems, "\n\n".join(problems)
    assert list((tmp_path / "rruns").glob("self-attention/*/run.json"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_site_serve_answers_in_a_fresh_process(demo_sqlite, tmp_path):
    db, _ = demo_sqlite
    port = _free_port()
    proc = subprocess.Popen([str(DIGEST), "site", "serve", "--out", str(tmp_path / "build"), "--port", str(port)],
                            env=_env(db), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 180
        page = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as reply:
                    page = reply.read().decode("utf-8")
                break
            except OSError:
                time.sleep(0.5)
        assert proc.poll() is None, proc.stdout.read()
        assert page and "<html" in page.lower()
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _modules() -> list[str]:
    names = []
    for package in ("catalog", "scrapers", "reproductions"):
        for path in sorted((REPO / package).rglob("*.py")):
            parts = path.relative_to(REPO).with_suffix("").parts
            if "__pycache__" in parts or parts[-1] == "__main__":
                continue
            names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


# Forks one child per module from a parent that has loaded only third-party libraries, so
# each child starts with none of our modules imported (what an import cycle needs to show)
# without paying torch's and SQLAlchemy's import time a hundred times.
_FORK_IMPORTER = r"""
import json, os, sys, traceback
import numpy, sqlalchemy, sqlalchemy.orm, typer, jinja2, bs4, rich, matplotlib, torch  # third-party only
assert not [m for m in sys.modules if m.split(".")[0] in ("catalog", "scrapers", "reproductions")]
failures = {}
for name in json.loads(sys.argv[1]):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            __import__(name)
            code = 0
        except BaseException:
            os.write(w, traceback.format_exc().encode())
            code = 1
        os._exit(code)
    os.close(w)
    with os.fdopen(r, "rb") as pipe:
        message = pipe.read().decode()
    _, status = os.waitpid(pid, 0)
    if status != 0:
        failures[name] = message or f"exit status {status}"
print(json.dumps(failures))
"""


def test_every_module_imports_in_a_fresh_interpreter():
    import json

    names = _modules()
    assert "catalog.bibtex" in names and "reproductions.runner" in names and len(names) > 80
    env = _env("unused.db") | {"MPLBACKEND": "Agg"}
    proc = _run([sys.executable, "-c", _FORK_IMPORTER, json.dumps(names)], env, REPO, timeout=300)
    assert proc.returncode == 0, proc.stderr
    failures = json.loads(proc.stdout.strip().splitlines()[-1])
    assert not failures, "\n\n".join(f"{k}:\n{v}" for k, v in failures.items())
