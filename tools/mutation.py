"""Mutation run over the catalog's core (issue 35): mutmut, module by module, score and survivors.

Not part of CI. Install mutmut first (`.venv/bin/pip install -e '.[mutation]'`), then e.g.

    nice -n 15 .venv/bin/python tools/mutation.py                      # every core module
    nice -n 15 .venv/bin/python tools/mutation.py sources search      # some of them
    nice -n 15 .venv/bin/python tools/mutation.py sources --before 'tests/*/test_blind_spots_*'

Each module runs in its own scratch copy of the working tree (`--work`, default
/tmp/digest-mutation), with `[tool.mutmut]` of pyproject.toml narrowed to that module,
the functions that hold its rules (`MODULES`) and the tests that exercise them; mutmut
maps every function to the tests that call it and runs only those per mutant, `--jobs`
at a time. Tests run on SQLite, except for search_pg (PostgreSQL: one server is started
for the whole run and passed as DIGEST_TEST_PG_URL, so no forked test session starts its
own cluster).

`--before GLOB` first runs without the test files GLOB matches (the score "before"),
then again with them over the survivors only (a test added cannot revive a killed
mutant): the score "after". Printed: a table per module, then every survivor with the
line it changes. Score = killed (a timeout counts as killed) / mutants checked; a
mutant no selected test reaches counts as a survivor.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SQLITE_ONLY = "not postgresql"


@dataclass
class Module:
    file: str
    functions: list[str]  # mutmut mutant name globs (function names as mutmut spells them)
    tests: list[str]
    select: str = SQLITE_ONLY  # pytest -k
    postgres: bool = False


BLIND = "tests/catalog/test_blind_spots_catalog.py"
BLIND_SITE = "tests/site/test_blind_spots_site.py"
BLIND_MERGE = "tests/catalog/test_blind_spots_merge.py"
MODULES: dict[str, Module] = {
    # merge rules: which sources are one channel, how two records fold; the routes of a source; copies
    "sources": Module("catalog/source_merge.py", [
        "x_same_text_sources", "x_same_channel_candidates", "x_adopt_route", "x_merge_same_channels",
        "x__keep_first", "x_merge_sources", "x__fold", "x__union_children"], ["tests/catalog/test_sources.py", BLIND, BLIND_MERGE]),
    "source_identity": Module("catalog/source_identity.py", ["x_find_source_id", "x_resolve_or_create"],
                              ["tests/catalog/test_sources.py", BLIND]),
    "source_copies": Module("catalog/source_copies.py", ["x_link_copies"], ["tests/catalog/test_sources.py", BLIND]),
    # filters, phrases, aliases (the Filters SQL both engines share)
    "search": Module("catalog/search.py", ["xǁFiltersǁsql", "x_search", "x__fts_ids", "x__substring_ids",
                                           "x__window_floor", "x_parse_date"],
                     ["tests/catalog/test_search.py", "tests/catalog/test_search_tail.py", BLIND]),
    "search_pg": Module("catalog/search_pg.py", ["x__filters", "x__phrase", "x__tsqueries", "x__fts_ids",
                                                 "x__window_floor", "x__like_pattern", "x__substring_ids",
                                                 "x_ranked_ids", "x_hit_rows"],
                        ["tests/catalog/test_search.py", "tests/catalog/test_search_tail.py",
                         "tests/catalog/test_stemming.py", BLIND], "postgresql", True),
    "feeds": Module("catalog/feeds.py", ["*"], ["tests/catalog/test_discovery.py", "tests/catalog/test_feeds.py", BLIND_SITE],
                    SQLITE_ONLY + " and feed and not site_writes"),  # not the whole sample site per mutant
    "related": Module("catalog/related.py", ["x_fresh_rows", "x_merge_neighbours", "x_incremental_update",
                                             "x_update_related", "x_stored_lists", "x__delete_lists"],
                      ["tests/catalog/test_discovery.py", "tests/catalog/test_related_incremental.py", BLIND],
                      SQLITE_ONLY + " and related"),
    # the site writer: incremental writes, stale files, the post order the search shards follow
    "generate": Module("catalog/sitegen/writer.py", ["xǁDocsWriterǁ*", "x_load_digests", "x_save_digests"],
                       ["tests/site/test_site.py", "tests/site/test_incremental.py", "tests/site/test_shards.py",
                        BLIND_SITE],
                       SQLITE_ONLY + " and not browser and (blind_spots or incremental or foreign"
                                     " or never_written or shards_cut)"),
    "follow": Module("catalog/follow.py", ["*"], ["tests/catalog/test_follow.py", "tests/catalog/test_faults_sync.py", BLIND]),
    "ingest_url": Module("catalog/ingest_url.py", ["*"], ["tests/catalog/test_follow.py", "tests/scrapers/test_fetch.py", BLIND]),
    # idempotent re-runs and edits
    "ingest": Module("catalog/ingest_upsert.py", ["*"], ["tests/catalog/test_ingest.py", "tests/catalog/test_ingest_errors.py",
                                                 "tests/catalog/test_ingest_fast_paths.py", "tests/catalog/test_ingest_edits.py",
                                                 "tests/catalog/test_sources.py", BLIND_MERGE]),
}
STATUS = {1: "killed", 3: "killed", 0: "survived", 5: "no tests", 33: "no tests", 34: "skipped", 36: "timeout",
          24: "timeout", -24: "timeout", 152: "timeout", 255: "timeout", None: "not checked"}


@dataclass
class Outcome:
    statuses: dict[str, str] = field(default_factory=dict)  # mutant -> status
    seconds: float = 0.0

    def count(self, *names: str) -> int:
        return sum(s in names for s in self.statuses.values())

    @property
    def checked(self) -> int:
        return len(self.statuses) - self.count("not checked", "skipped")

    @property
    def killed(self) -> int:
        return self.count("killed", "timeout")

    def score(self) -> str:
        return f"{100 * self.killed / self.checked:.1f} %" if self.checked else "-"

    def survivors(self) -> list[str]:
        return sorted(k for k, s in self.statuses.items() if s in ("survived", "no tests", "suspicious"))


def scratch_copy(dest: Path, exclude: list[str]) -> None:
    """The tracked and untracked-but-not-ignored files of the working tree, less `exclude` globs."""
    if dest.exists():
        shutil.rmtree(dest)
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for rel in filter(None, listed):
        if any(fnmatch.fnmatch(rel, g) for g in exclude) or not (REPO / rel).is_file():
            continue
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, dest / rel)


def narrow_config(folder: Path, module: Module, exclude: list[str]) -> None:
    """Rewrite the copy's [tool.mutmut]: this module, its tests (less `exclude`), its -k selection."""
    import tomllib

    text = (folder / "pyproject.toml").read_text(encoding="utf-8")
    base = tomllib.loads(text)["tool"]["mutmut"]
    tests = [t for t in module.tests if not any(fnmatch.fnmatch(t, g) for g in exclude)]
    conf = {**base, "only_mutate": [module.file], "pytest_add_cli_args_test_selection": tests,
            "pytest_add_cli_args": ["-p", "no:cacheprovider", "-k", module.select]}
    lines = ["[tool.mutmut]"] + [f"{k} = {json.dumps(v, ensure_ascii=False)}" for k, v in conf.items()]
    start = text.index("[tool.mutmut]")
    rest = re.search(r"^\[", text[start + 1:], re.M)
    end = start + 1 + rest.start() if rest else len(text)
    (folder / "pyproject.toml").write_text(text[:start] + "\n".join(lines) + "\n\n" + text[end:], encoding="utf-8")


