"""Writing a generated folder (the docs, or the site): a file only when its bytes changed.

Kept apart from the page generator so that the stamping workers, which only write pages,
do not import it (generate imports stamp for its plan).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

from catalog.errors import DigestError

MARKER = ".digest-generated"  # a docs folder we may clean holds this file


class DocsWriter:
    """Writes files under a folder (the docs, or the site) only when they changed; remembers what it wrote.

    A file is compared with what is on disk, or, given `previous` (file -> SHA-256 of what
    the last build wrote, see `load_digests`), with that digest: at 100k pages reading every
    page back cost more than rendering it. `digests` holds what this run wrote or kept."""

    def __init__(self, docs: Path, previous: dict[str, str] | None = None):
        self.docs = docs
        self.root = docs.resolve()  # resolved once: the generator names thousands of files
        self.seen: set[Path] = set()
        self.planned: set[str] = set()  # pages that are stamped into the site later, not written here
        self.previous = previous
        self.digests: dict[str, str] = {}
        self.written = 0
        self._dirs: set[Path] = set()

    def has(self, rel: str) -> bool:
        return rel in self.planned or self.path(rel) in self.seen

    def path(self, rel: str) -> Path:
        parts = rel.split("/")
        if rel.startswith("/") or "\\" in rel or any(part in ("", ".", "..") for part in parts):
            raise DigestError(f"refusing to write outside the docs folder: {rel}")
        return self.root.joinpath(*parts)

    def _mkdir(self, folder: Path) -> None:
        if folder not in self._dirs:
            folder.mkdir(parents=True, exist_ok=True)
            self._dirs.add(folder)

    def text(self, rel: str, content: str) -> None:
        self.data(rel, content.encode("utf-8"))

    def data(self, rel: str, data: bytes) -> None:
        target = self.path(rel)
        self.seen.add(target)
        if self.previous is not None:
            digest = self.digests[rel] = hashlib.sha256(data).hexdigest()
            if self.previous.get(rel) == digest and target.exists():
                return
        else:
            try:
                if target.read_bytes() == data:
                    return
            except OSError:
                pass
        self._mkdir(target.parent)
        _replace_bytes(target, data)
        self.written += 1

    def keep(self, rel: str) -> bool:
        """Keep file `rel` as the previous build wrote it, if it did (True) and it is still there."""
        digest = self.previous.get(rel) if self.previous is not None else None
        target = self.path(rel)
        if digest is None or not target.exists():
            return False
        self.seen.add(target)
        self.digests[rel] = digest
        return True

    def copy(self, rel: str, source: Path) -> None:
        target = self.path(rel)
        self.seen.add(target)
        try:
            st_src, st_dst = source.stat(), target.stat()
            if st_src.st_size == st_dst.st_size and st_src.st_mtime <= st_dst.st_mtime:
                return
        except OSError:
            pass
        self._mkdir(target.parent)
        target.unlink(missing_ok=True)  # a hard link to the served site's file: never write through it
        shutil.copyfile(source, target)
        self.written += 1

    def remove_stale(self, keep: tuple[str, ...] = (), known: dict[str, str] | None = None) -> int:
        """Delete every file not written in this run (but the marker, and the top-level folders
        `keep`), then the folders left empty. `known`: every file the folder holds outside `keep`
        (the digests of the generation it was), so that a site of 100k pages is not walked."""
        if known is not None:
            return _remove_known(self, known, keep)
        removed = 0
        folders = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            if dirpath == str(self.root):
                dirnames[:] = [d for d in dirnames if d not in keep]
            else:
                folders.append(dirpath)
            for name in filenames:
                path = Path(dirpath, name)
                if name != MARKER and path not in self.seen:
                    path.unlink()
                    removed += 1
        for folder in reversed(folders):  # deepest first
            if not os.listdir(folder):
                os.rmdir(folder)
        return removed


def _remove_known(writer: "DocsWriter", known: dict[str, str], keep: tuple[str, ...]) -> int:
    removed = 0
    for rel in known:
        path = writer.path(rel)
        if path in writer.seen or rel.split("/", 1)[0] in keep:
            continue
        path.unlink(missing_ok=True)
        removed += 1
        folder = path.parent
        while folder != writer.root:  # the folders it leaves empty
            try:
                folder.rmdir()
            except OSError:
                break
            folder = folder.parent
    return removed


def _replace_bytes(target: Path, data: bytes) -> None:
    """Write a new file at `target`: the old one may be a hard link shared with the served
    generation of the site (swap.py), which must keep its bytes."""
    try:
        target.unlink()
    except FileNotFoundError:
        pass
    target.write_bytes(data)


def load_digests(path: Path) -> dict[str, str]:
    """The digests a DocsWriter saved (`save_digests`); {} when there are none or they do not read."""
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def save_digests(path: Path, digests: dict[str, str]) -> None:
    path.write_text(json.dumps(digests, sort_keys=True, separators=(",", ":")), encoding="utf-8")
