"""ASCII folding of titles and names (Russian transliterated), for slugs and BibTeX keys.

A catalog-level module, not part of the site generator: `catalog.bibtex` needs it too, and
the site generator imports `catalog.bibtex`.
"""

from __future__ import annotations

import unicodedata

_CYRILLIC = dict(zip(
    "абвгдеёжзийклмнопрстуфхцчшщъыьэюяіїєў",
    ["a", "b", "v", "g", "d", "e", "e", "zh", "z", "i", "y", "k", "l", "m", "n", "o", "p", "r", "s", "t", "u",
     "f", "kh", "ts", "ch", "sh", "shch", "", "y", "", "e", "yu", "ya", "i", "yi", "ye", "w"],
))


def ascii_fold(text: str) -> str:
    """Lowercase ASCII approximation: Cyrillic transliterated, accents dropped, the rest removed."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = "".join(_CYRILLIC.get(ch, ch) for ch in text)
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
