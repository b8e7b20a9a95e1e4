"""Fixtures: a fresh catalog, the sample corpus, a CLI runner, a headless Chromium.

Plain helpers the tests import live in tests/helpers.py. Prerequisites that CI is known
to have (../shared, Chromium and its driver) skip with a reason on a developer's machine
and fail under `CI=true` (see `helpers.missing`).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from support.helpers import REPO, in_ci, missing, shared_root

# Keep torch from fighting over the 2 CPU cores with itself in CI.
os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(REPO))
# Tests live by layer (scrapers, catalog, site, browser, reproductions, project); some reuse
# another module's data or builds (test_formats reads the scrapers' sample documents, the
# browser tests share test_site's build). Every layer folder is importable, under the same
# module names pytest gives the files it collects, so such an import gets the collected module.
for _layer in sorted(p for p in Path(__file__).parent.iterdir() if p.is_dir() and p.name.isidentifier()
                     and p.name != "support"):
    sys.path.insert(0, str(_layer))


def pytest_configure(config) -> None:
    """Under CI a missing ../shared stops the run at once with one line, before any test can skip."""
    if in_ci() and not shared_root().is_dir():
        raise pytest.UsageError(f"CI=true but the real inputs are missing: {shared_root()} is not a folder "
                                "(CI keeps ../shared beside the checkout; DIGEST_SHARED overrides)")


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "catalog.db"


# ---------------------------------------------------------------- both engines

ENGINES = ("sqlite", "postgresql")


def pytest_generate_tests(metafunc) -> None:
    """Every test that opens a catalog (through `db_kind`: `engine`, `db_target`, `cli`, …) runs on
    both engines, unless it is marked ``@pytest.mark.sqlite_only(reason=...)``: a new catalog test
    cannot run on SQLite alone by accident."""
    if "db_kind" not in metafunc.fixturenames:
        return
    opted_out = metafunc.definition.get_closest_marker("sqlite_only")
    if opted_out is not None:
        if not opted_out.kwargs.get("reason"):
            raise pytest.UsageError(f"{metafunc.definition.nodeid}: sqlite_only needs reason=...")
        return
    metafunc.parametrize("db_kind", ENGINES, indirect=True)


@pytest.fixture
def db_kind(request) -> str:
    """The engine of this test's catalog: "sqlite" or "postgresql" (see pytest_generate_tests)."""
    return getattr(request, "param", "sqlite")


@pytest.fixture(scope="session")
def pg_server():
    """A PostgreSQL server: $DIGEST_TEST_PG_URL (CI starts one), else a throwaway cluster of our own."""
    from support.pgserver import PgServer

    server = PgServer.from_env() or PgServer.start()
    if server is None:
        missing("no PostgreSQL: set DIGEST_TEST_PG_URL, or install Debian's postgresql (initdb, pg_ctl)")
    yield server
    server.stop()


@pytest.fixture
def pg_url(pg_server) -> str:
    """A fresh, migrated catalog database on the server, dropped after the test."""
    url = pg_server.fresh_database()
    yield url
    pg_server.release(url)


@pytest.fixture
def empty_pg_url(pg_server) -> str:
    """A new database with nothing in it, as `createdb` leaves it: no catalog yet."""
    url = pg_server.fresh_database(migrated=False)
    yield url
    pg_server.release(url)


@pytest.fixture
def db_target(db_kind: str, db_path: Path, request) -> Path | str:
    """What `--db` gets: a file for SQLite, a URL for PostgreSQL (a catalog already migrated)."""
    return db_path if db_kind == "sqlite" else request.getfixturevalue("pg_url")


@pytest.fixture
def new_db_target(db_kind: str, db_path: Path, request) -> Path | str:
    """Where no catalog exists yet: a file not created, an empty PostgreSQL database."""
    return db_path if db_kind == "sqlite" else request.getfixturevalue("empty_pg_url")


@pytest.fixture
def engine(db_target):
    from catalog.db import open_db

    eng = open_db(db_target)
    yield eng
    eng.dispose()


@pytest.fixture(scope="session")
def sample_files() -> list[Path]:
    from catalog.demo import sample_corpus

    return sample_corpus()


@pytest.fixture
def sample_engine(engine, sample_files):
    from catalog.ingest import ingest_paths

    ingest_paths(engine, sample_files)
    return engine


