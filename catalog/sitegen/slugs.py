"""Path-safe, stable slugs for generated pages.

A slug becomes a folder name under the built site, so it may hold only
``[a-z0-9-]``: no dots (no ``..``, no hidden files), no slashes, no Windows
device names. Titles in Russian are transliterated; anything else that does not
fold to ASCII (Chinese, emoji) leaves a short hash of the original text, so two
different titles never share a slug and the same title always gets the same one.
"""

from __future__ import annotations

import hashlib
import re

from catalog.transliterate import ascii_fold

# Windows device names (a folder named CON cannot be created there) and names our
# own layout uses inside every section folder.
RESERVED = frozenset(
    {"con", "prn", "aux", "nul", "clock"}
    | {f"com{i}" for i in range(10)}
    | {f"lpt{i}" for i in range(10)}
    | {"index", "assets", "search", "tags", "archive", "runs"}
)

_NOT_SLUG = re.compile(r"[^a-z0-9]+")
MAX_LEN = 60


def short_hash(text: str, length: int = 8) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:length]


def slugify(text: str, *, max_len: int = MAX_LEN) -> str:
    """``[a-z0-9-]`` words of `text`, at most `max_len` characters, cut at a word boundary."""
    slug = _NOT_SLUG.sub("-", ascii_fold(text)).strip("-")
    if len(slug) > max_len:
        slug = slug[:max_len].rsplit("-", 1)[0] if "-" in slug[:max_len] else slug[:max_len]
    return slug.strip("-")


def is_safe_slug(slug: str) -> bool:
    return bool(re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", slug)) and slug not in RESERVED and len(slug) <= 100


def make_slug(text: str, key: str | None = None, *, always_hash: bool = False) -> str:
    """A stable slug for `text`; `key` (default: the text) identifies the thing for the hash.

    The slug is the plain words when they say everything (an ASCII tag like ``nlp``);
    when the text lost characters on the way to ASCII, is empty, reserved, or the caller
    wants uniqueness guaranteed (`always_hash`), a hash of `key` is appended.
    """
    key = text if key is None else key
    words = slugify(text)
    lossless = words == (text or "").strip().lower() and words != ""
    if always_hash or not lossless or words in RESERVED:
        words = f"{words}-{short_hash(key)}" if words else short_hash(key)
    return words


class SlugRegistry:
    """Hands out slugs within one namespace (posts, tags, …), never the same one twice.

    Collisions are practically impossible after hashing; when one happens anyway the
    hash is lengthened, which keeps the result deterministic for a given set of keys.
    """

    def __init__(self) -> None:
        self._by_key: dict[str, str] = {}
        self._taken: set[str] = set()

    def get(self, text: str, key: str | None = None, *, always_hash: bool = False) -> str:
        key = text if key is None else key
        if key in self._by_key:
            return self._by_key[key]
        slug = make_slug(text, key, always_hash=always_hash)
        length = 8
        while slug in self._taken or not is_safe_slug(slug):
            length += 4
            slug = f"{slugify(text)[:40]}-{short_hash(key, length)}".strip("-")
        self._taken.add(slug)
        self._by_key[key] = slug
        return slug
