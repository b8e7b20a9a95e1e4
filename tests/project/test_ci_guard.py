"""Under CI=true a missing prerequisite fails the run; on a developer's machine it skips with the reason.

Each case runs pytest in a subprocess with ../shared pointed at an empty folder through
$DIGEST_SHARED, on one test that reads a seed.
"""

from __future__ import annotations

import os
import subprocess
import sys

from support.helpers import REPO

TARGET = "tests/scrapers/test_real_samples.py::test_blog_html_listing_gives_the_posts_of_the_real_text_dump"


def _pytest(tmp_path, *, ci: bool, shared) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["DIGEST_SHARED"] = str(shared)
    if ci:
        env["CI"] = "true"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", TARGET],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def test_ci_with_shared_hidden_fails_with_one_line(tmp_path):
    empty = tmp_path / "no-shared"
    proc = _pytest(tmp_path, ci=True, shared=empty)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    reason = [line for line in out.splitlines() if "CI=true but" in line]
    assert len(reason) == 1, out
    assert str(empty) in reason[0] and "passed" not in out and "skipped" not in out


def test_ci_with_one_file_missing_fails_that_test(tmp_path):
    (tmp_path / "seeds").mkdir()  # ../shared exists but lacks the seed: the test itself must fail
    proc = _pytest(tmp_path, ci=True, shared=tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "1 failed" in out and "CI=true but seed 003 not present" in out


def test_locally_a_hidden_shared_skips_with_the_reason(tmp_path):
    empty = tmp_path / "no-shared"
    proc = _pytest(tmp_path, ci=False, shared=empty)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "1 skipped" in out and f"{empty}" in out


def test_ci_with_shared_present_runs_the_real_input(tmp_path):
    from support.helpers import shared_path

    proc = _pytest(tmp_path, ci=True, shared=shared_path())
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "1 passed" in out
