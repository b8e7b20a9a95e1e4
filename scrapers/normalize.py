"""Text normalisation shared by every reader: Unicode, hashtags, arXiv ids, links, language.

These run on every post of every input, so each pattern starts with a literal or
a character class (which lets Python's regex engine skip ahead in C) and context
checks that would need a look-behind are done in Python on the few candidates.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Iterable

from scrapers.records import Link

# ---------------------------------------------------------------- Unicode

_ZERO_WIDTH_RX = re.compile("[\u200b\u200c\u200d\u2060\ufeff]")


def clean_text(text: str) -> str:
    """NFKC, no zero-width characters, unified newlines, no trailing spaces, no runs of blank lines."""
    text = unicodedata.normalize("NFKC", text)
    if _ZERO_WIDTH_RX.search(text):
        text = _ZERO_WIDTH_RX.sub("", text)
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    out: list[str] = []
    for line in text.split("\n"):
        line = line.rstrip()
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip()


# ---------------------------------------------------------------- links

# Case-sensitive on purpose: IGNORECASE stops the engine from skipping ahead to the
# first letter, which made these scans several times slower. Hosts are lowercase in practice.
_SCHEME_LINK = re.compile(r"(?:https?://|HTTPS?://|www\.)[^\s<>\"'«»()\[\]{}]+")
_BARE_HOSTS = ("arxiv.org/", "github.com/", "gitlab.com/", "paperswithcode.com/", "colab.research.google.com/",
               "openreview.net/", "huggingface.co/", "doi.org/")
_BARE_LINK = re.compile(
    r"(?:arxiv\.org|github\.com|gitlab\.com|paperswithcode\.com|colab\.research\.google\.com|openreview\.net"
    r"|huggingface\.co|doi\.org)/[^\s<>\"'«»()\[\]{}]+")
_TRAILING = ".,;:!?…»)'\""


def _link_spans(text: str) -> list[tuple[int, int]]:
    """Spans of links: with a scheme or www., or schemeless on a known host (``arxiv.org/abs/…``)."""
    spans = [m.span() for m in _SCHEME_LINK.finditer(text)] if ("://" in text or "www." in text) else []
    if any(h in text for h in _BARE_HOSTS):
        for m in _BARE_LINK.finditer(text):
            before = text[m.start() - 1] if m.start() else " "
            if not (before.isalnum() or before in "@/.") and not any(a <= m.start() < b for a, b in spans):
                spans.append(m.span())
        spans.sort()
    return spans


def strip_links(text: str, spans: list[tuple[int, int]] | None = None) -> str:
    """The text with every link replaced by a space (for hashtag and language analysis)."""
    spans = _link_spans(text) if spans is None else spans
    if not spans:
        return text
    parts, last = [], 0
    for a, b in spans:
        parts.append(text[last:a])
        last = b
    parts.append(text[last:])
    return " ".join(parts)


# First match wins, so the specific pages (a paper page on paperswithcode) come before
# their hosts (paperswithcode's code listings). A link kind names what a link points at.
LINK_KINDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("arxiv", ("arxiv.org/", "alphaxiv.org/abs/", "alphaxiv.org/overview/", "huggingface.co/papers/",
               "doi.org/10.48550/arxiv.")),
    ("paper", ("paperswithcode.com/paper/", "openreview.net/forum", "openreview.net/pdf",
               "semanticscholar.org/paper/", "aclanthology.org/")),
    ("github", ("github.com/", "github.io")),
    ("code", ("gitlab.com/", "paperswithcode.com/", "colab.research.google.com/", "huggingface.co/")),
    ("blog", ("medium.com/", "blog", "telegra.ph/", "kexue.fm/", "habr.com/", "substack.com/")),
)


def classify_link(url: str) -> str:
    u = url.lower()
    for kind, needles in LINK_KINDS:
        if any(n in u for n in needles):
            return kind
    return "other"


def normalize_url(url: str) -> str:
    url = url.rstrip(_TRAILING)
    if not re.match(r"https?://", url, re.I):
        url = "https://" + url
    return url


def extract_links(text: str, extra: Iterable[str] = (), spans: list[tuple[int, int]] | None = None
                  ) -> tuple[Link, ...]:
    """Links in order, schemeless ones (``arxiv.org/abs/…``) given ``https://``; `extra` adds hidden hrefs."""
    spans = _link_spans(text) if spans is None else spans
    seen: dict[str, None] = {}
    for url in [text[a:b] for a, b in spans] + list(extra):
        if url:
            seen.setdefault(normalize_url(url), None)
    return tuple(Link(u, classify_link(u)) for u in seen)  # type: ignore[arg-type]


# ---------------------------------------------------------------- hashtags

# A hashtag's body is Unicode letters, digits and "_" (\w in Python's Unicode regexes).
_HASHTAG = re.compile(r"#(\w+)")
_NOT_BEFORE_HASHTAG = set("/#&?=.-")


