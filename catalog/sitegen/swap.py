"""Atomic publishing: a served folder is a symlink to one complete generation of the site.

A web server serves ``OUT/site`` (or the folder `digest site deploy --to DIR` fills). That
path is a symlink into ``.site.generations/`` beside it (``.DIR.generations`` for a deploy
target), to a folder ``gNNNNNN``. A build never writes into the generation being served:
it makes the next one beside it, hard-linking every file of the served one (so an
incremental build still writes only the files whose bytes changed, and writing one
replaces the link rather than the shared file), writes into it, and then replaces the
symlink with one to the new generation in a single rename(2). Killed before that rename,
the served site is the previous one, complete; killed after it, the new one is. The next
build removes whatever a killed build left behind (and the generation it replaced).

Each generation's file digests (what `DocsWriter` compares a build's output against) are
kept beside it as ``gNNNNNN.json``, written before the flip: they always describe the
folder they name. A real folder at the served path (a site built before this scheme, or a
folder a server already serves) is moved into the generations on first use.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from catalog.errors import DigestError

PREFIX = "g"
DIGESTS_SUFFIX = ".json"


def generations_dir(served: Path) -> Path:
    return served.parent / f".{served.name}.generations"


def _number(name: str) -> int | None:
    if name.startswith(PREFIX) and name[len(PREFIX):].isdigit():
        return int(name[len(PREFIX):])
    return None


def link_tree(source: Path, target: Path) -> None:
    """`target` becomes a copy of the folder `source` whose files are hard links to its files.

    GNU ``cp -al`` does this some ten times faster than a Python walk (a 100k-page site has
    several hundred thousand files); the walk is the fallback elsewhere, and copies a file where
    it cannot link it (a served path that is a symlink to another filesystem)."""
    if shutil.which("cp") and os.uname().sysname == "Linux":
        done = subprocess.run(["cp", "-al", "--", str(source), str(target)], capture_output=True, text=True)
        if done.returncode == 0:
            return
        shutil.rmtree(target, ignore_errors=True)
    for folder, _dirs, files in os.walk(source):
        rel = Path(folder).relative_to(source)
        (target / rel).mkdir(parents=True, exist_ok=True)
        for name in files:
            try:
                os.link(Path(folder, name), target / rel / name, follow_symlinks=False)
            except OSError:
                shutil.copy2(Path(folder, name), target / rel / name)


def remove_tree(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    elif path.exists():
        shutil.rmtree(path)


class Generations:
    """The generations behind one served path (see the module's docstring)."""

    def __init__(self, served: Path):
        self.served = Path(os.path.abspath(served))
        self.root = generations_dir(self.served)
        self.lock_path = self.served.parent / f".{self.served.name}.lock"

    @contextmanager
    def locked(self) -> Iterator["Generations"]:
        """Hold the lock of this served path: two builds into one folder would remove each other's work."""
        self.served.parent.mkdir(parents=True, exist_ok=True)
        with open(self.lock_path, "w") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                raise DigestError(f"another build or deploy is writing {self.served} (lock {self.lock_path})") from None
            try:
                yield self
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    # ---------------------------------------------------------------- state
    def live(self) -> Path | None:
        """The generation being served (or the real folder at the served path), None when there is none."""
        if self.served.is_symlink():
            target = self.served.resolve()
            return target if target.is_dir() else None
        return self.served if self.served.is_dir() else None

    def digests_file(self, generation: Path) -> Path:
        return self.root / f"{generation.name}{DIGESTS_SUFFIX}"

    def _complete(self) -> list[Path]:
        """Generations a build finished (their digests were written just before the flip), oldest first."""
        if not self.root.is_dir():
            return []
        found = [p for p in self.root.iterdir() if p.is_dir() and _number(p.name) is not None
                 and self.digests_file(p).exists()]
        return sorted(found, key=lambda p: _number(p.name))

    def _point(self, generation: Path) -> None:
        """Make the served path a symlink to `generation` in one rename (atomic on POSIX)."""
        temp = self.served.parent / f".{self.served.name}.link-tmp"
        temp.unlink(missing_ok=True)
        os.symlink(os.path.relpath(generation, self.served.parent), temp)
        os.replace(temp, self.served)

    def prepare(self, legacy_digests: Path | None = None) -> Path | None:
        """Bring the served path into the generation scheme and clear what killed runs left; returns
        the live generation. A real folder there is moved into the generations (with `legacy_digests`,
        the file that described it, if any); a missing link is restored to the newest complete
        generation (a run killed between moving a real folder and linking it)."""
        self.root.mkdir(parents=True, exist_ok=True)
        if self.served.is_dir() and not self.served.is_symlink():
            generation = self.root / self._next_name()
            os.rename(self.served, generation)
            digests = self.digests_file(generation)
            if legacy_digests is not None and legacy_digests.exists():
                os.replace(legacy_digests, digests)
            else:
                digests.write_text("{}", encoding="utf-8")
            self._point(generation)
        elif not self.served.exists():
            complete = self._complete()
            if complete:
                self._point(complete[-1])
        live = self.live()
        keep = {live.name, self.digests_file(live).name} if live is not None else set()
        for entry in list(self.root.iterdir()):
            if entry.name not in keep:
                remove_tree(entry)
        return live

    def _next_name(self) -> str:
        numbers = [n for n in (_number(p.name.removesuffix(DIGESTS_SUFFIX)) for p in self.root.iterdir())
                   if n is not None] if self.root.is_dir() else []
        return f"{PREFIX}{max(numbers, default=0) + 1:06d}"

    def begin(self, *, reuse: bool = True, legacy_digests: Path | None = None) -> tuple[Path, Path | None]:
        """Start the next generation; returns (its folder, the live generation). With `reuse` the new
        folder starts as hard links of every file of the live one, else empty."""
        live = self.prepare(legacy_digests)
        new = self.root / self._next_name()
        if reuse and live is not None:
            link_tree(live, new)
        else:
            new.mkdir()
        return new, live

    def commit(self, new: Path, digests_json: str = "{}") -> None:
        """Serve `new`: its digests are written first (they mark it complete), then the link flips,
        then the generation it replaced is removed."""
        old = self.live()
        self.digests_file(new).write_text(digests_json, encoding="utf-8")
        self._point(new)
        if old is not None and old != new and old.parent == self.root:
            remove_tree(old)
            self.digests_file(old).unlink(missing_ok=True)
