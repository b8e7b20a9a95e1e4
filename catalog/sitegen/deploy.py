"""`digest site deploy`: put a built site where it is served.

Two ways: commit it to a branch of the git repository in the current folder and push it
(GitHub Pages' ``gh-pages``, with ghp-import, as `mkdocs gh-deploy` does; a ``.nojekyll``
file keeps GitHub from running Jekyll, which would hide folders starting with "_"), or
mirror it into a folder a web server serves. The mirror is atomic like a build (swap.py):
the folder becomes a symlink to a complete copy, switched in one rename. The copy is the
standby generation brought up to date: a file whose size and time match the build's stays
(same inode and time as served before, so caches stay valid), others are copied from the
build with their time, and whatever the build no longer has is removed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from catalog.errors import DigestError
from catalog.sitegen.swap import Generations, generations_dir, remove_tree

DEFAULT_MESSAGE = "Deploy the paper-digest site"


@dataclass
class DeployResult:
    target: str
    files: int
    copied: int = 0  # files new or changed (a mirror); 0 for a branch
    removed: int = 0

    def as_dict(self) -> dict:
        return {"target": self.target, "files": self.files, "copied": self.copied, "removed": self.removed}


def built_site(site_dir: Path) -> Path:
    """The generation a build folder serves, checked to be a site."""
    site = Path(site_dir)
    if not site.exists():
        raise DigestError(f"no built site at {site}: run `digest site build` first (with the same --out)")
    site = site.resolve()
    if not (site / "index.html").is_file():
        raise DigestError(f"{site} holds no index.html: it is no site built by `digest site build`")
    return site


def _count_files(folder: Path) -> int:
    return sum(len(files) for _, _, files in os.walk(folder))


def _git(args: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)


def deploy_gh_pages(site_dir: Path, *, remote: str = "origin", branch: str = "gh-pages",
                    message: str = DEFAULT_MESSAGE, push: bool = True) -> DeployResult:
    """Commit the built site as the whole content of `branch` (with .nojekyll) in the git
    repository of the current folder, on top of `remote`'s copy of that branch, and push it."""
    import ghp_import

    site = built_site(site_dir)
    if shutil.which("git") is None:
        raise DigestError("deploying to a branch needs git on PATH")
    if _git(["rev-parse", "--git-dir"]).returncode != 0:
        raise DigestError(f"{Path.cwd()} is not in a git repository: run the deploy from the repository "
                          "whose branch serves the site")
    if _git(["remote", "get-url", remote]).returncode != 0:
        raise DigestError(f"the repository has no remote {remote!r} (see `git remote -v`)")
    # the branch's history on the remote, so the new commit follows it (a fresh CI checkout lacks it);
    # it may not exist yet
    _git(["fetch", "--quiet", remote, f"+refs/heads/{branch}:refs/remotes/{remote}/{branch}"])
    env_before = {k: os.environ.get(k) for k in ("GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL")}
    # ghp-import writes an empty committer when git has no identity (a CI runner), which git refuses
    if not _git(["config", "user.name"]).stdout.strip():
        os.environ.setdefault("GIT_COMMITTER_NAME", "paper-digest")
    if not _git(["config", "user.email"]).stdout.strip():
        os.environ.setdefault("GIT_COMMITTER_EMAIL", "paper-digest@localhost")
    try:
        ghp_import.ghp_import(str(site), mesg=message, remote=remote, branch=branch, push=push,
                              nojekyll=True)
    except ghp_import.GhpError as exc:
        raise DigestError(f"cannot commit the site to branch {branch!r}: {exc.message}") from None
    except subprocess.CalledProcessError as exc:
        raise DigestError(f"git failed while pushing branch {branch!r} to {remote!r} (exit {exc.returncode})") from None
    finally:
        for key, value in env_before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return DeployResult(f"{remote}/{branch}", _count_files(site))


def _same(a: os.stat_result, b: os.stat_result) -> bool:
    return a.st_size == b.st_size and a.st_mtime_ns == b.st_mtime_ns


def _check_target(site: Path, target: Path) -> None:
    if target == site or site.is_relative_to(target) or target.is_relative_to(site):
        raise DigestError(f"--to {target} overlaps the built site {site}; choose the folder the web server serves")
    if target.is_dir() and not target.is_symlink() and any(target.iterdir()) and not (target / "index.html").exists():
        raise DigestError(f"--to {target} is a folder with files but no index.html: refusing to replace "
                          "something that is not a site")
    if target.is_symlink() and target.resolve().parent != generations_dir(target).resolve():
        raise DigestError(f"--to {target} is a symlink that `digest site deploy` did not make; remove it "
                          "or name the folder the web server serves")


def mirror_to(site_dir: Path, target: Path) -> DeployResult:
    """Make `target` serve a copy of the built site, switched atomically (see the module's docstring)."""
    site = built_site(site_dir)
    target = Path(os.path.abspath(target))
    _check_target(site, target)
    generations = Generations(target)
    copied = removed = 0
    names: set[str] = set()
    with generations.locked():
        live = generations.prepare()
        new, _ = generations.begin()  # the standby (or links of the live copy): most files are there already
        for folder, _dirs, files in os.walk(site):
            rel = Path(folder).relative_to(site)
            if (new / rel).is_file() or (new / rel).is_symlink():
                (new / rel).unlink()  # a file where the build now has a folder
            (new / rel).mkdir(parents=True, exist_ok=True)
            for name in files:
                source, dest = Path(folder, name), new / rel / name
                names.add((rel / name).as_posix())
                try:
                    if _same(dest.stat(follow_symlinks=False), source.stat()):
                        continue
                except OSError:
                    pass
                remove_tree(dest)  # maybe a link the served copy shares: never write through it
                shutil.copy2(source, dest)  # keeps the time, so the next deploy recognises it
                copied += 1
        for folder, dirs, files in os.walk(new, topdown=False):
            rel = Path(folder).relative_to(new)
            for name in files:
                if (rel / name).as_posix() not in names:
                    os.unlink(Path(folder, name))
            if rel != Path(".") and not os.listdir(folder):
                os.rmdir(folder)
        if live is not None:
            for folder, _dirs, files in os.walk(live):
                rel = Path(folder).relative_to(live)
                removed += sum((rel / name).as_posix() not in names for name in files)
        generations.commit(new)
    return DeployResult(str(target), len(names), copied, removed)
