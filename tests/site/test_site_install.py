"""A wheel installed outside the checkout builds the site: site/ and mkdocs.yml travel in the package.

The wheel is built from this checkout without network (setuptools from the current
environment), installed with pip into a fresh virtual environment that sees the
current environment's dependencies through a .pth file (so nothing is downloaded), and
its `digest demo --offline` runs in an empty temporary folder. The test checks that the
installed code, not the checkout, did the work.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def run(cmd: list[str], cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "DIGEST_DB", "VIRTUAL_ENV")}
    env.update(PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1", OMP_NUM_THREADS="1")
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    proc = run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(out), str(REPO)],
               cwd=out)
    # setuptools warns when data folders are not declared properly; a user would see that on install
    assert "is deprecated" not in proc.stderr and "would be ignored" not in proc.stderr, proc.stderr[-3000:]
    wheels = list(out.glob("paper_digest-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def test_wheel_ships_the_site_content(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in ("catalog/sitegen/content/mkdocs.yml", "catalog/sitegen/content/site/templates/post.html.j2",
                     "catalog/sitegen/content/site/templates/raw.html.j2", "catalog/sitegen/stamp.py",
                     "catalog/sitegen/content/site/templates/partials/lists.md.j2",
                     "catalog/sitegen/content/site/overrides/main.html", "catalog/sitegen/content/site/pages/about.md",
                     "catalog/sitegen/content/site/pages/assets/extra.css", "catalog/sitegen/raw_html_hook.py",
                     "catalog/sample/digest_ru.json"):
        assert required in names, required
    # every file of the checkout's site/ is shipped, and nothing else is under content/
    shipped = {n.removeprefix("catalog/sitegen/content/") for n in names if n.startswith("catalog/sitegen/content/")}
    in_checkout = {p.relative_to(REPO).as_posix() for p in (REPO / "site").rglob("*")
                   if p.is_file() and "__pycache__" not in p.parts} | {"mkdocs.yml"}
    assert shipped == in_checkout
    assert not any(n.startswith("site/") for n in names)  # no top-level `site` to shadow the stdlib


def test_installed_wheel_runs_the_demo_outside_the_checkout(wheel, tmp_path):
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp_path)
    py = venv / "bin" / "python"
    site_packages = Path(run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             cwd=tmp_path).stdout.strip())
    # the dependencies come from this environment (appended to sys.path, after the wheel's own files)
    (site_packages / "deps-from-test-env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "--no-index", str(wheel)],
        cwd=tmp_path)

    work = tmp_path / "elsewhere"
    work.mkdir()
    where = run([str(py), "-c", "import catalog, catalog.sitegen.paths as g; print(catalog.__file__); "
                 "print(g.SITE_SRC)"], cwd=work).stdout.split()
    assert all(Path(p).is_relative_to(site_packages) for p in where), where  # not the checkout

    proc = run([str(venv / "bin" / "digest"), "--db", str(work / "demo.db"), "demo", "--offline"], cwd=work)
    site = work / "build" / "site"
    assert (site / "index.html").is_file(), proc.stdout
    assert len(list((site / "posts").glob("*/index.html"))) >= 25  # the sample corpus has 29 posts
    assert (site / "papers" / "index.html").is_file() and (site / "about" / "index.html").is_file()
    assert (site / "assets" / "extra.css").is_file()  # a hand-written asset from the package data
    assert "site" in proc.stdout and "pages built" in proc.stdout
    papers = (site / "papers" / "index.html").read_text(encoding="utf-8")
    assert "Attention Is All You Need" in papers  # the bundled arXiv snapshot, offline
