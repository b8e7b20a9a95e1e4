"""arXiv sync against a local stand-in for the API (127.0.0.1, random port; never the network).

The stand-in answers ``id_list`` and ``search_query`` requests from Atom entries written
here (our own text), can be told to fail the next requests (HTTP 503, a stall, a
truncated body), and records every request with the client's port and User-Agent.

No test here depends on how fast the machine is: pacing and backoff run on a fake clock,
DNS goes through a resolver the test controls, and a "stall" holds its answer until the
test ends, so a client read timeout fires whatever the load.
"""

from __future__ import annotations

import gzip
import json
import socket
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse
from xml.sax.saxutils import escape

import pytest

from catalog.arxiv import (ArxivResponseError, ClientConfig, Transport, add, category_tag, parse_add_args,
                           split_version, sync)
from catalog.db import catalog_exists
from catalog.ingest import ingest_records
from catalog.papers import get_paper, list_papers, paper_titles
from catalog.search import search
from scrapers.records import PostRecord, SourceRecord


# ---------------------------------------------------------------- our own Atom entries

ENTRIES: dict[str, dict] = {
    "2004.13342": dict(
        version=1, title="DropHead: structured dropout\n   for multi-head attention",
        authors=["Wangchunshu Zhou", "Tao Ge", "Ke Xu", "Furu Wei", "Ming Zhou"],
        summary="  Whole attention heads are switched off at random while a\n Transformer trains,\n"
                "so no single head can dominate; a schedule for the drop rate helps further. ",
        primary="cs.CL", categories=["cs.CL", "cs.LG"], published="2020-04-28T08:40:11Z",
        updated="2020-04-28T08:40:11Z", comment="Findings of EMNLP 2020"),
    "1807.03819": dict(
        version=3, title="Universal Transformers", authors=["Mostafa Dehghani", "Stephan Gouws", "Oriol Vinyals",
                                                            "Jakob Uszkoreit", "Łukasz Kaiser"],
        summary="A self-attentive model applied recurrently over depth, with a per-position halting rule.",
        primary="cs.CL", categories=["cs.CL", "cs.LG", "stat.ML"], published="2018-07-10T17:36:04Z",
        updated="2019-03-05T14:40:52Z", journal_ref="ICLR 2019"),
    "hep-th/9901001": dict(
        version=2, title="A note on an old-style identifier", authors=["A. Author", "B. Écrivain"],
        summary="Pre-2007 papers carry their archive in the id; this entry stands in for one of them.",
        primary="hep-th", categories=["hep-th", "gr-qc"], published="1999-01-01T12:00:00Z",
        updated="1999-02-03T09:30:00Z", doi="10.0000/example.9901001"),
    "1901.00001": dict(
        version=2, title="A result that did not hold", authors=["C. Author"],
        summary="This paper has been withdrawn by the author due to an error in the main proof.",
        primary="math.CO", categories=["math.CO"], published="2019-01-01T00:00:01Z",
        updated="2019-02-01T00:00:01Z", comment="This paper has been withdrawn by the author"),
}


def entry_xml(arxiv_id: str, e: dict) -> str:
    vid = f"{arxiv_id}v{e['version']}"
    authors = "".join(f"<author><name>{escape(a)}</name></author>" for a in e["authors"])
    cats = "".join(f'<category term="{c}" scheme="http://arxiv.org/schemas/atom"/>' for c in e["categories"])
    extra = ""
    if e.get("comment"):
        extra += f"<arxiv:comment>{escape(e['comment'])}</arxiv:comment>"
    if e.get("journal_ref"):
        extra += f"<arxiv:journal_ref>{escape(e['journal_ref'])}</arxiv:journal_ref>"
    if e.get("doi"):
        extra += f"<arxiv:doi>{escape(e['doi'])}</arxiv:doi>"
    return (f"<entry><id>http://arxiv.org/abs/{vid}</id><updated>{e['updated']}</updated>"
            f"<published>{e['published']}</published><title>{escape(e['title'])}</title>"
            f"<summary>{escape(e['summary'])}</summary>{authors}{extra}"
            f'<link href="http://arxiv.org/abs/{vid}" rel="alternate" type="text/html"/>'
            f'<link title="pdf" href="http://arxiv.org/pdf/{vid}" rel="related" type="application/pdf"/>'
            f'<arxiv:primary_category term="{e["primary"]}" scheme="http://arxiv.org/schemas/atom"/>{cats}</entry>')


