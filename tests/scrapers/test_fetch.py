"""The polite fetcher against a local HTTP server serving pages we write ourselves."""

from __future__ import annotations

import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from scrapers.fetch import FetchError, Fetcher, channel_url, fetch_channel
from test_tme_preview import page, widget

N_POSTS, PER_PAGE = 60, 20


def channel_page(before: int | None) -> str:
    top = (before - 1) if before else N_POSTS
    ids = list(range(max(1, top - PER_PAGE + 1), top + 1))
    widgets = [widget(i, f"Post number {i} about attention", when=f"2021-03-{1 + i // 3:02d}T10:00:00+00:00")
               for i in ids]
    return page(widgets, before=ids[0] if ids[0] > 1 else None)


class Handler(BaseHTTPRequestHandler):
    log: list[str] = []
    fail_next: list[int] = []

    def do_GET(self):  # noqa: N802
        type(self).log.append(self.path)
        if type(self).fail_next:
            code = type(self).fail_next.pop(0)
            self.send_response(code)
            self.send_header("Retry-After", "0")
            self.end_headers()
            return
        parts = urlsplit(self.path)
        if not parts.path.startswith("/s/papers_daily"):
            self.send_response(404)
            self.end_headers()
            return
        before = parse_qs(parts.query).get("before", [None])[0]
        body = channel_page(int(before) if before else None).encode("utf-8")
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=windows-1251")  # a lie: we decode UTF-8 first
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    Handler.log, Handler.fail_next = [], []
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/s/papers_daily"
    srv.shutdown()
    srv.server_close()


class FakeTime:
    def __init__(self):
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.sleeps.append(s)
        self.now += s


def fetcher(t: FakeTime, **kw) -> Fetcher:
    return Fetcher(clock=t.clock, sleep=t.sleep, timeout=5, **kw)


def test_walks_back_page_by_page_with_a_second_between_requests(server):
    t = FakeTime()
    posts = list(fetch_channel(server, max_pages=None, fetcher=fetcher(t)))
    assert sorted(int(p.external_id) for p in posts) == list(range(1, N_POSTS + 1))
    assert Handler.log == ["/s/papers_daily", "/s/papers_daily?before=41", "/s/papers_daily?before=21"]
    assert t.sleeps == [1.0, 1.0]  # the fake clock does not move during a request: a full second each time
    assert posts[0].views == 1200 and posts[0].text.startswith("Post number 60")


def test_max_pages_since_and_stop_at_id(server):
    t = FakeTime()
    assert len(list(fetch_channel(server, max_pages=1, fetcher=fetcher(t)))) == PER_PAGE
    Handler.log.clear()
    newer = list(fetch_channel(server, max_pages=None, stop_at_id=55, fetcher=fetcher(t)))
    assert [int(p.external_id) for p in newer] == [60, 59, 58, 57, 56] and len(Handler.log) == 1
    since = datetime(2021, 3, 15, tzinfo=timezone.utc)
    recent = list(fetch_channel(server, max_pages=None, since=since, fetcher=fetcher(t)))
    assert recent and all(p.published_at >= since for p in recent)
    assert min(int(p.external_id) for p in recent) == 42


def test_retries_with_exponential_backoff(server):
    t = FakeTime()
    Handler.fail_next = [503, 500]
    posts = list(fetch_channel(server, max_pages=1, fetcher=fetcher(t, backoff=2.0)))
    assert len(posts) == PER_PAGE and len(Handler.log) == 3
    assert t.sleeps == [2.0, 4.0]


def test_gives_up_with_a_clear_error(server):
    t = FakeTime()
    Handler.fail_next = [503] * 10
    with pytest.raises(FetchError, match=r"giving up after 3 attempts \(HTTP 503"):
        list(fetch_channel(server, fetcher=fetcher(t, retries=2)))
    Handler.fail_next = []
    with pytest.raises(FetchError, match="HTTP 404"):
        list(fetch_channel(server.replace("papers_daily", "nobody_here"), fetcher=fetcher(t)))


def test_connection_refused_is_retried_then_reported():
    t = FakeTime()
    with pytest.raises(FetchError, match="giving up"):
        list(fetch_channel("http://127.0.0.1:9/s/papers_daily", fetcher=fetcher(t, retries=1)))
    assert t.sleeps == [2.0]


@pytest.mark.parametrize("target, url, channel", [
    ("https://t.me/s/gonzo_ML", "https://t.me/s/gonzo_ML", "gonzo_ML"),
    ("t.me/gonzo_ML", "https://t.me/s/gonzo_ML", "gonzo_ML"),
    ("@gonzo_ML", "https://t.me/s/gonzo_ML", "gonzo_ML"),
    ("https://t.me/s/gonzo_ML?before=5", "https://t.me/s/gonzo_ML", "gonzo_ML"),
])
def test_channel_url(target, url, channel):
    assert channel_url(target) == (url, channel)


def test_bad_channel_url():
    with pytest.raises(FetchError):
        channel_url("https://t.me/s/")


def test_cli_ingests_url_and_stops_at_newest_on_rerun(server, cli, monkeypatch):
    import scrapers.fetch as fetch_mod

    t = FakeTime()
    monkeypatch.setattr(fetch_mod, "Fetcher", lambda: fetcher(t))
    result = cli("ingest", server, "--max-pages", "2", "--json")
    assert result.exit_code == 0, result.output
    assert '"posts_new": 40' in result.output
    Handler.log.clear()
    result = cli("ingest", server, "--json")
    assert result.exit_code == 0 and '"posts_new": 0' in result.output
    assert len(Handler.log) == 1  # one page: everything on it is already stored
    Handler.fail_next = [404]
    result = cli("ingest", server, "--full")
    assert result.exit_code == 1 and "HTTP 404" in result.output
