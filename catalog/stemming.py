"""Snowball stems of the derived search text, so a query finds every form of its words.

`catalog.searchtext` folds and segments a text (NFKC, casefold, ё→е, Chinese cut into
words); this module turns that derived text into a parallel text of stems, indexed
beside it on both engines. Each run of Cyrillic letters is stemmed as Russian and
each run of Latin letters as English (PyStemmer, the C build of Snowball); digits,
Chinese words and other scripts pass through unchanged, so a token like ``gpt4``
becomes ``gpt`` + ``4`` stemmed in place (``gpt4``) and ``регуляризации`` becomes
``регуляризац``, the stem of every case of that noun.

Tokens are the runs of letters and digits (no underscore): what FTS5's unicode61
tokenizer and the PostgreSQL index (``[^[:alnum:]]+`` as separators) both see, so
the stem text is tokenized the same way on both engines.
"""

from __future__ import annotations

import re
import threading

_TOKEN = re.compile(r"[^\W_]+")
# After casefold: Cyrillic lower case (with the Ukrainian/Belarusian letters), and Latin
# lower case with the Latin-1 letters (not ÷).
_CYRILLIC_RUN = re.compile(r"[\u0430-\u045f\u0461-\u04ff]+")
_LATIN_RUN = re.compile(r"[a-z\u00e0-\u00f6\u00f8-\u00ff]+")
_lock = threading.Lock()
_stemmers: dict[str, object] = {}


def _stemmer(language: str):
    """One PyStemmer object per language and thread: a Stemmer is not safe to share across threads."""
    key = f"{language}:{threading.get_ident()}"
    found = _stemmers.get(key)
    if found is None:
        import Stemmer  # PyStemmer

        with _lock:
            found = _stemmers.setdefault(key, Stemmer.Stemmer(language))
    return found


def stem_token(token: str) -> str:
    """The stem of one folded token: its Cyrillic runs as Russian, its Latin runs as English."""
    if token.isdigit():
        return token
    if _CYRILLIC_RUN.fullmatch(token):  # the common cases, without a substitution
        return _stemmer("russian").stemWord(token)
    if _LATIN_RUN.fullmatch(token):
        return _stemmer("english").stemWord(token)
    token = _CYRILLIC_RUN.sub(lambda m: _stemmer("russian").stemWord(m.group(0)), token)
    return _LATIN_RUN.sub(lambda m: _stemmer("english").stemWord(m.group(0)), token)


class _Stems(dict):
    """token -> stem, filled on first sight: a hit is one dict lookup from C (every ingested
    word passes here; through a Python-level cache it cost more than segmenting the text)."""

    LIMIT = 1 << 20  # distinct tokens kept (~100 MB at most); then it starts afresh

    def __missing__(self, token: str) -> str:
        if len(self) >= self.LIMIT:
            self.clear()
        stem = self[token] = stem_token(token)
        return stem


_stems = _Stems()


def tokens(derived: str) -> list[str]:
    """The tokens of derived text, as both engines' indexes split it."""
    return _TOKEN.findall(derived)


def stem_text(derived: str) -> str:
    """The stems of derived text (`catalog.searchtext.document_text`), one per token, space-separated."""
    return " ".join(map(_stems.__getitem__, _TOKEN.findall(derived)))
