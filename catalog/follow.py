"""Following public channels and `digest sync`: fetch each one's new posts, then arXiv, then the site.

The follow list lives in the ``follow`` table (handle and page URL). A sync walks it
in order with ONE polite fetcher (`scrapers.fetch.Fetcher`: a request at a time, at
least `interval` seconds apart, retries with backoff), each channel incrementally
(it stops at the newest post already stored, by any route of that channel) and in
its own transaction, so a channel that fails leaves the others stored. A row in
``meta`` is the lock that keeps two syncs off one catalog at once; one left behind
by a process that died is taken over.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Callable, Iterable

from sqlalchemy import Engine, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from catalog.dbfaults import CONNECTION_KINDS, db_fault, first_line, retry_once_if_lost, target_of
from catalog.errors import DigestError
from catalog.follow_policy import add_mirrors, allowed_host, parse_channel
from catalog.follow_policy import mirrors as mirror_hosts
from catalog.interrupts import Interrupted, SignalGuard
from catalog.models import Follow, Meta, Post, utcnow
from scrapers.errors import ParseError
from scrapers.fetch import Fetcher

LOCK_KEY = "sync_lock"
LOCK_STALE_AFTER = timedelta(hours=6)  # a sync that held the lock this long has died somewhere else


def follow(engine: Engine, targets: Iterable[str], *, mirrors: Iterable[str] = ()) -> list[dict[str, Any]]:
    """Add channels (``@name``, ``t.me/name``, ``https://t.me/s/name``, or a page on a mirror) to the
    follow list; `mirrors` are hosts to allow from now on (kept in the catalog). Returns each channel
    with its state. Every target is checked before anything is written (catalog.follow_policy)."""
    with engine.begin() as conn:
        allowed = add_mirrors(conn, list(mirrors)) if mirrors else mirror_hosts(conn)
        parsed = [parse_channel(t, allowed) for t in targets]
        out = []
        for ch in parsed:
            known = conn.execute(select(Follow.id).where(func.lower(Follow.handle) == ch.handle.lower(),
                                                         Follow.host == ch.host)).scalar()
            if known is None:
                conn.execute(insert(Follow).values(handle=ch.handle, host=ch.host, url=ch.url, added_at=utcnow()))
            out.append({"channel": f"@{ch.handle}", "host": ch.host, "url": ch.url, "added": known is None})
    return out


def unfollow(engine: Engine, targets: Iterable[str]) -> list[str]:
    with engine.begin() as conn:
        allowed = mirror_hosts(conn)
        channels = [parse_channel(t, allowed) for t in targets]
        for ch in channels:
            gone = conn.execute(delete(Follow).where(func.lower(Follow.handle) == ch.handle.lower(),
                                                     Follow.host == ch.host)).rowcount
            if not gone:
                raise DigestError(f"{ch.name} is not followed (see `digest following`)")
    return [ch.name for ch in channels]


def following(engine: Engine) -> list[dict[str, Any]]:
    """The follow list with each channel's stored post count and last sync."""
    from catalog.source_identity import find_source_id

    out = []
    with engine.connect() as conn:
        for f in conn.execute(select(Follow).order_by(Follow.handle)).all():
            sid = find_source_id(conn, "telegram", f.handle)
            posts = conn.execute(select(func.count()).select_from(Post).where(Post.source_id == sid)).scalar() \
                if sid is not None else 0
            out.append({"channel": f"@{f.handle}", "host": f.host, "url": f.url, "source_id": sid, "posts": posts,
                        "last_synced_at": f.last_synced_at.isoformat() if f.last_synced_at else None,
                        "last_status": f.last_status, "last_error": f.last_error})
    return out


# ---------------------------------------------------------------- the lock

def _lock_value() -> dict[str, Any]:
    return {"pid": os.getpid(), "host": socket.gethostname(), "since": utcnow().isoformat()}


def _is_stale(holder: dict[str, Any]) -> bool:
    try:
        since = datetime.fromisoformat(holder["since"])
    except (KeyError, TypeError, ValueError):
        return True
    if utcnow() - since > LOCK_STALE_AFTER:
        return True
    if holder.get("host") == socket.gethostname():
        try:
            os.kill(int(holder["pid"]), 0)
        except ProcessLookupError:
            return True  # the process that took it is gone
        except (KeyError, PermissionError, ValueError, TypeError):
            return False  # no readable pid: cannot tell, so held until it is old
    return False


def acquire_lock(engine: Engine) -> None:
    """Take the sync lock (a unique row in ``meta``) or fail naming who holds it."""
    for _ in range(2):
        try:
            with engine.begin() as conn:
                conn.execute(insert(Meta).values(key=LOCK_KEY, value=json.dumps(_lock_value())))
            return
        except IntegrityError:
            with engine.begin() as conn:
                raw = conn.execute(select(Meta.value).where(Meta.key == LOCK_KEY)).scalar()
                try:
                    holder = json.loads(raw) if raw else {}
                except ValueError:
                    holder = {}
                if not _is_stale(holder):
                    raise DigestError(f"another `digest sync` is running on this catalog (pid {holder.get('pid')}"
                                      f" on {holder.get('host')} since {holder.get('since')}); try again later")
                conn.execute(delete(Meta).where(Meta.key == LOCK_KEY, Meta.value == raw))
    raise DigestError("could not take the sync lock")


def release_lock(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(delete(Meta).where(Meta.key == LOCK_KEY, Meta.value.like(f'{{"pid": {os.getpid()},%')))


# ---------------------------------------------------------------- sync

@dataclass
class ChannelResult:
    channel: str
    ok: bool
    pages: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    error: str = ""

    def line(self) -> str:
        if not self.ok:
            return f"{self.channel}: FAILED: {self.error}"
        return (f"{self.channel}: {self.new} new, {self.updated} updated, {self.unchanged} unchanged"
                f" ({self.pages} page{'s' if self.pages != 1 else ''})")


@dataclass
class SyncReport:
    channels: list[ChannelResult] = field(default_factory=list)
    arxiv: dict[str, Any] | None = None
    related: dict[str, Any] | None = None  # counts when the related lists were rebuilt
    site: str | None = None

    @property
    def failed(self) -> list[ChannelResult]:
        return [c for c in self.channels if not c.ok]

    def as_dict(self) -> dict[str, Any]:
        return {"channels": [asdict(c) for c in self.channels], "failed": [c.channel for c in self.failed],
                "arxiv": self.arxiv, "related": self.related, "site": self.site}


class _PageCounter(Fetcher):
    """The shared fetcher, telling the caller about each page it got."""

    on_page: Callable[[], None] | None = None
    guard: SignalGuard | None = None

    def get(self, url: str) -> str:
        if self.guard is None:
            page = super().get(url)
        else:
            with self.guard.interruptible():  # a signal while waiting on the network stops at once
                page = super().get(url)
        if self.on_page:
            self.on_page()
        if self.guard is not None:
            self.guard.check()  # inside the channel's transaction: it rolls back
        return page


def _sync_channel(engine: Engine, f: Any, fetcher: _PageCounter, max_pages: int, mirrors: list[str]) -> ChannelResult:
    from catalog.ingest_url import ingest_url

    result = ChannelResult(channel=f"@{f.handle}", ok=True)
    start = fetcher.requests
    counted = {"pages": 0}
    outer = fetcher.on_page

    def on_page() -> None:
        counted["pages"] += 1
        if outer:
            outer()

    fetcher.on_page = on_page
    try:
        if not allowed_host(f.url, mirrors):  # a row written before the policy, or by hand
            raise DigestError(f"refused {f.url}: not t.me and not a mirror of this catalog")
        # A lost database connection fetches and writes the channel once more after reconnecting.
        stats = retry_once_if_lost(
            engine, target_of(engine), lambda: ingest_url(engine, f.url, max_pages=max_pages, fetcher=fetcher),
            doing=f"while syncing @{f.handle}", unstored=f"nothing from @{f.handle} was stored")
        result.new, result.updated, result.unchanged = stats.posts_new, stats.posts_updated, stats.posts_unchanged
    except DigestError as exc:
        if getattr(exc, "kind", None) in CONNECTION_KINDS:
            raise  # the catalog is gone: no other channel can be stored either
        result.ok, result.error = False, " ".join(str(exc).split())
    except ParseError as exc:
        result.ok, result.error = False, " ".join(str(exc).split())
    except Exception as exc:  # one channel's surprise must not stop the others
        known = db_fault(exc, target_of(engine))
        result.ok, result.error = False, str(known) if known else f"{exc.__class__.__name__}: {first_line(exc)}"
    finally:
        fetcher.on_page = outer
    result.pages = counted["pages"] or (fetcher.requests - start if not result.ok else 0)
    with engine.begin() as conn:
        conn.execute(update(Follow).where(Follow.id == f.id).values(
            last_synced_at=utcnow(), last_status="ok" if result.ok else "failed", last_error=result.error or None))
    return result


def _sync_arxiv(engine: Engine, offline: bool) -> dict[str, Any]:
    from catalog.arxiv import sync as sync_arxiv  # the one place this module reaches arXiv

    report = sync_arxiv(engine, offline=offline)
    return {"fetched": report.fetched, "pending": len(report.pending), "warning": report.warning or ""}


def sync(engine: Engine, *, max_pages: int = 10, interval: float = 1.0, arxiv: bool = True, offline: bool = False,
         site: Path | None = None, site_url: str | None = None,
         on_channel: Callable[[str, int], Callable[[], None]] | None = None,
         on_done: Callable[[ChannelResult], None] | None = None, fetcher: Fetcher | None = None) -> SyncReport:
    """Fetch every followed channel's new posts, then sync arXiv, then build the site into `site` (if given),
    with its public address `site_url` (if given; checked before anything is fetched).

    `on_channel(name, max_pages)` is called as each channel starts and returns a
    per-page callback (for a progress bar); `on_done` gets each channel's result.
    """
    if site is not None:
        from catalog.sitegen.meta import normalise_site_url

        site_url = normalise_site_url(site_url)
    with engine.connect() as conn:
        follows = conn.execute(select(Follow).order_by(Follow.handle, Follow.host)).all()
        mirrors = mirror_hosts(conn)
    if not follows:
        raise DigestError("no channels followed: add some with `digest follow @channel`")
    acquire_lock(engine)
    try:
        report = _sync_locked(engine, follows, mirrors, max_pages=max_pages, interval=interval, arxiv=arxiv,
                              offline=offline, site=site, site_url=site_url, on_channel=on_channel, on_done=on_done,
                              fetcher=fetcher)
    except BaseException:
        try:
            release_lock(engine)
        except Exception:  # noqa: BLE001 - the catalog itself is gone: the error on its way says more
            pass
        raise
    release_lock(engine)
    return report


def _sync_locked(engine: Engine, follows: list, mirrors: list[str], *, max_pages: int, interval: float, arxiv: bool,
                 offline: bool, site: Path | None, site_url: str | None, on_channel, on_done,
                 fetcher: Fetcher | None) -> SyncReport:
    report = SyncReport()
    current = None
    try:
        with SignalGuard() as guard:
            shared = _PageCounter(min_interval=interval, allow_url=lambda url: allowed_host(url, mirrors))
            shared.guard = guard
            if fetcher is not None:  # tests pass their clock and sleep
                shared.clock, shared.sleep, shared.retries, shared.backoff = (
                    fetcher.clock, fetcher.sleep, fetcher.retries, fetcher.backoff)
            for f in follows:
                current = f"@{f.handle}"
                guard.check()
                shared.on_page = on_channel(current, max_pages) if on_channel else None
                result = _sync_channel(engine, f, shared, max_pages, mirrors)
                report.channels.append(result)
                current = None
                if on_done:
                    on_done(result)
            guard.check()
            if arxiv:
                report.arxiv = _sync_arxiv(engine, offline)
                guard.check()
            from catalog.related import ensure_related

            # related lists are computed once per sync, not by the readers (no-op when nothing changed)
            report.related = ensure_related(engine)
            guard.check()
            if site is not None:
                from catalog.sitegen.build import build_site

                report.site = str(build_site(engine, site, site_url=site_url).site_dir)
            return report
    except Interrupted as exc:
        done = {c.channel for c in report.channels}
        exc.stored = [c.channel for c in report.channels if c.ok]
        exc.rolled_back = current
        exc.not_reached = [n for n in (f"@{f.handle}" for f in follows) if n not in done and n != current]
        raise
    except DigestError as exc:
        if getattr(exc, "kind", None) not in CONNECTION_KINDS:
            raise
        stored = [c.channel for c in report.channels if c.ok]
        raise DigestError(f"{exc}; stored before it: {', '.join(stored) if stored else 'no channel'}") from exc