def feed_xml(entries: list[str], total: int | None = None) -> bytes:
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom" '
            'xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/" xmlns:arxiv="http://arxiv.org/schemas/atom">'
            '<title>test feed</title><id>http://arxiv.org/api/test</id><updated>2024-01-01T00:00:00-05:00</updated>'
            f"<opensearch:totalResults>{len(entries) if total is None else total}</opensearch:totalResults>"
            "<opensearch:startIndex>0</opensearch:startIndex>"
            f"<opensearch:itemsPerPage>{len(entries)}</opensearch:itemsPerPage>"
            + "".join(entries) + "</feed>").encode("utf-8")


def synthetic_entry(arxiv_id: str) -> dict:
    return dict(version=1, title=f"Synthetic paper {arxiv_id}", authors=["Test Author"],
                summary=f"Abstract of {arxiv_id}.", primary="cs.LG", categories=["cs.LG"],
                published="2021-01-05T00:00:00Z", updated="2021-01-05T00:00:00Z")


# ---------------------------------------------------------------- the local API stand-in

class FakeArxiv:
    def __init__(self):
        self.entries = dict(ENTRIES)
        self.queries: dict[str, bytes] = {}
        self.script: list = []  # what to do for the next requests: int status, "stall", "truncated", "html"
        self.requests: list[dict] = []
        self.released = threading.Event()  # set when the test ends: stalled answers may go then
        self.lock = threading.Lock()

    def respond(self, handler: BaseHTTPRequestHandler) -> None:
        url = urlparse(handler.path)
        args = {k: v[0] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        with self.lock:
            self.requests.append({"path": url.path, "args": args, "port": handler.client_address[1],
                                  "agent": handler.headers.get("User-Agent", ""), "target": handler.path,
                                  "accept_encoding": handler.headers.get("Accept-Encoding", "")})
            action = self.script.pop(0) if self.script else None
        if action == "stall":
            self.released.wait(60)
            return
        if isinstance(action, tuple):  # (status, Retry-After)
            return self.send(handler, action[0], b"slow down", "text/plain", {"Retry-After": action[1]})
        if isinstance(action, int):
            return self.send(handler, action, b"<html>temporarily unavailable</html>", "text/html")
        ids = [i for i in args.get("id_list", "").split(",") if i]
        if ids:
            entries = []
            for raw in ids:
                base, _, version = raw.partition("v") if raw[:1].isdigit() else (raw, "", "")
                e = self.entries.get(base)
                if e:
                    entries.append(entry_xml(base, dict(e, version=int(version)) if version else e))
            body = feed_xml(entries)
        else:
            body = self.queries.get(args.get("search_query", ""), feed_xml([]))
        if action == "truncated":
            body = body[: len(body) // 2]
        if action == "html":
            body = b"<html><body>captive portal</body></html>"
        if action == "gzip":
            return self.send(handler, 200, gzip.compress(body), "application/atom+xml", {"Content-Encoding": "gzip"})
        self.send(handler, 200, body, "application/atom+xml; charset=utf-8")

    @staticmethod
    def send(handler, status: int, body: bytes, ctype: str, headers: dict | None = None) -> None:
        try:
            handler.send_response(status)
            for key, value in (headers or {}).items():
                handler.send_header(key, value)
            handler.send_header("Content-Type", ctype)
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            handler.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test)


@pytest.fixture
def fake_arxiv():
    api = FakeArxiv()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: lets the test see one connection reused

        def do_GET(self):
            api.respond(self)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    api.url = f"http://127.0.0.1:{server.server_address[1]}/api/query"
    yield api
    api.released.set()
    server.shutdown()
    server.server_close()


class FakeClock:
    """Time that only moves when someone sleeps: pacing is checked without waiting."""

    def __init__(self):
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 6))
        self.now += seconds


def make_transport(api: FakeArxiv, clock: FakeClock | None = None, **cfg) -> Transport:
    clock = clock or FakeClock()
    cfg = {"delay_s": 3.0, "backoff_s": 2.0, "retries": 3, **cfg}
    return Transport(ClientConfig(api_url=api.url, **cfg), clock=clock, sleep=clock.sleep)


# ---------------------------------------------------------------- catalog helpers

SRC = SourceRecord(kind="telegram", handle="papers_test", title="Papers Test")


def post(n: int, text: str, ids: tuple[str, ...], hashtags: tuple[str, ...] = ()) -> PostRecord:
    return PostRecord(source=SRC, external_id=str(n), text=text, url=f"https://t.me/papers_test/{n}",
                      title=text.split("\n")[0][:60], hashtags=hashtags, arxiv_ids=ids,
                      published_at=datetime(2020, 5, n, 10, tzinfo=timezone.utc), language="en")