def normalize_hashtag(tag: str) -> str:
    """``#NeurIPSConf19`` -> ``neuripsconf19`` (NFKC, casefolded, ``#`` stripped)."""
    return unicodedata.normalize("NFKC", tag).lstrip("#").casefold()


def extract_hashtags(text: str, *, without_links: bool = False) -> tuple[str, ...]:
    """Hashtags in order of first appearance, never taken from inside a URL or a word (``C#``)."""
    if "#" not in text:
        return ()
    if not without_links:
        text = strip_links(text)
    seen: dict[str, None] = {}
    for m in _HASHTAG.finditer(text):
        before = text[m.start() - 1] if m.start() else " "
        if before.isalnum() or before == "_" or before in _NOT_BEFORE_HASHTAG:
            continue
        tag = normalize_hashtag(m.group(1))
        if tag and not tag.isdigit():  # "#1" is a number, not a topic
            seen.setdefault(tag, None)
    return tuple(seen)


# ---------------------------------------------------------------- arXiv ids

_OLD_ARCHIVES = (
    "astro-ph|cond-mat|gr-qc|hep-ex|hep-lat|hep-ph|hep-th|math-ph|nlin|nucl-ex|nucl-th|physics|quant-ph|"
    "math|cs|q-bio|q-fin|stat|eess|econ|cmp-lg|chao-dyn|solv-int|patt-sol|adap-org|comp-gas|alg-geom|"
    "dg-ga|funct-an|q-alg|mtrl-th|supr-con|acc-phys|ao-sci|atom-ph|bayes-an|chem-ph|plasm-ph"
)
# New-style ids: YYMM.NNNN from 0704 to 1412, YYMM.NNNNN from 1501 on; month 01-12.
_NEW_ID = (r"(?P<new>(?:0[7-9]|1[0-4])(?:0[1-9]|1[0-2])\.\d{4}(?!\d)"
           r"|(?:1[5-9]|[2-9]\d)(?:0[1-9]|1[0-2])\.\d{5}(?!\d))(?:v(?P<newv>\d{1,3}))?")
_OLD_ID = rf"(?P<old>(?:{_OLD_ARCHIVES})(?:\.[A-Z]{{2}})?/\d{{7}})(?:v(?P<oldv>\d{{1,3}}))?"
# Cheap candidates first; each is then checked in a small window around it.
_CANDIDATE = re.compile(r"\d{4}\.\d{4}|/\d{7}")
_NEW_RX = re.compile(_NEW_ID)
_OLD_RX = re.compile(rf"(?:{_OLD_ARCHIVES})(?:\.[A-Z]{{2}})?/\d{{7}}(?:v\d{{1,3}})?", re.I)
_OLD_FULL = re.compile(_OLD_ID, re.I)
# Where an id counts whatever the character before it: the ONE table of the places an
# arXiv id is written. Each entry is (name, regex for the text right before the id, an
# example); tests/test_normalize.py checks every entry with its example. Anywhere else an
# id counts only as a standalone token (``1807.03819v3``), never inside a longer number.
ARXIV_ID_CONTEXTS: tuple[tuple[str, str, str], ...] = (
    ("arxiv-url", r"arxiv\.org/(?:abs|pdf|html|format)/", "https://arxiv.org/pdf/2307.12037v2.pdf"),
    ("export-arxiv-url", r"export\.arxiv\.org/(?:abs|pdf)/", "http://export.arxiv.org/abs/2307.12037"),
    ("alphaxiv-url", r"alphaxiv\.org/(?:abs|overview|pdf)/", "https://www.alphaxiv.org/abs/2307.12037"),
    ("huggingface-papers", r"huggingface\.co/papers/", "https://huggingface.co/papers/2307.12037"),
    ("arxiv-doi", r"10\.48550/arxiv\.", "https://doi.org/10.48550/arXiv.2307.12037"),
    ("arxiv-label", r"(?:^|[^\w])arxiv:\s?", "arXiv: 2307.12037"),
)
_CONTEXT_BEFORE = re.compile("(?:" + "|".join(f"(?:{rx})" for _, rx, _ in ARXIV_ID_CONTEXTS) + ")$", re.I)


def _has_context(text: str, start: int, end: int, old: bool) -> bool:
    """An id counts right after one of `ARXIV_ID_CONTEXTS`, or standing alone as a token."""
    if _CONTEXT_BEFORE.search(text, max(0, start - 40), start):
        return True
    prev = text[start - 1] if start else " "
    nxt = text[end:end + 2]
    if prev.isalnum() or prev in "_./:-" + ("" if old else "+"):
        return False  # inside a longer number, a date, a version string or a path
    if old:
        return not nxt or not (nxt[:1].isalnum() or nxt[:1] in "_/")  # ("" is in every string)
    # "1807.03819." ends a sentence; "2004.13342.5" or "2004.13342-1" is a longer number
    return not (nxt[:1].isalnum() or nxt[:1] == "_" or (nxt[:1] in "./-" and nxt[1:2].isdigit()))


