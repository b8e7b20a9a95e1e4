"""Reading bytes as text: UTF-8 first, whatever a file or page claims about itself.

Declared charsets (``<meta charset>``, HTTP headers) are wrong often enough on
scraped pages that we do not trust them: every input is decoded as UTF-8 (a BOM is
dropped), and only when that fails do we fall back, with a warning, to the
declared charset if it decodes cleanly, else to UTF-8 with U+FFFD for the bad bytes.
Nothing is ever silently mis-decoded as Latin-1.
"""

from __future__ import annotations

import codecs
import re
import warnings
from pathlib import Path

from scrapers.errors import ParseError


class DecodingWarning(UserWarning):
    """Input was not valid UTF-8 and was decoded with a fallback."""


_META_CHARSET = re.compile(rb"""<meta[^>]+charset=["']?([A-Za-z0-9_.:-]+)""", re.I)


def declared_charset(data: bytes) -> str | None:
    m = _META_CHARSET.search(data[:4096])
    if not m:
        return None
    name = m.group(1).decode("ascii", "replace")
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def decode_bytes(data: bytes, *, source: str = "<input>", declared: str | None = None) -> str:
    """`data` as text: UTF-8 (BOM dropped); on failure warn and fall back (see module doc)."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        first_bad = exc.start
    for name in (declared, declared_charset(data)):
        if name and codecs.lookup(name).name not in ("utf-8", "utf-8-sig"):
            try:
                text = data.decode(name)
            except (UnicodeDecodeError, LookupError):
                continue
            warnings.warn(f"{source}: not UTF-8 (byte {first_bad}); decoded as declared {name}",
                          DecodingWarning, stacklevel=2)
            return text
    warnings.warn(f"{source}: not UTF-8 (byte {first_bad}); undecodable bytes replaced with U+FFFD",
                  DecodingWarning, stacklevel=2)
    return data.decode("utf-8-sig", errors="replace")


def read_text(path: str | Path) -> str:
    """A whole file as text (for the small page and dump formats), or ParseError."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ParseError(f"cannot read: {exc.strerror or exc}", source=str(path)) from None
    return decode_bytes(data, source=str(path))


def head_text(head: bytes) -> str:
    """The first bytes of a file as text for format sniffing (a cut character is harmless)."""
    return head.decode("utf-8-sig", errors="replace")