@pytest.fixture
def catalog_engine(engine):
    """Four posts that cite four arXiv ids, none fetched yet."""
    ingest_records(engine, [
        post(1, "DropHead drops whole heads\narxiv.org/abs/2004.13342 #nlp", ("2004.13342",), ("nlp",)),
        post(2, "Depth recurrence\narXiv:1807.03819v3 and arxiv.org/abs/2004.13342", ("1807.03819", "2004.13342")),
        post(3, "An old one: hep-th/9901001", ("hep-th/9901001",)),
        post(4, "Nobody knows this id: arXiv:2312.99999", ("2312.99999",)),
    ])
    return engine


def rows(engine, sql: str) -> list[tuple]:
    with engine.connect() as c:
        return [tuple(r) for r in c.exec_driver_sql(sql)]


def dump(engine) -> list[tuple]:
    out = []
    for table in ("paper", "tag", "paper_tag", "post_tag", "post_search"):
        cols = "*" if table != "paper" else "arxiv_id, version, title, authors, abstract, status, categories"
        out += [(table, *r) for r in rows(engine, f"SELECT {cols} FROM {table} ORDER BY 1, 2")]
    return out


# ---------------------------------------------------------------- unit pieces

def test_split_version_and_category_tags():
    assert split_version("1807.03819v3") == ("1807.03819", 3)
    assert split_version("hep-th/9901001") == ("hep-th/9901001", None)
    assert split_version("hep-th/9901001v12") == ("hep-th/9901001", 12)
    assert category_tag("cs.CL") == "cs.cl" and category_tag("hep-th") == "hep-th"


def test_add_arguments_split_into_ids_and_queries():
    ids, queries = parse_add_args(["arXiv:1807.03819v3", "https://arxiv.org/abs/hep-th/9901001",
                                   "cat:cs.CL AND ti:dropout", "2004.13342", "dropout"])
    assert ids == {"1807.03819": 3, "hep-th/9901001": None, "2004.13342": None}
    assert queries == ["cat:cs.CL AND ti:dropout", "dropout"]


# ---------------------------------------------------------------- sync

def test_sync_stores_metadata_tags_and_reindexes_posts(fake_arxiv, catalog_engine):
    report = sync(catalog_engine, transport=make_transport(fake_arxiv))
    assert (report.requested, report.fetched, report.not_found, report.requests) == (4, 3, 1, 1)
    assert report.pending == [] and not report.offline

    p = get_paper(catalog_engine, "2004.13342")
    assert p["title"] == "DropHead: structured dropout for multi-head attention"
    assert p["authors"] == ["Wangchunshu Zhou", "Tao Ge", "Ke Xu", "Furu Wei", "Ming Zhou"]  # order kept
    assert p["abstract"].startswith("Whole attention heads are switched off at random while a Transformer trains,")
    assert "  " not in p["abstract"] and "\n" not in p["abstract"]
    assert (p["primary_category"], p["categories"], p["tags"]) == ("cs.CL", ["cs.CL", "cs.LG"], ["cs.cl", "cs.lg"])
    assert p["published"] == "2020-04-28T08:40:11+00:00" and p["version"] == 1
    assert p["pdf_url"] == "http://arxiv.org/pdf/2004.13342v1" and p["comment"] == "Findings of EMNLP 2020"
    assert p["status"] == "ok" and p["fetched_at"]
    assert [x["id"] for x in p["posts"]] == [1, 2]

    # The version comes from the returned entry id; the catalog id stays version-less.
    ut = get_paper(catalog_engine, "arXiv:1807.03819v3")
    assert (ut["arxiv_id"], ut["version"], ut["journal_ref"]) == ("1807.03819", 3, "ICLR 2019")
    assert ut["authors"][-1] == "Łukasz Kaiser"
    old = get_paper(catalog_engine, "hep-th/9901001")
    assert (old["version"], old["doi"], old["tags"]) == (2, "10.0000/example.9901001", ["gr-qc", "hep-th"])
    assert get_paper(catalog_engine, "2312.99999")["status"] == "not_found"

    # Posts inherit the categories (hashtags stay hashtags) ...
    tags = rows(catalog_engine, "SELECT pt.post_id, t.name, pt.origin FROM post_tag pt JOIN tag t ON t.id = pt.tag_id"
                                " ORDER BY 1, 2")
    assert tags == [(1, "cs.cl", "arxiv-category"), (1, "cs.lg", "arxiv-category"), (1, "nlp", "hashtag"),
                    (2, "cs.cl", "arxiv-category"), (2, "cs.lg", "arxiv-category"), (2, "stat.ml", "arxiv-category"),
                    (3, "gr-qc", "arxiv-category"), (3, "hep-th", "arxiv-category")]
    # ... and become findable by words that only the paper's title or abstract holds.
    assert [h.id for h in search(catalog_engine, "halting")] == [2]
    assert {h.id for h in search(catalog_engine, "switched off")} == {1, 2}
    hit = search(catalog_engine, "recurrence")[0]
    assert hit.paper_titles["1807.03819"] == "Universal Transformers"


