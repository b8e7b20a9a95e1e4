"""The site's search: a Pagefind index of the built HTML, split into fragments fetched per query.

mkdocs' own search writes one JSON file with every page's text, which each visitor
downloads and parses before the first result (43 MB at 10k posts). Pagefind
(``pagefind-bin-extended`` on PyPI ships its binary) reads the built site and writes
``pagefind/``: a small entry file, then index chunks and page fragments that a query
loads on demand. The Search page (content/pages/search.md) shows Pagefind's UI.

What is indexed: the article of each page that does not set ``search: exclude``
(content/overrides/main.html marks it ``data-pagefind-body``); filters come from
``data-pagefind-filter`` on posts (type, source, language, tag) and papers.

Language: the whole site is indexed as one language, ``zh``, so that Pagefind's
extended build segments Chinese both in the pages and in the query, and one index
answers Russian, English and Chinese alike (per-language indexes would only answer the
language of the page the search box sits on). Latin and Cyrillic words are still split
on spaces and punctuation; there is no stemming, but the last word of a query matches
as a prefix. For Chinese, `cjk_terms` adds jieba's search-mode words of a post (the
shorter words inside long ones: 注意力 inside 自注意力) in a hidden paragraph, so a word
is found however the segmenter cut the text around it.
"""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

from catalog.errors import DigestError

BUNDLE = "pagefind"
LANGUAGE = "zh"
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


def cjk_terms(text: str) -> str:
    """The Chinese words (2+ characters) jieba finds in `text`, each once, space-separated."""
    if not _CJK.search(text):
        return ""
    from catalog.searchtext import document_text

    words = (w for w in document_text(text).split() if len(w) >= 2 and all(_CJK.match(c) for c in w))
    return " ".join(dict.fromkeys(words))


def pagefind_executable() -> Path:
    try:
        import pagefind_bin_extended
    except ImportError:
        raise DigestError("the site search needs Pagefind: pip install 'pagefind-bin-extended>=1.3,<2'") from None
    try:
        return Path(pagefind_bin_extended.get_executable())
    except (FileNotFoundError, OSError) as exc:
        raise DigestError(f"the Pagefind binary is missing from pagefind-bin-extended: {exc}") from None


def index_site(site_dir: Path) -> float:
    """Write `site_dir`/pagefind (replacing an older one); returns the seconds it took."""
    t0 = time.perf_counter()
    cmd = [str(pagefind_executable()), "--site", str(site_dir), "--output-subdir", BUNDLE,
           "--force-language", LANGUAGE, "--quiet"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DigestError(f"Pagefind could not index {site_dir}: {exc}") from None
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise DigestError(f"Pagefind failed on {site_dir}: {detail[0]}")
    return time.perf_counter() - t0
