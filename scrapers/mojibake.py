"""Repairing text whose UTF-8 bytes were decoded as ISO-8859-7 with C1 bytes dropped.

This is the damage in the opendatascience post dump: every byte of a multi-byte
UTF-8 character was read as a Greek-codepage character, and bytes 0x80–0x9F (C1
controls in ISO-8859-7) were thrown away. So ``’`` (E2 80 99) became ``β``, ``—``
(E2 80 94) also became ``β``, ``∼`` (E2 88 BC) became ``βΌ`` and most emoji
(F0 9F …) became ``π`` plus whatever continuation bytes were ≥ 0xA0.

The loss is not reversible in general, so we repair in two steps, only what is
certain:

1. ``ftfy`` first, for ordinary (lossless) mojibake of the usual code pages.
2. Our table for this lossy variant, applied only to text that shows its marks:
   * runs whose bytes survived whole are decoded exactly (``Β·`` → ``·``, ``Γ©`` → ``é``);
   * a bare ``β`` is read from its neighbours: between letters before ``s``/``t``/``re``…
     it is an apostrophe, between spaces a dash, before/after a word an opening/closing
     quote, at the start of a list line a bullet;
   * ``β¦`` → ``…`` and ``βΌ`` before a number → ``∼``;
   * lost emoji (``ββ`` runs at the start of a line, ``π`` plus continuation characters) are removed.

`raw` keeps the damaged text; only the clean text goes through here. Greek letters
used as symbols (``β-VAE``, ``λ = 0.1``) in undamaged text are left alone because
step 2 runs only when `looks_damaged` finds the marks of this variant.
"""

from __future__ import annotations

import re

import ftfy

# Characters ISO-8859-7 gives to bytes 0xA0-0xBF: what survives of UTF-8 continuation bytes.
_CONT = "".join(bytes([b]).decode("iso-8859-7", "ignore") for b in range(0xA0, 0xC0))
# Characters it gives to UTF-8 lead bytes: 2-byte (0xC2-0xDF), 3-byte (0xE0-0xEF), 4-byte (0xF0-0xF4).
_LEAD2 = "".join(bytes([b]).decode("iso-8859-7", "ignore") for b in range(0xC2, 0xE0))
_LEAD3 = "".join(bytes([b]).decode("iso-8859-7", "ignore") for b in range(0xE0, 0xF0))
_LEAD4 = "".join(bytes([b]).decode("iso-8859-7", "ignore") for b in range(0xF0, 0xF5))

_C = re.escape(_CONT)
# A maximal run of characters that might be the remains of one UTF-8 sequence.
_RUN = re.compile(f"[{re.escape(_LEAD2 + _LEAD3 + _LEAD4)}][{_C}]{{0,3}}")
_LOST_EMOJI = re.compile(f"π[{_C}]{{0,3}}\\s?")
_LEADING_SYMBOLS = re.compile(r"^(?:β[" + _C + r"]?){2,}\s*", re.M)  # "ββTitle": two lost symbols/emoji

_ELLIPSIS = re.compile("β¦")
_TILDE = re.compile(r"βΌ(?=\s?\d)")
_CONTRACTION = re.compile(r"(?:s|t|d|m|ll|re|ve)\b")

_MARKS = re.compile(r"[A-Za-z]β(?:s|t|ll|re|ve)\b|\sβ\s|^ββ|Β·|π[" + _C + r"]", re.M)


def looks_damaged(text: str) -> bool:
    """True when `text` carries at least two marks of the lossy ISO-8859-7 variant."""
    count = 0
    for _ in _MARKS.finditer(text):
        count += 1
        if count >= 2:
            return True
    return False


def _exact(m: re.Match[str]) -> str:
    """Decode a run whose bytes all survived; leave it when they did not."""
    run = m.group(0)
    try:
        data = run.encode("iso-8859-7")
        return data.decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return run


def _bare_beta(line: str) -> str:
    """Read each lone ``β`` (a character whose bytes were all lost) from its neighbours.

    Quotes are paired left to right on the line, so ``authorsβ router`` (no open
    quote) is an apostrophe while ``βInceptionβ,`` is a quoted word.
    """
    out: list[str] = []
    open_quotes = 0
    n = len(line)
    for i, ch in enumerate(line):
        if ch != "β":
            out.append(ch)
            continue
        before = line[i - 1] if i else ""
        after = line[i + 1] if i + 1 < n else ""
        if before.isalpha() and _CONTRACTION.match(line, i + 1):
            out.append("’")
        elif not before and after in " \t":
            out.append("•")
        elif before in " \t" and after in " \t" and before and after:
            out.append("—")
        elif (not before or before in " \t([") and (after.isalnum() or after in "@#"):
            out.append("“")
            open_quotes += 1
        elif (before.isalnum() or before in ".,!?%)") and (not after or after in " \t,.;:!?)]"):
            if open_quotes:
                out.append("”")
                open_quotes -= 1
            else:
                out.append("’" if before in "sS" else "”")
        else:
            out.append(ch)  # not certain: leave it
    return "".join(out)


def repair_lossy(text: str) -> str:
    """Step 2 only: the table for the lossy variant (see module doc)."""
    text = _LEADING_SYMBOLS.sub("", text)
    text = _LOST_EMOJI.sub("", text)
    text = _ELLIPSIS.sub("…", text)
    text = _TILDE.sub("∼", text)
    text = _RUN.sub(_exact, text)
    return "\n".join(_bare_beta(line) if "β" in line else line for line in text.split("\n"))


def repair(text: str) -> str:
    """ftfy, then the lossy-variant table when the text shows its marks."""
    text = ftfy.fix_text(text, normalization="NFC")
    if looks_damaged(text):
        text = repair_lossy(text)
    return text


def has_mojibake_chars(value: str) -> bool:
    """True when `value` holds characters this variant produces (Greek-codepage leftovers)."""
    return any(ch in _LEAD2 or ch in _LEAD3 or ch in _LEAD4 or ch in _CONT for ch in value if not ch.isascii())