def test_requests_are_polite(fake_arxiv, catalog_engine):
    sync(catalog_engine, transport=make_transport(fake_arxiv))
    (req,) = fake_arxiv.requests
    assert req["agent"].startswith("paper-digest/") and "arXiv metadata sync" in req["agent"]
    assert set(req["args"]["id_list"].split(",")) == {"2004.13342", "1807.03819", "hep-th/9901001", "2312.99999"}
    assert req["args"]["max_results"] == "4" or int(req["args"]["max_results"]) >= 4


def test_250_ids_take_three_paced_requests_on_one_connection(fake_arxiv, engine):
    ids = [f"2101.{n:05d}" for n in range(1, 251)]
    fake_arxiv.entries.update({i: synthetic_entry(i) for i in ids})
    add_report = add(engine, ids, transport=make_transport(fake_arxiv), offline=True)
    assert len(add_report.pending) == 250
    clock = FakeClock()
    report = sync(engine, transport=make_transport(fake_arxiv, clock))
    assert (report.requests, report.fetched, report.pending) == (3, 250, [])
    sizes = [len(r["args"]["id_list"].split(",")) for r in fake_arxiv.requests]
    assert sizes == [100, 100, 50]
    assert clock.sleeps == [3.0, 3.0]  # nothing before the first request, 3 s before each next one
    assert len({r["port"] for r in fake_arxiv.requests}) == 1  # one kept-alive connection
    assert rows(engine, "SELECT count(*) FROM paper WHERE status='ok'") == [(250,)]


def _many(fake_arxiv, engine, n=250) -> None:
    ids = [f"2101.{k:05d}" for k in range(1, n + 1)]
    fake_arxiv.entries.update({i: synthetic_entry(i) for i in ids})
    add(engine, ids, offline=True)


def test_network_lost_mid_sync_keeps_the_batches_already_stored(fake_arxiv, engine):
    _many(fake_arxiv, engine)
    fake_arxiv.script = [None, "stall", "stall"]  # the first batch is answered, then nothing
    report = sync(engine, transport=make_transport(fake_arxiv, read_timeout_s=0.5, retries=1))
    assert report.offline and (report.fetched, report.requests, len(report.pending)) == (100, 3, 150)
    assert rows(engine, "SELECT status, count(*) FROM paper GROUP BY status ORDER BY 1") == [("ok", 100), ("pending", 150)]


def test_a_failed_write_stops_the_sync_and_is_raised(fake_arxiv, engine, monkeypatch):
    import sqlite3

    import catalog.arxiv.syncer as syncer

    _many(fake_arxiv, engine)
    real_store, calls = syncer.store_papers, []

    def store_then_fail(conn, found, missing=()):
        calls.append(len(found))
        if len(calls) == 2:
            raise sqlite3.OperationalError("database is locked")
        return real_store(conn, found, missing)

    monkeypatch.setattr(syncer, "store_papers", store_then_fail)
    with pytest.raises(sqlite3.OperationalError, match="database is locked"):
        sync(engine, transport=make_transport(fake_arxiv))
    assert calls == [100, 100]  # nothing stored after the failure, though a third batch may have been fetched
    assert rows(engine, "SELECT status, count(*) FROM paper GROUP BY status ORDER BY 1") == [("ok", 100), ("pending", 150)]


def test_pacing_counts_time_already_spent():
    clock = FakeClock()

    class Stub(Transport):
        pass

    t = Stub(ClientConfig(api_url="http://127.0.0.1:9/", delay_s=3.0), clock=clock, sleep=clock.sleep)
    t._last_done = clock.now
    clock.now += 1.25  # parsing and writing took 1.25 s since the last answer
    t._wait_turn()
    assert clock.sleeps == [1.75]
    clock.now += 10
    t._wait_turn()
    assert clock.sleeps == [1.75]  # long enough ago: no wait


def test_retry_on_503_with_exponential_backoff(fake_arxiv, catalog_engine):
    fake_arxiv.script = [503, 503]
    clock = FakeClock()
    report = sync(catalog_engine, transport=make_transport(fake_arxiv, clock, delay_s=0.5, backoff_s=2.0))
    assert report.requests == 3 and report.fetched == 3
    assert clock.sleeps == [2.0, 4.0]  # 2 s, then 4 s: doubling, and never below the pacing delay


def test_retry_after_is_honoured(fake_arxiv, catalog_engine):
    fake_arxiv.script = [(503, "7"), (429, "not-a-number")]
    clock = FakeClock()
    report = sync(catalog_engine, transport=make_transport(fake_arxiv, clock, delay_s=0.5, backoff_s=2.0))
    assert report.fetched == 3 and clock.sleeps == [7.0, 4.0]


