"""The derived text the full-text index sees, and the same treatment for queries.

FTS5's unicode61 tokenizer splits on anything that is not a letter or digit, which
is right for Russian and English but leaves Chinese as one long token. So text is
prepared in Python first: NFKC, casefold, ё→е, and CJK runs segmented with jieba
(``cut_for_search`` for documents, which also emits the shorter words inside long
ones, so a query segmented with plain ``cut`` finds them). Beside that text the index
holds its Snowball stems (`catalog.stemming`); a query term matches the stems and
ranks the typed form higher (`match_expression`).

The segmenter is rjieba (jieba-rs, the same dictionary and algorithm in Rust): on our
Chinese samples it gives exactly jieba's words at about 15× the speed, which matters
because every ingested post passes through here (tests/scrapers/test_searchtext.py keeps the
two equal). Python jieba stays as the fallback where rjieba has no wheel.
"""

from __future__ import annotations

import logging
import re
import threading
import unicodedata
from dataclasses import dataclass

from catalog.stemming import stem_token, tokens as stem_tokens

_CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_WORD = re.compile(r"\w+")
_segmenter_lock = threading.Lock()
_loaded = None


class _Jieba:
    """Python jieba behind the same two calls as rjieba (the reference, and the fallback)."""

    def __init__(self):
        import jieba

        jieba.setLogLevel(logging.WARNING)
        jieba.initialize()  # its dictionary takes ~1 s to load
        self._jieba = jieba

    def cut(self, text: str) -> list[str]:
        return list(self._jieba.cut(text))

    def cut_for_search(self, text: str) -> list[str]:
        return list(self._jieba.cut_for_search(text))


def _load(name: str):
    if name == "rjieba":
        import rjieba

        rjieba.cut("预热")  # builds its dictionary now, not inside the first ingest
        return rjieba
    return _Jieba()


def _segmenter():
    """The segmenter, loaded once: rjieba, or jieba where rjieba is not installed."""
    global _loaded
    if _loaded is None:
        with _segmenter_lock:
            if _loaded is None:
                try:
                    _loaded = _load("rjieba")
                except ImportError:
                    _loaded = _load("jieba")
    return _loaded


def fold(text: str) -> str:
    """Case- and form-insensitive text: NFKC, casefold, ё→е."""
    return unicodedata.normalize("NFKC", text).casefold().replace("ё", "е")


def _segment_cjk(text: str, *, for_query: bool, segmenter=None) -> str:
    if not _CJK_RUN.search(text):
        return text
    seg = segmenter or _segmenter()
    cut = seg.cut if for_query else seg.cut_for_search

    def spaced(m: re.Match) -> str:
        return " " + " ".join(w for w in cut(m.group(0)) if w.strip()) + " "

    return _CJK_RUN.sub(spaced, text)


def document_text(text: str, *, segmenter=None) -> str:
    """What goes into the index for a title or body (`segmenter`: for tests comparing segmenters)."""
    return _segment_cjk(fold(text), for_query=False, segmenter=segmenter)


def query_terms(query: str, *, segmenter=None) -> list[list[str]]:
    """A user query as a list of terms, each a list of tokens to match as a phrase.

    ``self-attention GPT-4`` -> ``[["self", "attention"], ["gpt", "4"]]``. Anything that
    is not a letter or digit is dropped, so no user string can reach FTS5 syntax.
    """
    terms = []
    for chunk in fold(query).split():
        tokens = _WORD.findall(_segment_cjk(chunk, for_query=True, segmenter=segmenter))
        if tokens:
            terms.append(tokens)
    return terms


@dataclass(frozen=True)
class Term:
    """One term of a query: its folded tokens (a phrase) and their stems.

    An ``exact`` term (a quoted phrase) matches the typed forms only; any other term
    matches every form of its words (their stems) and ranks higher where the typed
    form itself occurs.
    """

    tokens: tuple[str, ...]
    exact: bool = False

    @property
    def stems(self) -> tuple[str, ...]:
        return tuple(stem_token(p) for t in self.tokens for p in stem_tokens(t))

    @property
    def chinese(self) -> bool:
        # Chinese words are not adjacent in the index (cut_for_search interleaves the
        # sub-words of long words), so they are ANDed; other pieces form a phrase.
        return any(_CJK_RUN.search(t) for t in self.tokens)


_QUOTED = re.compile(r'"([^"]*)"')


def parse_query(query: str, *, segmenter=None) -> list[Term]:
    """A user query as terms, all of which a post must match.

    Each whitespace-separated word is a term (``self-attention`` a phrase of two
    tokens); a passage in balanced double quotes is one exact phrase. A lone quote is
    dropped like any other punctuation.
    """
    folded = fold(query)
    terms = []
    for phrase in _QUOTED.findall(folded):
        tokens = [t for piece in query_terms(phrase, segmenter=segmenter) for t in piece]
        terms.append(Term(tuple(tokens), exact=True))
    loose = _QUOTED.sub(" ", folded)
    terms += [Term(tuple(tokens)) for tokens in query_terms(loose, segmenter=segmenter)]
    # Both indexes split on "_": a token of underscores only has nothing to match.
    terms = [Term(tuple(t for t in term.tokens if stem_tokens(t)), term.exact) for term in terms]
    return [term for term in terms if term.tokens]


def _fts_phrase(tokens: tuple[str, ...], chinese: bool) -> str:
    quoted = ['"' + t.replace('"', '""') + '"' for t in tokens]
    return quoted[0] if len(quoted) == 1 else "(" + (" AND " if chinese else " + ").join(quoted) + ")"


def match_expression(terms: list[Term]) -> str:
    """An FTS5 MATCH string where every token is a quoted string: the terms ANDed together.

    A term matches the stem columns; its typed form, ORed in over the exact columns,
    adds nothing to what matches (a typed form always has its stem beside it) but adds
    its own bm25 score, so a post with the form typed ranks above one with another
    form. An exact term matches the exact columns only.
    """
    parts = []
    for term in terms:
        exact = "{title body}: " + _fts_phrase(term.tokens, term.chinese)
        if term.exact:
            parts.append(exact)
        else:
            parts.append(f"({exact} OR {{title_stem body_stem}}: {_fts_phrase(term.stems, term.chinese)})")
    return " AND ".join(parts)
