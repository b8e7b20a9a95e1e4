"""Text normalisation shared by every reader: Unicode, hashtags, arXiv ids, links, language."""

from __future__ import annotations

import re
import unicodedata
from typing import Iterable

from scrapers.records import Link

# ---------------------------------------------------------------- Unicode

_ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"), None)


def clean_text(text: str) -> str:
    """NFKC, no zero-width characters, unified newlines, no trailing spaces, no runs of blank lines."""
    text = unicodedata.normalize("NFKC", text).translate(_ZERO_WIDTH)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = [line.rstrip() for line in text.split("\n")]
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip()


# ---------------------------------------------------------------- hashtags

# A hashtag starts after a non-word, non-URL character; its body is Unicode letters,
# digits and "_" (\w in Python's Unicode regexes is exactly that).
_HASHTAG = re.compile(r"(?<![\w/#&?=.-])#(\w+)")
_URL = re.compile(r"(?:https?://|www\.)\S+|\b(?:[a-z0-9-]+\.)+(?:org|com|io|net|ai|fm|me|ru|cn|dev)/\S*", re.I)


def normalize_hashtag(tag: str) -> str:
    """``#NeurIPSConf19`` -> ``neuripsconf19`` (NFKC, casefolded, ``#`` stripped)."""
    return unicodedata.normalize("NFKC", tag).lstrip("#").casefold()


def extract_hashtags(text: str) -> tuple[str, ...]:
    """Hashtags in order of first appearance, never taken from inside a URL."""
    without_urls = _URL.sub(" ", text)
    seen: dict[str, None] = {}
    for m in _HASHTAG.finditer(without_urls):
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
# An id is only trusted with context: an arxiv.org URL, an "arXiv:" prefix, or (new
# style only) standing alone as a token — never inside a longer number, date or version.
_ARXIV_URL = re.compile(
    rf"arxiv\.org/(?:abs|pdf|html|format)/(?:{_NEW_ID}|{_OLD_ID})(?:\.pdf)?", re.I)
_ARXIV_PREFIX = re.compile(rf"\barxiv:\s?(?:{_NEW_ID}|{_OLD_ID})", re.I)
_BARE_NEW = re.compile(rf"(?<![\w./:-]){_NEW_ID}(?!\w|[./-]\d)")
_BARE_OLD = re.compile(rf"(?<![\w./-]){_OLD_ID}(?![\w/])")


def _id_and_version(m: re.Match) -> tuple[str, int | None]:
    groups = m.groupdict()
    if groups.get("new"):
        ident, v = groups["new"], groups.get("newv")
    else:
        ident, v = m.group("old"), m.group("oldv")
    return ident, int(v) if v else None


def extract_arxiv(text: str) -> tuple[tuple[str, ...], tuple[tuple[str, int], ...]]:
    """arXiv ids (version-less, in order) and the versions the text named.

    ``arxiv.org/pdf/2004.13342v2.pdf`` -> ids ``("2004.13342",)``, versions ``(("2004.13342", 2),)``.
    Bare new-style ids (``1807.03819v3``) count only as a standalone token; a phone number,
    a date (``2020.04.27``) or a version string (``1.2004.13``) never yields an id.
    """
    found: dict[str, int | None] = {}
    spans: list[tuple[int, int]] = []
    for rx in (_ARXIV_URL, _ARXIV_PREFIX, _BARE_NEW, _BARE_OLD):
        for m in rx.finditer(text):
            if any(a <= m.start() < b for a, b in spans):
                continue
            spans.append(m.span())
            ident, version = _id_and_version(m)
            if version is not None or ident not in found:
                found[ident] = version if version is not None else found.get(ident)
    ordered = sorted(found, key=lambda i: text.find(i))
    versions = tuple((i, found[i]) for i in ordered if found[i] is not None)
    return tuple(ordered), versions


def normalize_arxiv_id(value: str) -> tuple[str, int | None]:
    """``arXiv:1807.03819v3`` / ``https://arxiv.org/abs/hep-th/9901001`` -> (id, version)."""
    ids, versions = extract_arxiv(value.strip() if "arxiv" in value.lower() else f"arXiv:{value.strip()}")
    if not ids:
        raise ValueError(f"not an arXiv id: {value!r}")
    return ids[0], dict(versions).get(ids[0])


# ---------------------------------------------------------------- links

_LINK = re.compile(
    r"(?:https?://|www\.)[^\s<>\"'«»()\[\]{}]+"
    r"|(?<![\w@/.])(?:arxiv\.org|github\.com|gitlab\.com|paperswithcode\.com|colab\.research\.google\.com"
    r"|openreview\.net|huggingface\.co)/[^\s<>\"'«»()\[\]{}]+",
    re.I,
)
_TRAILING = ".,;:!?…»)'\""


def classify_link(url: str) -> str:
    u = url.lower()
    if "arxiv.org/" in u:
        return "arxiv"
    if "github.com/" in u or "github.io" in u:
        return "github"
    if any(h in u for h in ("gitlab.com/", "paperswithcode.com/", "colab.research.google.com/", "huggingface.co/")):
        return "code"
    if any(h in u for h in ("medium.com/", "blog", "telegra.ph/", "kexue.fm/", "habr.com/", "substack.com/")):
        return "blog"
    return "other"


def normalize_url(url: str) -> str:
    url = url.rstrip(_TRAILING)
    if not re.match(r"https?://", url, re.I):
        url = "https://" + url
    return url


def extract_links(text: str, extra: Iterable[str] = ()) -> tuple[Link, ...]:
    """Links in order, schemeless ones (``arxiv.org/abs/…``) given ``https://``; `extra` adds hidden hrefs."""
    seen: dict[str, None] = {}
    for url in [m.group(0) for m in _LINK.finditer(text)] + list(extra):
        if url:
            seen.setdefault(normalize_url(url), None)
    return tuple(Link(u, classify_link(u)) for u in seen)  # type: ignore[arg-type]


# ---------------------------------------------------------------- language

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_CYRILLIC = re.compile(r"[\u0400-\u04ff]")
_LATIN = re.compile(r"[A-Za-z]")
_ARABIC = re.compile(r"[\u0600-\u06ff]")


def detect_language(text: str) -> str | None:
    """ru / en / zh / ar by script counts; None when the text has too few letters to tell.

    A script heuristic is enough for what the catalog needs (a filter between the
    channel languages we read) and costs nothing; URLs are ignored so an English
    link does not make a Russian post English.
    """
    body = _URL.sub(" ", text)
    counts = {
        "zh": len(_CJK.findall(body)) * 3,  # one Han character carries about a word
        "ru": len(_CYRILLIC.findall(body)),
        "en": len(_LATIN.findall(body)),
        "ar": len(_ARABIC.findall(body)),
    }
    lang, n = max(counts.items(), key=lambda kv: kv[1])
    return lang if n >= 3 else None