def test_persistent_5xx_is_an_error_and_keeps_ids_pending(fake_arxiv, catalog_engine):
    fake_arxiv.script = [502] * 3
    with pytest.raises(ArxivResponseError, match="HTTP 502 3 times"):
        sync(catalog_engine, transport=make_transport(fake_arxiv, retries=2))
    assert rows(catalog_engine, "SELECT count(*) FROM paper WHERE status='pending'") == [(4,)]


def test_read_timeout_is_retried(fake_arxiv, catalog_engine):
    fake_arxiv.script = ["stall"]
    report = sync(catalog_engine, transport=make_transport(fake_arxiv, read_timeout_s=1.0, retries=1))
    assert report.fetched == 3 and report.requests == 2 and not report.offline


def test_timeouts_all_the_way_mean_offline_not_failure(fake_arxiv, catalog_engine):
    fake_arxiv.script = ["stall", "stall"]
    before = dump(catalog_engine)
    report = sync(catalog_engine, transport=make_transport(fake_arxiv, read_timeout_s=0.5, retries=1))
    assert report.offline and "no answer within 0.5 s" in report.warning and report.requests == 2
    assert len(report.pending) == 4 and dump(catalog_engine) == before


@pytest.mark.parametrize("breakage", ["truncated", "html"])
def test_malformed_response_is_a_clear_error_with_no_partial_writes(fake_arxiv, catalog_engine, breakage):
    fake_arxiv.script = [breakage]
    before = dump(catalog_engine)
    with pytest.raises(ArxivResponseError, match="malformed response|not an Atom feed"):
        sync(catalog_engine, transport=make_transport(fake_arxiv))
    assert dump(catalog_engine) == before


def test_unknown_id_is_recorded_and_not_asked_again(fake_arxiv, engine):
    report = add(engine, ["2312.99999"], transport=make_transport(fake_arxiv))
    assert report.not_found == 1 and report.pending == []
    assert list_papers(engine)[0]["status"] == "not_found"
    fake_arxiv.requests.clear()
    assert sync(engine, transport=make_transport(fake_arxiv)).requests == 0
    assert fake_arxiv.requests == []
    assert sync(engine, refresh=True, transport=make_transport(fake_arxiv)).not_found == 1
    assert len(fake_arxiv.requests) == 1


def test_withdrawn_paper_is_marked_and_keeps_its_metadata(fake_arxiv, engine):
    report = add(engine, ["1901.00001"], transport=make_transport(fake_arxiv))
    assert report.withdrawn == 1
    p = get_paper(engine, "1901.00001")
    assert p["status"] == "withdrawn" and p["title"] == "A result that did not hold"
    assert sync(engine, transport=make_transport(fake_arxiv)).requests == 0


def test_resync_is_idempotent_and_refresh_rewrites_the_same_rows(fake_arxiv, catalog_engine):
    sync(catalog_engine, transport=make_transport(fake_arxiv))
    first = dump(catalog_engine)
    again = sync(catalog_engine, transport=make_transport(fake_arxiv))
    assert again.requests == 0 and again.requested == 0 and dump(catalog_engine) == first
    refreshed = sync(catalog_engine, refresh=True, transport=make_transport(fake_arxiv))
    assert refreshed.requests == 1 and dump(catalog_engine) == first


def test_refresh_follows_changed_categories(fake_arxiv, catalog_engine):
    sync(catalog_engine, transport=make_transport(fake_arxiv))
    fake_arxiv.entries["2004.13342"] = dict(ENTRIES["2004.13342"], version=2, primary="cs.LG",
                                            categories=["cs.LG"], updated="2020-10-01T00:00:00Z")
    sync(catalog_engine, refresh=True, transport=make_transport(fake_arxiv))
    assert get_paper(catalog_engine, "2004.13342")["tags"] == ["cs.lg"]
    post1 = rows(catalog_engine, "SELECT t.name FROM post_tag pt JOIN tag t ON t.id = pt.tag_id"
                                 " WHERE pt.post_id = 1 ORDER BY 1")
    assert post1 == [("cs.lg",), ("nlp",)]
    # post 2 still links 1807.03819 (cs.CL): it keeps cs.cl from there
    assert ("cs.cl",) in rows(catalog_engine, "SELECT t.name FROM post_tag pt JOIN tag t ON t.id = pt.tag_id"
                                              " WHERE pt.post_id = 2")