class Cli:
    """Runs `digest` in-process against one database and returns (exit code, stdout, stderr)."""

    def __init__(self, db: Path | str):
        self.db = db

    def __call__(self, *args: str, input: str | None = None):
        from typer.testing import CliRunner

        from catalog.cli import app

        result = CliRunner().invoke(app, ["--db", str(self.db), *args], input=input)
        return result


@pytest.fixture
def cli(new_db_target) -> Cli:
    return Cli(new_db_target)


# ---------------------------------------------------------------- both engines: more catalogs than one

class Targets:
    """New catalogs on demand, each its own: a new file in `folder`, or a new database on the
    PostgreSQL server (dropped by `close`). `migrated=False` leaves no catalog there yet."""

    def __init__(self, kind: str, folder: Path, server=None):
        self.kind, self.folder, self.server = kind, folder, server
        self.files = 0
        self.urls: list[str] = []

    def __call__(self, *, migrated: bool = True) -> Path | str:
        if self.kind == "sqlite":  # a file not there yet: whoever opens it creates (and migrates) it
            self.files += 1
            return self.folder / f"catalog-{self.files}.db"
        self.urls.append(self.server.fresh_database(migrated=migrated))
        return self.urls[-1]

    def close(self) -> None:
        for url in self.urls:
            self.server.release(url)


def _targets(kind: str, folder: Path, request) -> Targets:
    return Targets(kind, folder, request.getfixturevalue("pg_server") if kind != "sqlite" else None)


@pytest.fixture
def fresh_target(db_kind: str, tmp_path: Path, request):
    """`fresh_target()`: one more catalog of the test's engine, apart from `db_target`."""
    targets = _targets(db_kind, tmp_path, request)
    yield targets
    targets.close()


@pytest.fixture(scope="session")
def lasting_target(tmp_path_factory, request):
    """`lasting_target(kind)`: a new catalog of engine `kind` that lasts the whole session
    (for a build several tests share)."""
    made: dict[str, Targets] = {}

    def new(kind: str) -> Path | str:
        if kind not in made:
            made[kind] = _targets(kind, tmp_path_factory.mktemp(f"lasting-{kind}"), request)
        return made[kind]()

    yield new
    for targets in made.values():
        targets.close()


@pytest.fixture
def catalog_cli(engine, db_target) -> Cli:
    """`digest` against the catalog `engine` holds (the `cli` fixture has none yet)."""
    return Cli(db_target)


@pytest.fixture
def cli_for():
    """`cli_for(target)`: `digest` against another catalog, such as a `fresh_target()` one."""
    return Cli


@pytest.fixture(scope="module", params=ENGINES)
def module_db_target(request, tmp_path_factory):
    """Like `db_target`, but shared by the tests of one module, once per engine: for read-only
    fixtures too costly to build per test (a whole generated site)."""
    if request.param == "sqlite":
        yield tmp_path_factory.mktemp("module-catalog") / "catalog.db"
        return
    server = request.getfixturevalue("pg_server")
    url = server.fresh_database()
    yield url
    server.release(url)


# ---------------------------------------------------------------- headless Chromium

CHROME_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--window-size=1280,900")


def _find(*names: str) -> str | None:
    return next((p for p in (shutil.which(n) for n in names) if p), None)


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    """Debian's chromium + chromium-driver through selenium (no browser download)."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        missing("selenium is not installed (pip install -e '.[dev]')")

    binary = os.environ.get("CHROMIUM") or _find("chromium", "chromium-browser", "google-chrome")
    chromedriver = os.environ.get("CHROMEDRIVER") or _find("chromedriver")
    if not binary or not chromedriver:
        missing(f"Chromium not found (chromium: {binary}, chromedriver: {chromedriver}); "
                "install Debian's chromium and chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in CHROME_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.set_capability("unhandledPromptBehavior", "ignore")  # an alert must stay open for us to see it
    try:
        drv = webdriver.Chrome(service=Service(chromedriver), options=options)
    except Exception as exc:  # noqa: BLE001 - any start failure means "no usable browser here"
        missing(f"Chromium could not be started: {exc.__class__.__name__}: {str(exc).splitlines()[0]}")
    drv.set_page_load_timeout(60)
    drv.execute_cdp_cmd("Network.enable", {})
    drv.execute_cdp_cmd("Network.setCacheDisabled", {"cacheDisabled": True})  # every test counts its own bytes
    yield drv
    drv.quit()