def extract_arxiv(text: str) -> tuple[tuple[str, ...], tuple[tuple[str, int], ...]]:
    """arXiv ids (version-less, in order of appearance) and the versions the text named.

    ``arxiv.org/pdf/2004.13342v2.pdf`` -> ids ``("2004.13342",)``, versions ``(("2004.13342", 2),)``.
    Bare new-style ids (``1807.03819v3``) count only as a standalone token; a phone number,
    a date (``2020.04.27``) or a version string (``1.2004.13``) never yields an id.
    """
    found: dict[str, int | None] = {}
    for cand in _CANDIDATE.finditer(text):
        if cand.group(0)[0] == "/":  # old style: the archive name sits before the slash
            lo = max(0, cand.start() - 12)
            m = None
            for m_ in _OLD_RX.finditer(text, lo, cand.end() + 5):
                if m_.start() <= cand.start() < m_.end():
                    m = m_
            if m is None:
                continue
            full = _OLD_FULL.fullmatch(m.group(0))
            ident, version = full.group("old"), full.group("oldv")
            if not _has_context(text, m.start(), m.end(), old=True):
                continue
            # canonical old-style id: archive without the subject class ("math.GT/0309136" -> "math/0309136")
            ident = ident[: ident.index("/")].split(".")[0].lower() + ident[ident.index("/"):]
        else:
            m = _NEW_RX.match(text, cand.start())
            if m is None or not _has_context(text, m.start(), m.end(), old=False):
                continue
            ident, version = m.group("new"), m.group("newv")
        v = int(version) if version else None
        if v is not None or ident not in found:
            found[ident] = v if v is not None else found.get(ident)
    versions = tuple((i, v) for i, v in found.items() if v is not None)
    return tuple(found), versions


def normalize_arxiv_id(value: str) -> tuple[str, int | None]:
    """``arXiv:1807.03819v3`` / ``https://arxiv.org/abs/hep-th/9901001`` -> (id, version)."""
    ids, versions = extract_arxiv(value.strip() if "arxiv" in value.lower() else f"arXiv:{value.strip()}")
    if not ids:
        raise ValueError(f"not an arXiv id: {value!r}")
    return ids[0], dict(versions).get(ids[0])


# ---------------------------------------------------------------- language

_SCRIPTS = {
    "zh": re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+"),
    "ru": re.compile(r"[\u0400-\u04ff]+"),
    "en": re.compile(r"[A-Za-z]+"),
    "ar": re.compile(r"[\u0600-\u06ff]+"),
}
_WEIGHT = {"zh": 3}  # one Han character carries about as much as a word's worth of letters
_SAMPLE_CHARS = 1000


_NON_LATIN_SHARE = 0.2


def detect_language(text: str, *, without_links: bool = False) -> str | None:
    """ru / en / zh / ar by script counts; None when the text has too few letters to tell.

    A script count is enough for what the catalog needs (a filter between the channel
    languages we read) and costs next to nothing; links are left out so an English
    URL does not make a Russian post English. Russian and Chinese posts quote English
    titles and terms all the time while English posts almost never carry Cyrillic or
    Han, so a non-Latin script wins once it is a fifth of the (weighted) letters.
    """
    body = text[:_SAMPLE_CHARS] if without_links else strip_links(text[:_SAMPLE_CHARS])
    counts = {lang: sum(map(len, rx.findall(body))) * _WEIGHT.get(lang, 1) for lang, rx in _SCRIPTS.items()}
    total = sum(counts.values())
    if total < 3:
        return None
    other = max((lang for lang in counts if lang != "en"), key=counts.__getitem__)
    if counts[other] >= 3 and counts[other] >= _NON_LATIN_SHARE * total:
        return other
    return max(counts, key=counts.__getitem__)


# ---------------------------------------------------------------- all at once

@dataclass(frozen=True)
class TextFacts:
    hashtags: tuple[str, ...]
    arxiv_ids: tuple[str, ...]
    arxiv_versions: tuple[tuple[str, int], ...]
    links: tuple[Link, ...]
    language: str | None


def analyze(text: str, hidden_links: Iterable[str] = ()) -> TextFacts:
    """Hashtags, arXiv ids, links and language of a clean post text, finding links once.

    `hidden_links` are hrefs not visible in the text (Telegram ``text_link``); they
    count as links and as places to find arXiv ids.
    """
    hidden = list(hidden_links)
    spans = _link_spans(text)
    bare = strip_links(text, spans)
    ids, versions = extract_arxiv(text + ("\n" + "\n".join(hidden) if hidden else ""))
    return TextFacts(
        hashtags=extract_hashtags(bare, without_links=True),
        arxiv_ids=ids,
        arxiv_versions=versions,
        links=extract_links(text, hidden, spans),
        language=detect_language(bare, without_links=True),
    )