def test_posts_ingested_later_get_the_categories_on_next_sync(fake_arxiv, catalog_engine):
    sync(catalog_engine, transport=make_transport(fake_arxiv))
    ingest_records(catalog_engine, [post(5, "Another take on arxiv.org/abs/2004.13342", ("2004.13342",))])
    report = sync(catalog_engine, offline=True)  # no network needed for this
    assert report.requests == 0
    assert rows(catalog_engine, "SELECT count(*) FROM post_tag WHERE post_id = 5 AND origin='arxiv-category'") == [(2,)]


def test_offline_sync_touches_nothing_and_lists_pending(catalog_engine):
    before = dump(catalog_engine)
    report = sync(catalog_engine, offline=True)
    assert report.offline and report.requests == 0 and dump(catalog_engine) == before
    assert report.pending == ["1807.03819", "2004.13342", "2312.99999", "hep-th/9901001"]


def test_gzip_answer_is_decoded(fake_arxiv, catalog_engine):
    fake_arxiv.script = ["gzip"]
    report = sync(catalog_engine, transport=make_transport(fake_arxiv))
    assert report.fetched == 3 and "gzip" in fake_arxiv.requests[0]["accept_encoding"]
    assert get_paper(catalog_engine, "1807.03819")["title"] == "Universal Transformers"


def test_http_proxy_from_the_environment_is_used(fake_arxiv, catalog_engine, monkeypatch):
    proxy = fake_arxiv.url.rsplit("/api/", 1)[0]  # the stand-in plays the proxy: it reads absolute URLs too
    for name in ("http_proxy", "HTTP_PROXY"):
        monkeypatch.setenv(name, proxy)
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    looked_up = []
    clock = FakeClock()
    transport = Transport(ClientConfig(api_url="http://arxiv.invalid/api/query"), clock=clock, sleep=clock.sleep,
                          resolve=lambda host, port: looked_up.append((host, port)))
    report = sync(catalog_engine, transport=transport)
    assert report.fetched == 3 and looked_up == [("127.0.0.1", int(proxy.rsplit(":", 1)[1]))]
    assert fake_arxiv.requests[0]["target"].startswith("http://arxiv.invalid/api/query?")


def test_connection_refused_fails_fast_and_is_offline(catalog_engine):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    before = dump(catalog_engine)
    clock = FakeClock()
    transport = Transport(ClientConfig(api_url=f"http://127.0.0.1:{port}/api/query"), clock=clock, sleep=clock.sleep)
    report = sync(catalog_engine, transport=transport)
    assert report.requests == 1 and clock.sleeps == []  # no retries, no backoff
    assert report.offline and "connection refused" in report.warning and len(report.pending) == 4
    assert dump(catalog_engine) == before


def test_dns_failure_is_offline(catalog_engine):
    asked = []

    def no_such_host(host, port):
        asked.append((host, port))
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    before = dump(catalog_engine)
    transport = Transport(ClientConfig(api_url="http://no-such-host.invalid/api/query"), resolve=no_such_host)
    report = sync(catalog_engine, transport=transport)
    assert asked == [("no-such-host.invalid", 80)]
    assert report.offline and "DNS lookup failed" in report.warning and report.requests == 0
    assert len(report.pending) == 4 and dump(catalog_engine) == before


def test_a_resolver_that_never_answers_does_not_hang(catalog_engine):
    never = threading.Event()
    asked = []

    def stuck(host, port):  # like a resolver with no route to its DNS server; let go when the test ends
        asked.append(host)
        never.wait(60)
        raise socket.gaierror(socket.EAI_AGAIN, "too late")

    transport = Transport(ClientConfig(api_url="https://slow-dns.example/api/query", connect_timeout_s=0.2),
                          resolve=stuck)
    try:
        report = sync(catalog_engine, transport=transport)  # returning at all is the point
    finally:
        never.set()
    assert asked == ["slow-dns.example"]
    assert report.offline and "DNS lookup timed out after 0.2 s" in report.warning and report.requests == 0
    assert len(report.pending) == 4


def test_rejected_id_in_a_400_answer_is_marked_and_the_rest_fetched(fake_arxiv, engine):
    with engine.begin() as c:  # an id that slipped past normalisation, as an old catalog might hold
        c.exec_driver_sql("INSERT INTO paper(arxiv_id, authors, categories, status) VALUES "
                          "('2004.13342', '[]', '[]', 'pending'), ('1234.5', '[]', '[]', 'pending')")
    error_feed = feed_xml(['<entry><id>http://arxiv.org/api/errors#incorrect_id_format_for_1234.5</id>'
                           '<title>Error</title><summary>incorrect id format for 1234.5</summary>'
                           '<updated>2024-01-01T00:00:00-05:00</updated></entry>'])
    original = fake_arxiv.respond

    def respond(handler):
        if "1234.5" in handler.path:
            fake_arxiv.requests.append({"path": handler.path})
            return fake_arxiv.send(handler, 400, error_feed, "application/atom+xml")
        return original(handler)

    fake_arxiv.respond = respond
    report = sync(engine, transport=make_transport(fake_arxiv))
    assert (report.fetched, report.errors, report.requests) == (1, 1, 2)
    assert dict(rows(engine, "SELECT arxiv_id, status FROM paper")) == {"2004.13342": "ok", "1234.5": "error"}


