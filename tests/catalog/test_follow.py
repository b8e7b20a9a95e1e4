"""`digest follow` / `sync` against a local server: three channels, one failing; the lock."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from support.channel_routes import Msg, tme_page
from support.helpers import HTML, serve_pages

T0 = datetime(2023, 7, 1, 9, 0, tzinfo=timezone.utc)


def channel_posts(name: str, ids: range) -> list[Msg]:
    return [Msg(i, T0 + timedelta(hours=i), [f"Post {i} of {name}: notes on a paper about optimisation number {i}"])
            for i in ids]


class Site:
    """What the local server serves: channel -> messages (newest page only, ~20 a page)."""

    def __init__(self):
        self.channels = {"alpha_ch": channel_posts("alpha", range(1, 6)), "beta_ch": channel_posts("beta", range(1, 4)),
                         "gamma_ch": channel_posts("gamma", range(1, 8))}
        self.broken = {"beta_ch"}
        self.requests: list[str] = []
        self.redirects: dict[str, str] = {}  # channel -> where its page redirects
        self.not_channels: set[str] = set()  # served as a page that is no channel's


@pytest.fixture
def server():
    site = Site()

    def respond(path: str):
        site.requests.append(path)
        name = path.split("?")[0].rstrip("/").split("/")[-1]
        if name in site.redirects:
            return 302, {"Location": site.redirects[name]}, b""
        if name in site.not_channels:
            return 200, HTML, b"<html><body><p>Nothing to see here</p></body></html>"
        if name in site.broken or name not in site.channels:
            return 404, {}, b""
        return 200, HTML, tme_page(site.channels[name], username=name, title=name.title()).encode()

    srv, host = serve_pages(respond)
    site.host = host  # allowed explicitly: `digest follow --mirror HOST`
    site.base = f"http://{site.host}"
    yield site
    srv.shutdown()


def test_sync_three_channels_one_failing(server, cli):
    urls = [f"{server.base}/s/{name}" for name in ("alpha_ch", "beta_ch", "gamma_ch")]
    result = cli("follow", "--mirror", server.host, *urls, "--json")
    assert result.exit_code == 0, result.output
    assert [r["channel"] for r in json.loads(result.stdout)] == ["@alpha_ch", "@beta_ch", "@gamma_ch"]

    result = cli("sync", "--interval", "0.1", "--no-arxiv")
    assert result.exit_code == 1
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("@alpha_ch: 5 new") and lines[2].startswith("@gamma_ch: 7 new")
    assert lines[1].startswith("@beta_ch: FAILED: ") and "404" in lines[1]
    assert result.stderr.strip().splitlines() == [
        result.stderr.strip()] and "@beta_ch" in result.stderr and "1 of 3" in result.stderr  # one line

    rows = {r["handle"]: r["posts"] for r in json.loads(cli("sources", "--json").stdout)}
    assert rows == {"alpha_ch": 5, "gamma_ch": 7}
    status = {r["channel"]: r["last_status"] for r in json.loads(cli("following", "--json").stdout)}
    assert status == {"@alpha_ch": "ok", "@beta_ch": "failed", "@gamma_ch": "ok"}

    # beta comes back, alpha has one new post: the next sync is incremental and exits 0
    server.broken.clear()
    server.channels["alpha_ch"] = channel_posts("alpha", range(1, 7))
    server.requests.clear()
    result = cli("sync", "--interval", "0.1", "--no-arxiv", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["failed"] == []
    assert {c["channel"]: c["new"] for c in report["channels"]} == {"@alpha_ch": 1, "@beta_ch": 3, "@gamma_ch": 0}
    assert len(server.requests) == 3  # one page each: every walk stopped at the newest stored post
    assert report["related"]["posts"] == 16  # the related lists were rebuilt after the new posts

    result = cli("sync", "--interval", "0.1", "--no-arxiv", "--json")
    assert json.loads(result.stdout)["related"] is None  # nothing changed: not recomputed

    result = cli("sync", "--interval", "0.1", "--no-arxiv", "--quiet")
    assert result.exit_code == 0 and result.stdout == ""


def test_sync_lock_keeps_a_second_sync_out(server, catalog_cli, engine):
    from catalog.follow import acquire_lock, release_lock

    catalog_cli("follow", "--mirror", server.host, f"{server.base}/s/alpha_ch")
    acquire_lock(engine)  # this (live) process holds it, as a running sync would
    try:
        result = catalog_cli("sync", "--interval", "0.1", "--no-arxiv")
        assert result.exit_code == 1 and "another `digest sync` is running" in result.stderr
        assert server.requests == []
    finally:
        release_lock(engine)
    assert catalog_cli("sync", "--interval", "0.1", "--no-arxiv").exit_code == 0


def test_stale_lock_of_a_dead_process_is_taken_over(server, catalog_cli, engine):
    from sqlalchemy import insert

    from catalog.models import Meta

    catalog_cli("follow", "--mirror", server.host, f"{server.base}/s/alpha_ch")
    dead = {"pid": 2 ** 22 + 12345, "host": __import__("socket").gethostname(), "since": "2023-07-01T00:00:00"}
    with engine.begin() as c:
        c.execute(insert(Meta).values(key="sync_lock", value=json.dumps(dead)))
    assert catalog_cli("sync", "--interval", "0.1", "--no-arxiv").exit_code == 0


@pytest.mark.parametrize("args, message", [
    (("follow", "not a channel!"), "not a channel"),
    (("unfollow", "@nobody_here"), "is not followed"),
    (("sync",), "no channels followed"),
])
def test_bad_inputs_one_line(cli, args, message):
    cli("following")  # creates the catalog
    result = cli(*args)
    assert result.exit_code != 0
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output


def test_follow_twice_and_unfollow(cli):
    assert cli("follow", "@alpha_ch", "t.me/beta_ch").exit_code == 0
    assert "already followed" in cli("follow", "https://t.me/s/alpha_ch").stdout
    assert cli("unfollow", "@ALPHA_CH").exit_code == 0
    assert [r["channel"] for r in json.loads(cli("following", "--json").stdout)] == ["@beta_ch"]


def test_sync_then_arxiv_then_site(server, cli, tmp_path):
    cli("follow", "--mirror", server.host, f"{server.base}/s/gamma_ch")
    result = cli("sync", "--interval", "0.1", "--offline", "--site", str(tmp_path / "out"), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["channels"][0]["new"] == 7
    assert report["arxiv"] is not None and report["arxiv"]["fetched"] == 0
    assert (tmp_path / "out" / "site" / "index.html").exists() and report["site"]


# ---------------------------------------------------------------- what the follow list may hold

@pytest.mark.parametrize("target, reason", [
    ("http://169.254.169.254/latest", "link-local"),
    ("http://[fe80::1]/s/chan_x", "link-local"),
    ("http://[::ffff:169.254.169.254]/s/chan_x", "link-local"),
    ("http://localhost:8080/foo", "loopback host"),
    ("http://127.0.0.1/s/chan_x", "private or loopback address"),
    ("http://10.0.0.1/chan", "private or loopback address"),
    ("http://192.168.1.5/s/chan_x", "private or loopback address"),
    ("https://93.184.216.34/s/chan_x", "is an IP address"),
    ("https://evil.example/s/chan_x", "evil.example is not t.me"),
    ("https://t.me@evil.example/s/chan_x", "user name or password"),
    ("https://t.me:8443/s/chan_x", "is not t.me"),
    ("file:///etc/passwd", "only http(s)"),
    ("ftp://t.me/s/chan_x", "only http(s)"),
    ("javascript:alert(1)", "only http(s)"),
])
def test_follow_refuses_addresses_off_telegram(cli, target, reason):
    result = cli("follow", target)
    assert result.exit_code == 1, result.output
    assert reason in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert json.loads(cli("following", "--json").stdout) == []  # nothing was written


def test_a_mirror_must_be_named_and_is_never_link_local(cli, server):
    refused = cli("follow", f"{server.base}/s/alpha_ch")
    assert refused.exit_code == 1 and f"--mirror {server.host}" in refused.stderr
    assert "link-local" in cli("follow", "--mirror", "169.254.169.254", "@alpha_ch").stderr
    other_port = server.host.rsplit(":", 1)[0] + ":1"
    assert cli("follow", "--mirror", other_port, f"{server.base}/s/alpha_ch").exit_code == 1  # the port counts
    assert cli("follow", "--mirror", server.host, f"{server.base}/s/alpha_ch").exit_code == 0
    assert cli("follow", f"{server.base}/s/gamma_ch").exit_code == 0  # the mirror is kept in the catalog


def test_same_handle_on_two_hosts_is_two_channels(cli, server):
    result = cli("follow", "--mirror", server.host, "@alpha_ch", f"{server.base}/s/alpha_ch", "--json")
    assert result.exit_code == 0, result.output
    assert [(r["host"], r["added"]) for r in json.loads(result.stdout)] == [("t.me", True), (server.host, True)]
    rows = json.loads(cli("following", "--json").stdout)
    assert sorted((r["channel"], r["host"]) for r in rows) == [("@alpha_ch", server.host), ("@alpha_ch", "t.me")]
    assert cli("unfollow", "@alpha_ch").exit_code == 0  # the t.me one only
    assert [r["host"] for r in json.loads(cli("following", "--json").stdout)] == [server.host]


def test_redirect_off_the_allowed_hosts_is_not_followed(cli, server):
    hits = []

    def elsewhere(path: str):
        hits.append(path)
        return 200, HTML, tme_page(channel_posts("x", range(1, 3)), username="delta_ch").encode()

    other, other_host = serve_pages(elsewhere)
    server.redirects = {"delta_ch": f"http://{other_host}/s/delta_ch"}
    try:
        assert cli("follow", "--mirror", server.host, f"{server.base}/s/delta_ch").exit_code == 0
        result = cli("sync", "--interval", "0.1", "--no-arxiv")
    finally:
        other.shutdown()
    assert result.exit_code == 1 and "redirected to 127.0.0.1:" in result.stdout and "not followed" in result.stdout
    assert hits == []


def test_follow_table_migrates_to_handle_and_host(db_kind, new_db_target):
    """A catalog from before the change (follow keyed by handle alone) keeps its rows, each with its host."""
    from sqlalchemy import text

    from catalog.db import MIGRATIONS, _follow_keyed_by_host, open_db

    before = MIGRATIONS.index(_follow_keyed_by_host)  # the version just before follows were keyed by host
    engine = open_db(new_db_target)
    with engine.begin() as c:  # back to that version's follow table, with two follows in it
        c.execute(text("DROP TABLE follow"))
        c.execute(text("CREATE TABLE follow (id INTEGER PRIMARY KEY, handle VARCHAR(255) UNIQUE, url TEXT,"
                       " added_at TIMESTAMP, last_synced_at TIMESTAMP, last_status VARCHAR(16), last_error TEXT)"))
        c.execute(text("INSERT INTO follow (id, handle, url, added_at) VALUES"
                       " (1, 'alpha_ch', 'https://t.me/s/alpha_ch', '2024-01-01'),"
                       " (2, 'beta_ch', 'http://127.0.0.1:8080/s/beta_ch', '2024-01-02')"))
        c.execute(text("UPDATE meta SET value = :v WHERE key = 'schema_version'"), {"v": str(before)})
    engine.dispose()
    engine = open_db(new_db_target)  # migrates
    try:
        with engine.begin() as c:
            rows = c.execute(text("SELECT id, handle, host, url FROM follow ORDER BY id")).all()
            assert [tuple(r) for r in rows] == [(1, "alpha_ch", "t.me", "https://t.me/s/alpha_ch"),
                                                (2, "beta_ch", "127.0.0.1:8080", "http://127.0.0.1:8080/s/beta_ch")]
            c.execute(text("INSERT INTO follow (id, handle, host, url, added_at) VALUES"
                           " (3, 'alpha_ch', 'mirror.example', 'https://mirror.example/s/alpha_ch', '2024-01-03')"))
        with pytest.raises(Exception, match="(?i)unique"):
            with engine.begin() as c:
                c.execute(text("INSERT INTO follow (id, handle, host, url, added_at) VALUES"
                               " (4, 'alpha_ch', 't.me', 'https://t.me/s/alpha_ch', '2024-01-04')"))
    finally:
        engine.dispose()


def test_sync_builds_the_site_for_its_public_address(server, cli, tmp_path, monkeypatch):
    """`--site-url` (or DIGEST_SITE_URL) reaches the build; a bad one stops the sync before any fetch."""
    cli("follow", "--mirror", server.host, f"{server.base}/s/gamma_ch")
    out = str(tmp_path / "out")
    bad = cli("sync", "--interval", "0.1", "--offline", "--site", out, "--site-url", "example.org/digest")
    assert bad.exit_code == 1 and "not a site address" in bad.stderr and server.requests == []
    monkeypatch.setenv("DIGEST_SITE_URL", "https://example.org/sync-site/")
    result = cli("sync", "--interval", "0.1", "--offline", "--site", out)
    assert result.exit_code == 0, result.output
    sitemap = (tmp_path / "out" / "site" / "sitemap.xml").read_text(encoding="utf-8")
    assert "<loc>https://example.org/sync-site/</loc>" in sitemap and sitemap.count("/posts/") >= 7


# ---------------------------------------------------------------- the lock's staleness rule, the report (issue 35)

def test_a_lock_is_stale_only_when_old_unreadable_or_its_process_is_gone():
    """Six hours old, or unreadable, or held by a process of this host that is gone: stale. A recent
    lock of another host (its process cannot be checked from here) or of a live process: held."""
    import os
    import socket

    from catalog.follow import _is_stale
    from catalog.models import utcnow

    here, now = socket.gethostname(), utcnow()
    dead = 2 ** 22 + 12345  # above Linux's default pid_max: no such process
    ago = lambda **kw: (now - timedelta(**kw)).isoformat()  # noqa: E731
    assert _is_stale({"pid": os.getpid(), "host": here, "since": ago(hours=6, minutes=1)})  # old, even if alive
    assert _is_stale({"pid": dead, "host": "elsewhere", "since": ago(hours=6, minutes=1)})
    assert not _is_stale({"pid": dead, "host": "elsewhere", "since": ago(hours=5, minutes=59)})
    assert not _is_stale({"pid": os.getpid(), "host": here, "since": ago(minutes=1)})  # this live process
    assert _is_stale({"pid": dead, "host": here, "since": ago(minutes=1)})  # gone from this host
    assert not _is_stale({"pid": "not a pid", "host": here, "since": ago(minutes=1)})  # cannot tell: held
    assert not _is_stale({"host": here, "since": ago(minutes=1)})  # no pid (a hand-written row): held, no KeyError
    assert _is_stale({"host": here, "since": ago(hours=6, minutes=1)})
    for unreadable in ({}, {"pid": dead, "host": here}, {"since": "yesterday"}, {"since": None}):
        assert _is_stale(unreadable), unreadable


def test_a_mirror_channel_is_unfollowed_by_its_address(cli, server):
    url = f"{server.base}/s/alpha_ch"
    assert cli("follow", "--mirror", server.host, url).exit_code == 0
    result = cli("unfollow", url)
    assert result.exit_code == 0, result.output
    assert json.loads(cli("following", "--json").stdout) == []


def test_following_lists_channels_by_name_with_their_post_counts(cli, server):
    """Followed gamma, beta, alpha. Before a sync: no source, 0 posts, never synced. After: alpha 5
    posts and gamma 7 (the server's pages), beta (404) failed with its error and none."""
    urls = {name: f"{server.base}/s/{name}" for name in ("gamma_ch", "beta_ch", "alpha_ch")}
    assert cli("follow", "--mirror", server.host, *urls.values()).exit_code == 0
    rows = json.loads(cli("following", "--json").stdout)
    assert [(r["channel"], r["url"], r["source_id"], r["posts"], r["last_synced_at"], r["last_status"],
             r["last_error"]) for r in rows] == [
        (f"@{name}", urls[name], None, 0, None, None, None) for name in ("alpha_ch", "beta_ch", "gamma_ch")]
    synced_after = datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)
    assert cli("sync", "--interval", "0.1", "--no-arxiv").exit_code == 1
    rows = json.loads(cli("following", "--json").stdout)
    assert [(r["channel"], r["posts"], r["last_status"]) for r in rows] == [
        ("@alpha_ch", 5, "ok"), ("@beta_ch", 0, "failed"), ("@gamma_ch", 7, "ok")]
    sources = {r["handle"]: r["id"] for r in json.loads(cli("sources", "--json").stdout)}
    assert [r["source_id"] for r in rows] == [sources["alpha_ch"], None, sources["gamma_ch"]]
    assert all(datetime.fromisoformat(r["last_synced_at"]) >= synced_after for r in rows)
    assert [r["last_error"] is None for r in rows] == [True, False, True] and "404" in rows[1]["last_error"]


