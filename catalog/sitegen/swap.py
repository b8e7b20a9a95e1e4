"""Atomic publishing: a served folder is a symlink to one complete generation of the site.

A web server serves ``OUT/site`` (or the folder `digest site deploy --to DIR` fills). That
path is a symlink into ``.site.generations/`` beside it (``.DIR.generations`` for a deploy
target), to a folder ``gNNNNNN``. A build never writes into the generation being served. It
works on the *standby*: the generation the last flip replaced (the site as it was two builds
ago), renamed to the next number, so only the files that changed since then are written (a
new file each time, never a write through a hard link the served copy shares), and the files
no longer produced are removed. Then the symlink is replaced with one to it in a single
rename(2). Killed before that rename, the served site is the previous one, complete; killed
after it, the new one is. The first build after a real folder (or without a standby) starts
from hard links of every file of the served one.

Each complete generation's file digests (what `DocsWriter` compares a build's output
against) are kept beside it as ``gNNNNNN.json``, written just before the flip, and the digests of
what each of its pages was rendered from as ``gNNNNNN.inputs.json`` (pageinputs.py: a build
renders only the pages whose inputs changed since); a standby's are removed before it is
touched, so a generation a killed build left half-updated has none and the next build
compares with its files (and renders every page) instead. A real folder at the served path (a site
built before this scheme, or a folder a server already serves) is moved into the generations
on first use. Disk: the two generations share every file that did not change between them.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from catalog.errors import DigestError

PREFIX = "g"
DIGESTS_SUFFIX = ".json"
INPUTS_SUFFIX = ".inputs.json"  # what each page of the generation was rendered from (pageinputs.py)


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
        self.inputs: dict = {}  # what the pages of the generation `begin` started from were rendered from
        self.exact = False  # whether the digests `begin` returned name every file of the generation

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

    def inputs_file(self, generation: Path) -> Path:
        return self.root / f"{generation.name}{INPUTS_SUFFIX}"

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
        standby = self._standby(live)
        keep = {g.name for g in (live, standby) if g is not None}
        keep |= {f(g).name for g in (live, standby) if g is not None for f in (self.digests_file, self.inputs_file)}
        for entry in list(self.root.iterdir()):
            if entry.name not in keep:
                remove_tree(entry)
        return live

    def _standby(self, live: Path | None) -> Path | None:
        """The newest generation but the live one: the site before the last flip (or what a killed
        build left of it), which the next build brings up to date instead of copying a whole site."""
        others = [p for p in self.root.iterdir() if p.is_dir() and _number(p.name) is not None and p != live]
        return max(others, key=lambda p: _number(p.name), default=None)

    def _next_name(self) -> str:
        numbers = [n for n in (_number(p.name.removesuffix(DIGESTS_SUFFIX)) for p in self.root.iterdir())
                   if n is not None] if self.root.is_dir() else []
        return f"{PREFIX}{max(numbers, default=0) + 1:06d}"

    def begin(self, *, fresh: bool = False, legacy_digests: Path | None = None) -> tuple[Path, dict | None]:
        """Start the next generation; returns (its folder, the digests of what it holds), and keeps
        the inputs its pages were rendered from in `self.inputs` ({} when unknown).

        The folder is the standby generation renamed (the site of two builds ago: only what
        changed since needs writing), else hard links of every file of the live one (the first
        build after a real folder or a lost standby), else empty (`fresh`, or nothing served yet).
        The digests are None when they are unknown (a killed build had started on the standby):
        the caller compares with the files themselves. Renamed under the next number, with its
        digests file removed first, a standby is never mistaken for a complete generation."""
        live = self.prepare(legacy_digests)
        standby = self._standby(live)
        new = self.root / self._next_name()
        self.inputs, self.exact = {}, False
        if standby is not None and not fresh:
            digests = _read_json(self.digests_file(standby))
            self.exact = digests is not None  # nobody writes into a generation that is not served
            if digests is not None:  # inputs count only beside the digests of a complete generation
                self.inputs = _read_json(self.inputs_file(standby)) or {}
            self.digests_file(standby).unlink(missing_ok=True)
            self.inputs_file(standby).unlink(missing_ok=True)
            os.rename(standby, new)
            return new, digests
        if standby is not None:
            remove_tree(standby)
            self.digests_file(standby).unlink(missing_ok=True)
            self.inputs_file(standby).unlink(missing_ok=True)
        if live is not None and not fresh:
            link_tree(live, new)
            digests = _read_json(self.digests_file(live))
            self.inputs = (_read_json(self.inputs_file(live)) or {}) if digests is not None else {}
            return new, digests
        new.mkdir()
        self.exact = True
        return new, {}

    def commit(self, new: Path, digests_json: str = "{}", inputs_json: str | None = None) -> None:
        """Serve `new`: its inputs and digests are written first (the digests mark it complete),
        then the link flips. The generation it replaced stays as the standby for the next build."""
        if inputs_json is not None:
            self.inputs_file(new).write_text(inputs_json, encoding="utf-8")
        self.digests_file(new).write_text(digests_json, encoding="utf-8")
        self._point(new)


def _read_json(path: Path) -> dict | None:
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None