def test_add_by_query_and_by_versioned_id(fake_arxiv, engine):
    fake_arxiv.queries["cat:cs.CL AND ti:dropout"] = feed_xml([entry_xml("2004.13342", ENTRIES["2004.13342"])])
    report = add(engine, ["cat:cs.CL AND ti:dropout", "arXiv:1807.03819v1"], transport=make_transport(fake_arxiv))
    assert sorted(report.added) == ["1807.03819", "2004.13342"] and report.fetched == 2
    asked = [r["args"] for r in fake_arxiv.requests]
    assert asked[0]["id_list"] == "1807.03819v1"  # the version the user named
    assert asked[1]["search_query"] == "cat:cs.CL AND ti:dropout" and asked[1]["max_results"] == "10"
    assert get_paper(engine, "1807.03819")["version"] == 1
    assert [p["arxiv_id"] for p in list_papers(engine, tag="cs.CL")] == ["2004.13342", "1807.03819"]
    # already fetched: not asked again
    fake_arxiv.requests.clear()
    assert add(engine, ["2004.13342"], transport=make_transport(fake_arxiv)).requests == 0


def test_paper_titles_for_search_hits(fake_arxiv, catalog_engine):
    sync(catalog_engine, transport=make_transport(fake_arxiv))
    with catalog_engine.connect() as conn:
        titles = paper_titles(conn, ["2004.13342", "arXiv:1807.03819v3", "2312.99999", "nonsense"])
    assert titles == {"2004.13342": "DropHead: structured dropout for multi-head attention",
                      "1807.03819": "Universal Transformers"}
    assert paper_titles(catalog_engine, []) == {}


# ---------------------------------------------------------------- real responses from ../shared

def _shared(name: str) -> bytes:
    from support.helpers import shared_path  # skips locally, fails under CI=true when absent

    return shared_path("fixtures", "arxiv", name).read_bytes()


def test_real_id_list_response(fake_arxiv, engine):
    body = _shared("zoia_arxiv_response.xml")
    original = fake_arxiv.respond
    fake_arxiv.respond = lambda h: (fake_arxiv.send(h, 200, body, "application/atom+xml")
                                    if "1601.00001" in h.path else original(h))
    report = add(engine, ["1601.00001"], transport=make_transport(fake_arxiv))
    assert report.fetched == 1
    p = get_paper(engine, "1601.00001")
    assert p["title"].startswith("Inelastic effects in molecular transport junctions") and "\n" not in p["title"]
    assert p["authors"] == ["Michael Kilgour", "Dvira Segal"]
    assert p["doi"] == "10.1063/1.4944470" and p["journal_ref"].startswith("J. Chem. Phys.")
    assert p["tags"] == ["cond-mat.mes-hall"] and p["version"] == 1
    assert "  " not in p["abstract"] and p["abstract"].endswith("far-from-equilibrium.")


def test_real_search_response(fake_arxiv, engine):
    body = _shared("xiv_arxiv_response.xml")
    fake_arxiv.queries["cat:cs.RO AND (neural)"] = body
    report = add(engine, ["cat:cs.RO AND (neural)"], max_results=2, transport=make_transport(fake_arxiv))
    assert sorted(report.added) == ["2510.14827", "2510.14968"]
    papers = list_papers(engine, tag="cs.ro")
    assert {p["arxiv_id"] for p in papers} == {"2510.14827", "2510.14968"}
    assert all(p["title"] and p["authors"] and p["status"] == "ok" for p in papers)


# ---------------------------------------------------------------- CLI

@pytest.fixture
def cli_db(catalog_cli, catalog_engine):
    """`digest` against the catalog of `catalog_engine` (four posts, four ids not fetched)."""
    return catalog_cli


def test_cli_sync_offline_exits_zero_with_warning(cli_db):
    result = cli_db("arxiv", "sync", "--offline")
    assert result.exit_code == 0
    assert "warning: offline" in result.stderr and "4 papers still without metadata" in result.stderr
    result = cli_db("arxiv", "sync", "--offline", "--json")
    assert json.loads(result.stdout)["pending"] == ["1807.03819", "2004.13342", "2312.99999", "hep-th/9901001"]