def read_statuses(folder: Path, module: Module) -> dict[str, str]:
    meta = folder / "mutants" / (module.file + ".meta")
    if not meta.exists():
        return {}
    codes = json.loads(meta.read_text(encoding="utf-8"))["exit_code_by_key"]
    return {k: STATUS.get(v, "suspicious") for k, v in codes.items()}


def run_mutmut(folder: Path, names: list[str], jobs: int, limit_s: float, env: dict[str, str]) -> None:
    mutmut = Path(sys.executable).with_name("mutmut")
    cmd = [str(mutmut), "run", "--max-children", str(jobs), *names]
    with open(folder / "mutmut.log", "wb") as log:
        try:
            subprocess.run(cmd, cwd=folder, stdout=log, stderr=subprocess.STDOUT, env=env, timeout=limit_s)
        except subprocess.TimeoutExpired:
            print(f"  (time limit reached: {limit_s:.0f} s; what was not checked is listed as such)", flush=True)


def mutant_globs(module: Module) -> list[str]:
    dotted = module.file.removesuffix(".py").replace("/", ".")
    return [f"{dotted}.{f}__mutmut_*" for f in module.functions]


def run_module(name: str, module: Module, work: Path, *, exclude: list[str], only: list[str] | None, jobs: int,
               limit_s: float, env: dict[str, str]) -> Outcome:
    folder = work / name
    scratch_copy(folder, exclude)
    narrow_config(folder, module, exclude)
    start = time.perf_counter()
    run_mutmut(folder, only if only is not None else mutant_globs(module), jobs, limit_s, env)
    statuses = read_statuses(folder, module)
    wanted = only if only is not None else mutant_globs(module)
    statuses = {k: s for k, s in statuses.items() if any(fnmatch.fnmatch(k, g) for g in wanted)}
    return Outcome(statuses, time.perf_counter() - start)