def test_sync_reports_the_papers_left_pending_offline(cli, server):
    """Two posts name two arXiv papers: offline, both stay pending, with the offline warning."""
    server.channels["alpha_ch"] = [Msg(1, T0, ["Notes on arXiv:2301.00001 and a result"]),
                                   Msg(2, T0 + timedelta(hours=1), ["Follow-up on https://arxiv.org/abs/2302.00002"])]
    cli("follow", "--mirror", server.host, f"{server.base}/s/alpha_ch", f"{server.base}/s/gamma_ch")
    result = cli("sync", "--interval", "0.1", "--offline", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["arxiv"] == {"fetched": 0, "pending": 2, "warning": "offline: nothing fetched"}


def test_sync_with_no_paper_pending_reports_no_warning(cli, server):
    """gamma's posts name no paper: arXiv has nothing to fetch (no request is made), and says nothing."""
    cli("follow", "--mirror", server.host, f"{server.base}/s/gamma_ch")
    result = cli("sync", "--interval", "0.1", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["arxiv"] == {"fetched": 0, "pending": 0, "warning": ""}


def test_a_channel_result_reads_as_one_line_and_the_report_lists_the_failed():
    from catalog.follow import ChannelResult, SyncReport

    ok = ChannelResult("@alpha_ch", True, pages=1, new=2, updated=1, unchanged=3)
    two = ChannelResult("@gamma_ch", True, pages=2, new=30)
    failed = ChannelResult("@beta_ch", False, pages=1, error="HTTP 404 for http://x/s/beta_ch")
    assert ok.line() == "@alpha_ch: 2 new, 1 updated, 3 unchanged (1 page)"
    assert two.line() == "@gamma_ch: 30 new, 0 updated, 0 unchanged (2 pages)"
    assert ChannelResult("@delta_ch", True).line() == "@delta_ch: 0 new, 0 updated, 0 unchanged (0 pages)"
    assert failed.line() == "@beta_ch: FAILED: HTTP 404 for http://x/s/beta_ch"
    report = SyncReport([ok, failed, two], arxiv={"fetched": 1}, related=None, site="/srv/site")
    assert report.failed == [failed]
    assert report.as_dict() == {
        "channels": [{"channel": "@alpha_ch", "ok": True, "pages": 1, "new": 2, "updated": 1, "unchanged": 3, "error": ""},
                     {"channel": "@beta_ch", "ok": False, "pages": 1, "new": 0, "updated": 0, "unchanged": 0,
                      "error": "HTTP 404 for http://x/s/beta_ch"},
                     {"channel": "@gamma_ch", "ok": True, "pages": 2, "new": 30, "updated": 0, "unchanged": 0, "error": ""}],
        "failed": ["@beta_ch"], "arxiv": {"fetched": 1}, "related": None, "site": "/srv/site"}


def test_release_takes_back_only_this_process_lock(engine):
    """Another live process's lock is named in the refusal and left in place by this one's release."""
    import os
    import socket

    from sqlalchemy import insert, select

    from catalog.errors import DigestError
    from catalog.follow import acquire_lock, release_lock
    from catalog.models import Meta, utcnow

    since = utcnow().isoformat()
    other = {"pid": os.getppid(), "host": socket.gethostname(), "since": since}  # our parent: alive
    with engine.begin() as c:
        c.execute(insert(Meta).values(key="sync_lock", value=json.dumps(other)))
    with pytest.raises(DigestError) as refused:
        acquire_lock(engine)
    assert str(refused.value) == (f"another `digest sync` is running on this catalog (pid {os.getppid()} on "
                                  f"{socket.gethostname()} since {since}); try again later")
    release_lock(engine)
    with engine.connect() as c:
        assert json.loads(c.execute(select(Meta.value).where(Meta.key == "sync_lock")).scalar()) == other
        c.execute(Meta.__table__.delete().where(Meta.key == "sync_lock"))  # as if that process released it
        c.commit()
    acquire_lock(engine)
    with engine.connect() as c:
        mine = json.loads(c.execute(select(Meta.value).where(Meta.key == "sync_lock")).scalar())
    assert (mine["pid"], mine["host"]) == (os.getpid(), socket.gethostname())
    release_lock(engine)
    with engine.connect() as c:
        assert c.execute(select(Meta.value).where(Meta.key == "sync_lock")).scalar() is None


def test_sync_reports_a_page_that_is_no_channel_and_a_refused_address(server, engine):
    """delta's page is no channel's (a parse error); beta's is missing (404: one request, no page);
    a row written by hand points off the allowed hosts (refused before any request); alpha syncs,
    its one page counted by the caller's callback."""
    from sqlalchemy import insert

    from catalog.follow import follow, sync
    from catalog.models import Follow, utcnow

    server.channels["delta_ch"], server.not_channels = [], {"delta_ch"}
    follow(engine, [f"{server.base}/s/{name}" for name in ("alpha_ch", "beta_ch", "delta_ch")], mirrors=[server.host])
    with engine.begin() as c:
        c.execute(insert(Follow).values(handle="evil_ch", host="evil.example", url="https://evil.example/s/evil_ch",
                                        added_at=utcnow()))
    started, pages = [], {}

    def on_channel(name: str, max_pages: int):
        started.append((name, max_pages))
        return lambda: pages.__setitem__(name, pages.get(name, 0) + 1)

    report = sync(engine, max_pages=3, interval=0.1, arxiv=False, on_channel=on_channel)
    lines = {c.channel: c.line() for c in report.channels}
    assert started == [("@alpha_ch", 3), ("@beta_ch", 3), ("@delta_ch", 3), ("@evil_ch", 3)]
    assert pages == {"@alpha_ch": 1, "@delta_ch": 1}  # beta's request got no page (404)
    assert {c.channel: c.pages for c in report.channels} == {"@alpha_ch": 1, "@beta_ch": 1, "@delta_ch": 1,
                                                             "@evil_ch": 0}
    assert lines["@alpha_ch"] == "@alpha_ch: 5 new, 0 updated, 0 unchanged (1 page)"
    assert lines["@delta_ch"].startswith("@delta_ch: FAILED: ")
    assert lines["@delta_ch"].endswith(": no tgme_widget_message blocks (is this a t.me/s page?)")
    assert lines["@evil_ch"] == ("@evil_ch: FAILED: refused https://evil.example/s/evil_ch: not t.me and not a mirror"
                                 " of this catalog")
    assert lines["@beta_ch"].startswith("@beta_ch: FAILED: ") and "404" in lines["@beta_ch"]
    assert [c.channel for c in report.failed] == ["@beta_ch", "@delta_ch", "@evil_ch"]
    assert not any(p.endswith("evil_ch") for p in server.requests)
