"""Polite fetching of t.me/s/<channel> pages, newest first, going back page by page.

Politeness is the point: one request at a time, at least `min_interval` seconds
between requests (1 s by default), a timeout on each, a few retries with
exponential backoff on timeouts, connection errors, 429 and 5xx (honouring
``Retry-After``), an identifying User-Agent, and a hard page limit. The walk stops
as soon as it reaches a post we already have (`stop_at_id`, the newest stored id)
or one older than `since`, so a re-run costs one page.

`clock` and `sleep` are injectable, so tests check the spacing and the backoff
without waiting, against a local HTTP server.
"""

from __future__ import annotations

import re
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable, Iterator
from urllib.parse import urlencode, urlsplit, urlunsplit

from scrapers.errors import ParseError
from scrapers.records import PostRecord
from scrapers.textio import decode_bytes
from scrapers.tme_preview import parse_page

USER_AGENT = "paper-digest/0.1 (polite t.me/s reader; one request per second)"
MAX_PAGE_BYTES = 8 * 1024 * 1024
_RETRY_STATUS = {429, 500, 502, 503, 504}
_CHANNEL = re.compile(r"^[A-Za-z0-9_]{3,64}$")


class FetchError(ParseError):
    """A page could not be fetched (after retries) or was not a t.me/s page."""


@dataclass
class Fetcher:
    timeout: float = 20.0
    retries: int = 3
    backoff: float = 2.0  # first retry waits this long, then twice as long each time
    min_interval: float = 1.0
    user_agent: str = USER_AGENT
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    # When set, only URLs it accepts are fetched, redirects included: a redirect that
    # leaves the allowed hosts is not followed (catalog.follow_policy decides for a sync).
    allow_url: Callable[[str], bool] | None = None
    requests: int = field(default=0, init=False)
    _last: float | None = field(default=None, init=False, repr=False)

    def _wait_turn(self) -> None:
        if self._last is not None:
            wait = self.min_interval - (self.clock() - self._last)
            if wait > 0:
                self.sleep(wait)

    def get(self, url: str) -> str:
        """The page at `url` as text (decoded as UTF-8 first, see `scrapers.textio`)."""
        last_error = ""
        for attempt in range(self.retries + 1):
            self._wait_turn()
            delay = self.backoff * (2 ** attempt)
            try:
                self.requests += 1
                req = urllib.request.Request(url, headers={"User-Agent": self.user_agent,
                                                           "Accept": "text/html"})
                if self.allow_url is not None and not self.allow_url(url):
                    raise FetchError("refused: the address is not t.me or a mirror of this catalog", source=url)
                with self._opener().open(req, timeout=self.timeout) as resp:
                    data = resp.read(MAX_PAGE_BYTES + 1)
                    charset = resp.headers.get_content_charset()
                if len(data) > MAX_PAGE_BYTES:
                    raise FetchError(f"page larger than {MAX_PAGE_BYTES} bytes", source=url)
                return decode_bytes(data, source=url, declared=charset)
            except urllib.error.HTTPError as exc:
                last_error = f"HTTP {exc.code} {exc.reason}"
                if exc.code not in _RETRY_STATUS:
                    raise FetchError(last_error, source=url) from None
                retry_after = exc.headers.get("Retry-After") if exc.headers else None
                if retry_after and retry_after.strip().isdigit():
                    delay = max(delay, min(float(retry_after), 300.0))
            except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
                reason = getattr(exc, "reason", exc)
                last_error = f"{type(exc).__name__}: {reason}"
            finally:
                self._last = self.clock()
            if attempt < self.retries:
                self.sleep(delay)
        raise FetchError(f"giving up after {self.retries + 1} attempts ({last_error})", source=url)


    def _opener(self) -> urllib.request.OpenerDirector:
        if self.allow_url is None:
            return urllib.request.build_opener()
        return urllib.request.build_opener(_GuardedRedirects(self.allow_url))


class _GuardedRedirects(urllib.request.HTTPRedirectHandler):
    def __init__(self, allow_url: Callable[[str], bool]):
        self.allow_url = allow_url

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if not self.allow_url(newurl):
            raise FetchError(f"redirected to {urlsplit(newurl).netloc or newurl}, outside the allowed hosts:"
                             " not followed", source=req.full_url)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def channel_url(target: str) -> tuple[str, str]:
    """(page URL, channel) for ``https://t.me/s/name``, ``t.me/name``, ``@name`` or a test server URL."""
    target = target.strip()
    if target.startswith("@") and _CHANNEL.match(target[1:]):
        target = f"https://t.me/s/{target[1:]}"
    if not re.match(r"^https?://", target):
        target = "https://" + target
    parts = urlsplit(target)
    segments = [s for s in parts.path.split("/") if s]
    if segments and segments[0] == "s":
        segments = segments[1:]
    if not segments or not _CHANNEL.match(segments[0]):
        raise FetchError("not a channel URL: expected https://t.me/s/<channel>", source=target)
    channel = segments[0]
    return urlunsplit((parts.scheme, parts.netloc, f"/s/{channel}", "", "")), channel


def is_url(value: str) -> bool:
    return bool(re.match(r"^(?:https?://|t\.me/)", value.strip(), re.I))


def fetch_channel(target: str, *, max_pages: int | None = 10, since: datetime | None = None,
                  stop_at_id: int | None = None, fetcher: Fetcher | None = None) -> Iterator[PostRecord]:
    """Posts of a public channel, newest page first, until `max_pages`, `since` or `stop_at_id`."""
    fetcher = fetcher or Fetcher()
    base, channel = channel_url(target)
    before: int | None = None
    pages = 0
    while max_pages is None or pages < max_pages:
        url = base + (f"?{urlencode({'before': before})}" if before else "")
        html = fetcher.get(url)
        pages += 1
        try:
            page = parse_page(html, source_name=url, channel=channel)
        except ParseError as exc:
            raise FetchError(exc.message, source=url) from None
        reached_end = False
        for post in sorted(page.posts, key=lambda p: int(p.external_id), reverse=True):
            if stop_at_id is not None and int(post.external_id) <= stop_at_id:
                reached_end = True
                continue
            if since is not None and post.published_at is not None and post.published_at < since:
                reached_end = True
                continue
            yield post
        ids = [int(p.external_id) for p in page.posts]
        nxt = page.before if page.before is not None else (min(ids) if ids else None)
        if reached_end or not ids or nxt is None or (before is not None and nxt >= before) or nxt <= 1:
            return
        before = nxt