def refresh_tests(folder: Path) -> None:
    """The working tree's tests/ over the scratch copy's (mutmut copies them into mutants/ as it starts)."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", "tests"],
                            cwd=REPO, capture_output=True, check=True).stdout.decode().split("\0")
    for rel in filter(None, listed):
        if (REPO / rel).is_file():
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, folder / rel)


def run_again(name: str, module: Module, work: Path, *, jobs: int, limit_s: float,
              env: dict[str, str]) -> dict[str, Outcome]:
    """The survivors and the mutants not checked of the last run of `name` (its scratch copy under
    `work`), run again with today's tests: the score before (the last run) and after."""
    folder = work / name
    if not (folder / "mutants").exists():
        raise SystemExit(f"--again: no earlier run of {name} in {folder}")
    wanted = mutant_globs(module)
    before = {k: s for k, s in read_statuses(folder, module).items() if any(fnmatch.fnmatch(k, g) for g in wanted)}
    again = sorted(k for k, s in before.items() if s in ("survived", "no tests", "suspicious", "not checked"))
    refresh_tests(folder)
    narrow_config(folder, module, [])
    start = time.perf_counter()
    if again:
        run_mutmut(folder, again, jobs, limit_s, env)
    now = read_statuses(folder, module)
    after = {**before, **{k: now[k] for k in again if now.get(k, "not checked") != "not checked"}}
    return {"before": Outcome(before), "after": Outcome(after, time.perf_counter() - start)}


def _function_sources(path: Path) -> dict[str, str]:
    """Every function of mutmut's mutated copy of a module, by name, as source text."""
    import ast

    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    return {node.name: "\n".join(lines[node.lineno - 1:node.end_lineno]) for node in ast.walk(ast.parse(text))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}


_SOURCES: dict[Path, dict[str, str]] = {}


def diff_line(folder: Path, mutant: str) -> str:
    """What `mutant` changes: the differing middle of its first changed line, old -> new (read from
    the mutated copy itself: `mutmut show` takes seconds a mutant on a loaded machine)."""
    module, name = mutant.rsplit(".", 1)
    path = folder / "mutants" / (module.replace(".", "/") + ".py")
    if path not in _SOURCES:
        _SOURCES[path] = _function_sources(path)
    functions = _SOURCES[path]
    old_src, new_src = functions.get(name.rsplit("__mutmut_", 1)[0] + "__mutmut_orig"), functions.get(name)
    if old_src is None or new_src is None:
        return "?"
    old_lines = [ln.strip() for ln in old_src.splitlines()[1:]]  # the def lines differ by name
    new_lines = [ln.strip() for ln in new_src.splitlines()[1:]]
    changed = [(o, n) for o, n in zip(old_lines, new_lines) if o != n]
    if not changed:
        if len(old_lines) == len(new_lines):
            return "signature: " + new_src.splitlines()[0].strip()[:160]
        gone = [ln for ln in old_lines if ln not in new_lines]
        return "line removed: " + (gone or ["?"])[0][:120]
    old, new = changed[0]
    head = len(os.path.commonprefix([old, new]))
    tail = len(os.path.commonprefix([old[head:][::-1], new[head:][::-1]]))
    context = old[max(0, head - 30):head]
    return f"...{context}[{old[head:len(old) - tail]} -> {new[head:len(new) - tail]}]"[:200]


