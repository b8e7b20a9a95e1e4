"""Line-level clean-up shared by the text formats: boilerplate and doubled bodies.

Scraped dumps carry two kinds of noise that character-level normalisation cannot
see: lines that belong to the site rather than the post (PHP warnings, share
buttons, footers) and posts whose body was captured twice (a web view that prints
the post, then prints it again under "Last Update:"; a dump that stores the
preview and the full text one after the other). Both are handled on lines.
"""

from __future__ import annotations

import re
from difflib import SequenceMatcher
from typing import Sequence

# PHP prints these into the page when the mirror site misbehaves; never post text.
_PHP_NOISE = re.compile(
    r"^\s*(?:PHP )?(?:Warning|Notice|Deprecated|Fatal error|Parse error|Strict Standards)\s*:"
    r".*\bon line \d+\s*$")


def is_php_noise(line: str) -> bool:
    return bool(_PHP_NOISE.match(line))


def strip_boilerplate(lines: Sequence[str], patterns: Sequence[re.Pattern[str]] = ()) -> list[str]:
    """`lines` without PHP warnings and without lines matching any of `patterns`."""
    return [ln for ln in lines if not is_php_noise(ln) and not any(p.search(ln) for p in patterns)]


def _key(line: str) -> str:
    return " ".join(line.split()).casefold()


def find_second_copy(lines: Sequence[str], *, min_share: float = 0.6, head: int = 3) -> int | None:
    """Index where a repeat of the block's body starts, or None when it is not doubled.

    The second copy must begin with one of the first `head` non-blank lines (it may
    lack the title or carry one extra line) and share at least `min_share` of its
    non-blank lines with what precedes it.
    """
    keys = [_key(ln) for ln in lines]
    starts = [k for k in keys if k][:head]
    if not starts:
        return None
    best, best_share = None, 0.0
    first_line = next(i for i, k in enumerate(keys) if k)
    for q in range(first_line + 1, len(keys)):
        if not keys[q] or keys[q] not in starts:
            continue
        a = [k for k in keys[:q] if k]
        b = [k for k in keys[q:] if k]
        pool: dict[str, int] = {}
        for k in a:
            pool[k] = pool.get(k, 0) + 1
        shared = 0
        for k in b:
            if pool.get(k):
                pool[k] -= 1
                shared += 1
        share = shared / max(len(a), len(b))
        if share > best_share:
            best, best_share = q, share
    if best is None or best_share < min_share:
        return None
    # When the second copy starts exactly where the first did, the first had no title
    # line; a line just before the repeat that the repeat lacks is the second copy's title.
    if keys[best] == starts[0] and best - 1 > first_line and keys[best - 1] \
            and keys[best - 1] not in keys[best:] and keys[best - 1] not in keys[:best - 1]:
        best -= 1
    return best


def merge_copies(a: Sequence[str], b: Sequence[str]) -> list[str]:
    """One body from two captures of it: every line either copy has, in order, once."""
    ka, kb = [_key(x) for x in a], [_key(x) for x in b]
    out: list[str] = []
    for op, i1, i2, j1, j2 in SequenceMatcher(None, ka, kb, autojunk=False).get_opcodes():
        if op == "equal" or op == "delete":
            out += a[i1:i2]
        elif op == "insert":
            out += b[j1:j2]
        else:  # replace: keep both sides, the first copy's lines first
            out += a[i1:i2]
            out += [line for line, k in zip(b[j1:j2], kb[j1:j2]) if k not in ka[i1:i2]]
    return out


def undouble(lines: Sequence[str]) -> list[str]:
    """`lines` with a doubled body kept once (unchanged when the body is not doubled)."""
    q = find_second_copy(lines)
    if q is None:
        return list(lines)
    return merge_copies(list(lines[:q]), list(lines[q:]))
