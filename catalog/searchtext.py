"""The derived text the full-text index sees, and the same treatment for queries.

FTS5's unicode61 tokenizer splits on anything that is not a letter or digit, which
is right for Russian and English but leaves Chinese as one long token. So text is
prepared in Python first: NFKC, casefold, ё→е, and CJK runs segmented with jieba
(``cut_for_search`` for documents, which also emits the shorter words inside long
ones, so a query segmented with plain ``cut`` finds them).

The segmenter is rjieba (jieba-rs, the same dictionary and algorithm in Rust): on our
Chinese samples it gives exactly jieba's words at about 15× the speed, which matters
because every ingested post passes through here (tests/test_searchtext.py keeps the
two equal). Python jieba stays as the fallback where rjieba has no wheel.
"""

from __future__ import annotations

import logging
import re
import threading
import unicodedata

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


def match_expression(terms: list[list[str]]) -> str:
    """An FTS5 MATCH string where every token is a quoted string: phrases ANDed together."""
    phrases = []
    for tokens in terms:
        quoted = ['"' + t.replace('"', '""') + '"' for t in tokens]
        # Chinese words are not adjacent in the index (cut_for_search interleaves the
        # sub-words of long words), so they are ANDed; other pieces form a phrase.
        joiner = " AND " if any(_CJK_RUN.search(t) for t in tokens) else " + "
        phrases.append(quoted[0] if len(quoted) == 1 else "(" + joiner.join(quoted) + ")")
    return " AND ".join(phrases)