def postgres_env(env: dict[str, str]) -> object | None:
    sys.path.insert(0, str(REPO / "tests"))
    from support.pgserver import PgServer

    server = PgServer.from_env() or PgServer.start()
    if server is None:
        raise SystemExit("search_pg needs PostgreSQL: set DIGEST_TEST_PG_URL or install Debian's postgresql")
    env["DIGEST_TEST_PG_URL"] = server.admin_url
    return server


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("modules", nargs="*", help=f"of: {', '.join(MODULES)} (default: all)")
    ap.add_argument("--before", action="append", default=[], metavar="GLOB",
                    help="test files left out of a first run, to report the score before and after them")
    ap.add_argument("--functions", nargs="+", metavar="GLOB",
                    help="only these functions (mutmut names, e.g. x__fold 'xǁFiltersǁ*'), instead of MODULES'")
    ap.add_argument("--again", action="store_true",
                    help="run the survivors and the mutants not checked of the last run again (same scratch "
                         "copies), with the tests as they are now: the score before and after")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--limit-min", type=float, default=15.0, help="per module and run (default 15)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/digest-mutation"))
    ap.add_argument("--json", type=Path, help="also write the statuses here")
    args = ap.parse_args(argv)
    unknown = [m for m in args.modules if m not in MODULES]
    if unknown:
        ap.error(f"unknown module(s): {', '.join(unknown)}; choose from {', '.join(MODULES)}")
    if not Path(sys.executable).with_name("mutmut").exists():
        ap.error("mutmut is not installed in this environment: pip install -e '.[mutation]'")
    names = args.modules or list(MODULES)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    server = postgres_env(env) if any(MODULES[n].postgres for n in names) else None
    results: dict[str, dict[str, Outcome]] = {}
    try:
        for name in names:
            module = MODULES[name]
            if args.functions:
                module = Module(module.file, args.functions, module.tests, module.select, module.postgres)
            print(f"== {name} ({module.file})", flush=True)
            phases: dict[str, Outcome] = {}
            if args.again:
                phases = run_again(name, module, args.work / "after", jobs=args.jobs, limit_s=args.limit_min * 60,
                                   env=env)
            elif args.before:
                phases["before"] = run_module(name, module, args.work / "before", exclude=args.before, only=None,
                                              jobs=args.jobs, limit_s=args.limit_min * 60, env=env)
                again = phases["before"].survivors()
                after = run_module(name, module, args.work / "after", exclude=[], only=again, jobs=args.jobs,
                                   limit_s=args.limit_min * 60, env=env) if again else Outcome()
                merged = dict(phases["before"].statuses)
                merged.update({k: s for k, s in after.statuses.items() if s != "not checked"})
                phases["after"] = Outcome(merged, after.seconds)
            else:
                phases["after"] = run_module(name, module, args.work / "after", exclude=[], only=None,
                                             jobs=args.jobs, limit_s=args.limit_min * 60, env=env)
            results[name] = phases
            report(name, phases, args.work)
    finally:
        if server is not None:
            server.stop()
    print("\n| module | mutants | checked | killed | survived | score before | score after | minutes |")
    print("|---|---|---|---|---|---|---|---|")
    for name, phases in results.items():
        a = phases["after"]
        before = phases["before"].score() if "before" in phases else "-"
        minutes = sum(p.seconds for p in phases.values()) / 60
        print(f"| {name} | {len(a.statuses)} | {a.checked} | {a.killed} | {len(a.survivors())} | {before} "
              f"| {a.score()} | {minutes:.1f} |")
    if args.json:
        args.json.write_text(json.dumps({n: {p: o.statuses for p, o in ph.items()} for n, ph in results.items()},
                                        indent=1, ensure_ascii=False), encoding="utf-8")
    return 0


def report(name: str, phases: dict[str, Outcome], work: Path) -> None:
    for label, outcome in phases.items():
        print(f"  {label}: {outcome.killed} of {outcome.checked} killed ({outcome.score()}), "
              f"{outcome.count('not checked')} not checked, {outcome.seconds / 60:.1f} min", flush=True)
    final = phases["after"]
    folder = work / "after" / name if (work / "after" / name / "mutants").exists() else work / "before" / name
    for mutant in final.survivors():
        print(f"  survivor {mutant} [{final.statuses[mutant]}]: {diff_line(folder, mutant)}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