def test_cli_sync_unreachable_server_exits_zero(cli_db):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = cli_db("arxiv", "sync", "--api-url", f"http://127.0.0.1:{port}/api/query")
    assert result.exit_code == 0 and "connection refused" in result.stderr


def test_cli_sync_add_paper_papers(fake_arxiv, cli_db, monkeypatch):
    monkeypatch.setenv("DIGEST_ARXIV_API_URL", fake_arxiv.url)
    result = cli_db("arxiv", "sync", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["fetched"] == 3

    result = cli_db("paper", "https://arxiv.org/abs/2004.13342v1")
    assert result.exit_code == 0
    out = result.stdout
    assert "DropHead: structured dropout for multi-head attention" in out and "Wangchunshu Zhou" in out
    assert "https://t.me/papers_test/1" in out and "https://t.me/papers_test/2" in out
    assert "reproduction: none" in out
    data = json.loads(cli_db("paper", "2004.13342", "--json").stdout)
    assert data["tags"] == ["cs.cl", "cs.lg"] and data["posts"][0]["source"] == "Papers Test"

    listing = json.loads(cli_db("papers", "--json").stdout)
    assert [p["arxiv_id"] for p in listing] == ["2004.13342", "1807.03819", "hep-th/9901001", "2312.99999"]
    assert [p["arxiv_id"] for p in json.loads(cli_db("papers", "--tag", "hep-th", "--json").stdout)] \
        == ["hep-th/9901001"]
    table = cli_db("papers").stdout
    assert "Universal" in table and "hep-th/9901001" in table and "(not_found)" in table

    fake_arxiv.queries["ti:withdrawn"] = feed_xml([entry_xml("1901.00001", ENTRIES["1901.00001"])])
    result = cli_db("arxiv", "add", "ti:withdrawn", "--max", "5", "--api-url", fake_arxiv.url)
    assert result.exit_code == 0 and "1901.00001" in result.stdout
    assert fake_arxiv.requests[-1]["args"]["max_results"] == "5"
    assert json.loads(cli_db("papers", "--status", "withdrawn", "--json").stdout)[0]["arxiv_id"] == "1901.00001"


def test_cli_errors_and_exit_codes(fake_arxiv, cli_db, fresh_target, cli_for):
    r = cli_db("paper", "2001.00001")
    assert r.exit_code == 1 and r.stderr.count("\n") == 1 and "no paper 2001.00001" in r.stderr
    r = cli_db("paper", "not-an-id")
    assert r.exit_code == 2 and "not an arXiv id" in r.stderr
    r = cli_db("arxiv", "add", "1234")
    assert r.exit_code == 2 and "not an arXiv id" in r.stderr
    r = cli_db("papers", "--status", "bogus")
    assert r.exit_code == 2
    missing = fresh_target(migrated=False)
    r = cli_for(missing)("arxiv", "sync", "--offline")
    assert r.exit_code == 1 and "no catalog at" in r.stderr and not catalog_exists(missing)
    for bad_url in ("ftp://example", "http://example:port/api/query"):
        r = cli_db("arxiv", "sync", "--api-url", bad_url)
        assert r.exit_code == 2 and "bad arXiv API URL" in r.stderr and r.stderr.count("\n") == 1
    fake_arxiv.script = ["truncated"]
    r = cli_db("arxiv", "sync", "--api-url", fake_arxiv.url)
    assert r.exit_code == 1 and "malformed response" in r.stderr and "Traceback" not in r.output
    assert r.stderr.strip().count("\n") == 0


def test_paper_page_shows_its_reproduction_and_last_run(fake_arxiv, catalog_engine, cli_db):
    from catalog.db import session
    from catalog.models import Run
    from catalog.runs import upsert_reproduction

    sync(catalog_engine, transport=make_transport(fake_arxiv))
    with session(catalog_engine) as s:
        repro = upsert_reproduction(s, slug="drophead", arxiv_id="2004.13342", title="DropHead on a small model",
                                    claims=[{"metric": "accuracy", "value": 0.9}], presets=["smoke", "cpu", "gpu"])
        s.add(Run(reproduction_id=repro.id, preset="smoke", device="cpu", status="ok",
                  started_at=datetime(2024, 1, 1, 12), metrics={"accuracy": 0.71}, run_dir="runs/drophead/1"))
    p = get_paper(catalog_engine, "2004.13342")
    assert p["reproduction"]["slug"] == "drophead" and p["reproduction"]["runs"] == 1
    assert p["reproduction"]["last_run"]["metrics"] == {"accuracy": 0.71}
    assert list_papers(catalog_engine)[0]["reproduction"] == "drophead"
    out = cli_db("paper", "2004.13342").stdout
    assert "reproduction drophead: DropHead on a small model" in out and "accuracy=0.71" in out
