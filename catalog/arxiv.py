"""arXiv metadata for the papers the catalog has seen: polite fetching, caching, offline safety.

Every arXiv id found in a post is a `Paper` row, ``pending`` until its metadata is
fetched. `sync` asks the arXiv API (through the `arxiv` package) for the pending ids in
batches of up to 100 (``id_list``), and keeps to arXiv's terms of use: one connection,
at least 3 s between requests, a User-Agent that says who is asking. The package itself
sets no request timeout and retries without backoff, so the HTTP layer here is our own
(`Transport`): short connect timeout, exponential backoff on 5xx and read timeouts, and
an injectable clock so tests check the pacing without sleeping.

A fetched paper is cached for good: its row says ``ok``, ``withdrawn``, ``not_found`` or
``error``, and only ``--refresh`` asks again. Each batch is written in one transaction,
after its response parsed completely, so a malformed response writes nothing. When the
network is down (connection refused, DNS failure, connect timeout), sync stops, leaves
everything as it was and reports what is still pending; the caller decides that this is a
warning, not a failure.

arXiv categories become tags (``cs.CL`` -> ``cs.cl``, origin ``arxiv-category``) on the
paper and on every post discussing it, and those posts' search text is rebuilt so a
search for words of the paper's title finds them.
"""

from __future__ import annotations

import json
import os
import re
import socket
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Callable, Iterable
from urllib.parse import urlsplit

import arxiv as arxiv_pkg
import requests
from arxiv import _feed as arxiv_feed
from lxml import etree
from sqlalchemy import Connection, Engine

from catalog.errors import DigestError, UsageError
from catalog.models import to_naive_utc, utcnow
from catalog.search import reindex_posts
from catalog.sqlutil import chunked, placeholders, select_in
from catalog.tagging import apply_category_tags, retag_posts
from scrapers.normalize import normalize_arxiv_id

DEFAULT_API_URL = "https://export.arxiv.org/api/query"
API_URL_ENV = "DIGEST_ARXIV_API_URL"
USER_AGENT = (f"paper-digest/0.1 (catalog of ML paper digests; arXiv metadata sync; "
              f"python-arxiv/{arxiv_pkg.__version__}; requests/{requests.__version__})")
MAX_BATCH = 100  # arXiv's advice for id_list queries

_ATOM_FEED = "{http://www.w3.org/2005/Atom}feed"
_ATOM_ENTRY = "{http://www.w3.org/2005/Atom}entry"
# Strict, like the package's parser but without `recover`: a truncated or garbled
# response must be an error, not a feed with fewer entries.
_STRICT_XML = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, recover=False)
_ERROR_ENTRY = re.compile(r"/api/errors#\w*?_for_(?P<id>\S+)$")
_WITHDRAWN = re.compile(r"\bwithdrawn\b", re.I)
_WITHDRAWN_ABSTRACT = re.compile(r"^\s*(?:this|the) (?:paper|article|submission|manuscript) (?:has been|is|was) withdrawn",
                                 re.I)


class NetworkDown(DigestError):
    """The API could not be reached at all: no network, DNS failure, refused, timed out."""


class ArxivResponseError(DigestError):
    """The API answered, but not with something usable (HTTP error, malformed Atom)."""

    def __init__(self, message: str, *, status: int | None = None, body: bytes = b""):
        super().__init__(message)
        self.status = status
        self.body = body


@dataclass
class ClientConfig:
    """How to talk to the API. The defaults are arXiv's terms of use; tests shrink the waits."""

    api_url: str = DEFAULT_API_URL
    delay_s: float = 3.0            # at least this long between two requests (arXiv asks for 3 s)
    connect_timeout_s: float = 10.0  # short: with no network the command must not hang
    read_timeout_s: float = 30.0
    retries: int = 3                # extra tries after the first, on 5xx / 429 / read timeouts
    backoff_s: float = 2.0          # retry k (1, 2, ...) waits backoff_s * 2**(k-1), and at least delay_s
    batch_size: int = MAX_BATCH
    user_agent: str = USER_AGENT

    @classmethod
    def from_env(cls, api_url: str | None = None, **overrides) -> ClientConfig:
        """Defaults, with the API URL from the argument, else ``$DIGEST_ARXIV_API_URL``."""
        url = api_url or os.environ.get(API_URL_ENV) or DEFAULT_API_URL
        if not re.match(r"^https?://[^/\s]+", url):
            raise UsageError(f"bad arXiv API URL {url!r}: expected http(s)://host/path")
        return cls(api_url=url, **overrides)


class Transport:
    """GETs over one kept-alive connection, paced, with timeouts and backoff.

    `clock` and `sleep` are injectable (``time.monotonic`` / ``time.sleep`` by default) so a
    test can run the pacing on a fake clock. `sent` records ``(clock(), url)`` per request.
    """

    def __init__(self, config: ClientConfig, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self.config = config
        self.clock = clock
        self.sleep = sleep
        self.session = requests.Session()
        # One connection, no urllib3-level retries: the retry policy is ours alone.
        adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=1, max_retries=0,
                                                pool_block=True)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers["User-Agent"] = config.user_agent
        self.sent: list[tuple[float, str]] = []
        self._last_done: float | None = None
        self._ever_answered = False
        self._resolved = False

    def close(self) -> None:
        self.session.close()

    def _wait_turn(self, at_least: float = 0.0) -> None:
        wait = at_least
        if self._last_done is not None:
            wait = max(wait, self.config.delay_s - (self.clock() - self._last_done))
        if wait > 0:
            self.sleep(wait)

    def _resolve_once(self, url: str) -> None:
        """Look the host up once, with the connect timeout: requests' timeout does not cover DNS,
        and a resolver that never answers must not hang the command."""
        if self._resolved:
            return
        parts = urlsplit(url)
        answer: list = []

        def lookup() -> None:
            try:
                socket.getaddrinfo(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
                answer.append(None)
            except OSError as exc:
                answer.append(exc)

        worker = threading.Thread(target=lookup, daemon=True)
        worker.start()
        worker.join(self.config.connect_timeout_s)
        if not answer:
            raise NetworkDown(f"cannot reach the arXiv API at {parts.netloc}: DNS lookup timed out "
                              f"after {self.config.connect_timeout_s:g} s")
        if answer[0] is not None:
            raise NetworkDown(f"cannot reach the arXiv API at {parts.netloc}: DNS lookup failed ({answer[0]})")
        self._resolved = True

    def get(self, url: str) -> bytes:
        """The body of a 200 answer; retries what is worth retrying, raises the rest."""
        cfg = self.config
        self._resolve_once(url)
        last_problem = ""
        asked_wait = 0.0  # a Retry-After the server sent with its 503/429
        for attempt in range(cfg.retries + 1):
            backoff = cfg.backoff_s * 2 ** (attempt - 1) if attempt else 0.0
            self._wait_turn(max(backoff, asked_wait))
            self.sent.append((self.clock(), url))
            try:
                resp = self.session.get(url, timeout=(cfg.connect_timeout_s, cfg.read_timeout_s))
                body = resp.content
            except requests.exceptions.ConnectTimeout as exc:
                raise NetworkDown(f"cannot reach the arXiv API at {_host(url)}: connect timed out "
                                  f"after {cfg.connect_timeout_s:g} s") from exc
            except (requests.exceptions.ReadTimeout, requests.exceptions.ChunkedEncodingError) as exc:
                last_problem = f"no answer within {cfg.read_timeout_s:g} s" \
                    if isinstance(exc, requests.exceptions.ReadTimeout) else "answer cut off"
                continue
            except requests.exceptions.ConnectionError as exc:
                # Refused or no DNS before anything ever answered: no network, fail fast.
                # A dropped connection to a server that has answered before is transient.
                if not self._ever_answered:
                    raise NetworkDown(f"cannot reach the arXiv API at {_host(url)}: {_reason(exc)}") from exc
                last_problem = f"connection lost ({_reason(exc)})"
                continue
            except requests.exceptions.RequestException as exc:
                raise ArxivResponseError(f"arXiv API request failed: {exc.__class__.__name__}: {exc}") from exc
            finally:
                self._last_done = self.clock()
            self._ever_answered = True
            if resp.status_code == 200:
                return body
            if resp.status_code >= 500 or resp.status_code == 429:
                last_problem = f"HTTP {resp.status_code}"
                asked_wait = _retry_after(resp.headers.get("Retry-After"))
                continue
            raise ArxivResponseError(f"arXiv API answered HTTP {resp.status_code} for {_short(url)}",
                                     status=resp.status_code, body=body)
        if last_problem.startswith("HTTP"):
            raise ArxivResponseError(f"arXiv API answered {last_problem} {cfg.retries + 1} times; try again later")
        raise NetworkDown(f"arXiv API at {_host(url)}: {last_problem}, {cfg.retries + 1} tries")


MAX_RETRY_AFTER_S = 120.0


def _retry_after(value: str | None) -> float:
    """Seconds from a numeric Retry-After header (capped; dates and junk count as none)."""
    try:
        return min(max(float(value), 0.0), MAX_RETRY_AFTER_S) if value else 0.0
    except ValueError:
        return 0.0


def _host(url: str) -> str:
    return re.sub(r"^https?://([^/]+).*$", r"\1", url)


def _short(url: str) -> str:
    return url if len(url) < 120 else url[:117] + "..."


def _reason(exc: Exception) -> str:
    text = str(exc)
    for needle, reason in (("Name or service not known", "DNS lookup failed"),
                           ("Temporary failure in name resolution", "DNS lookup failed"),
                           ("nodename nor servname", "DNS lookup failed"),
                           ("getaddrinfo failed", "DNS lookup failed"),
                           ("Connection refused", "connection refused"),
                           ("Network is unreachable", "network is unreachable")):
        if needle in text:
            return reason
    return exc.__class__.__name__


@dataclass
class ParsedPage:
    results: list[arxiv_pkg.Result]
    error_ids: list[str]  # ids the API rejected in error entries (``/api/errors#..._for_ID``)
    total: int


def parse_feed(content: bytes) -> ParsedPage:
    """An API response as package `Result`s; anything that is not a whole Atom feed raises."""
    try:
        root = etree.fromstring(content, _STRICT_XML)
    except etree.XMLSyntaxError as exc:
        raise ArxivResponseError(f"malformed response from the arXiv API (not valid XML: {exc})") from exc
    if root.tag != _ATOM_FEED:
        raise ArxivResponseError(f"unexpected response from the arXiv API: root element {root.tag!r}, not an Atom feed")
    results, error_ids = [], []
    for entry in root.iterchildren(_ATOM_ENTRY):
        result = _entry_result(entry)
        if isinstance(result, str):
            error_ids.append(result)
        elif result is not None:
            results.append(result)
    total = root.findtext("{http://a9.com/-/spec/opensearch/1.1/}totalResults")
    return ParsedPage(results, error_ids, int(total) if total and total.strip().isdigit() else len(results))


_A = "{http://www.w3.org/2005/Atom}"
_X = "{http://arxiv.org/schemas/atom}"
_TEXT_FIELDS = {_A + "id": "id", _A + "title": "title", _A + "summary": "summary", _A + "updated": "updated",
                _A + "published": "published", _X + "comment": "comment", _X + "journal_ref": "journal_ref",
                _X + "doi": "doi"}


def _when(text: str | None):
    if not text:
        return None
    dt = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt.astimezone(timezone.utc)


def _entry_result(entry) -> arxiv_pkg.Result | str | None:
    """One ``<entry>`` as the package's `Result`, read in a single pass over its children.

    Same fields and rules as the package's own mapping (entries without dates are
    skipped), but without a namespaced path search per field, which made parsing the
    slowest step of a sync. An API error entry gives the id it rejects (a str).
    """
    fields: dict[str, str | None] = {}
    authors, links, categories, primary = [], [], [], ""
    for child in entry:
        tag = child.tag
        name = _TEXT_FIELDS.get(tag)
        if name is not None:
            fields[name] = child.text
        elif tag == _A + "author":
            author_name, affiliations = "", []
            for part in child:
                if part.tag == _A + "name":
                    author_name = part.text or ""
                elif part.tag == _X + "affiliation" and part.text is not None:
                    affiliations.append(part.text)
            authors.append(arxiv_pkg.Result.Author(author_name, affiliations))
        elif tag == _A + "link":
            href = child.get("href")
            if href is not None:
                links.append(arxiv_pkg.Result.Link(href, title=child.get("title"), rel=child.get("rel") or "",
                                                   content_type=child.get("type")))
        elif tag == _A + "category":
            term = child.get("term")
            if term is not None:
                categories.append(term)
        elif tag == _X + "primary_category":
            primary = child.get("term") or ""
    entry_id = (fields.get("id") or "").strip()
    bad = _ERROR_ENTRY.search(entry_id) if "/api/errors" in entry_id else None
    if bad:
        return bad.group("id")
    try:
        updated, published = _when(fields.get("updated")), _when(fields.get("published"))
    except ValueError as exc:
        raise ArxivResponseError(f"malformed response from the arXiv API: bad date in {entry_id}: {exc}") from exc
    if not entry_id or updated is None or published is None:
        return None  # what arXiv sends for an id it does not know
    return arxiv_pkg.Result(
        entry_id=entry_id, updated=updated, published=published, title=fields.get("title") or "",
        authors=authors, summary=fields.get("summary") or "", comment=fields.get("comment"),
        journal_ref=fields.get("journal_ref"), doi=fields.get("doi"), primary_category=primary,
        categories=categories, links=links)


class ArxivClient(arxiv_pkg.Client):
    """The package's client (URL building, paging, Result objects) over our `Transport`."""

    def __init__(self, config: ClientConfig, transport: Transport):
        super().__init__(page_size=config.batch_size, delay_seconds=config.delay_s, num_retries=config.retries)
        self._session.close()
        self._session = transport.session
        self.transport = transport
        escaped = config.api_url.replace("{", "{{").replace("}", "}}")
        self.query_url_format = escaped + ("&{}" if "?" in escaped else "?{}")
        self.last_error_ids: list[str] = []

    def _parse_feed(self, url: str, first_page: bool = True, _try_index: int = 0):
        page = parse_feed(self.transport.get(url))
        self.last_error_ids = page.error_ids
        return arxiv_feed.ParsedFeed(header=arxiv_feed.FeedHeader(total_results=page.total), results=page.results)

    def fetch_ids(self, ids: list[str]) -> tuple[list[arxiv_pkg.Result], list[str]]:
        """Results for `ids` (one request when len(ids) <= page size) and the ids the API rejected."""
        rejected: list[str] = []
        todo = list(ids)
        while todo:
            try:
                self.page_size = len(todo)  # one request per batch, asking for no more than it holds
                results = list(self.results(arxiv_pkg.Search(id_list=todo, max_results=len(todo))))
                rejected += self.last_error_ids
                return results, rejected
            except ArxivResponseError as exc:
                # arXiv answers 400 with an error entry naming a malformed id; drop it, ask again.
                named = set(_rejected_in(exc.body)) & set(todo) if exc.status == 400 else set()
                if not named:
                    raise
                rejected += sorted(named)
                todo = [i for i in todo if i not in named]
        return [], rejected

    def search(self, query: str, max_results: int) -> list[arxiv_pkg.Result]:
        self.page_size = min(max_results, MAX_BATCH)
        return list(self.results(arxiv_pkg.Search(query=query, max_results=max_results)))


def _rejected_in(body: bytes) -> list[str]:
    try:
        return parse_feed(body).error_ids
    except ArxivResponseError:
        return []


# ---------------------------------------------------------------- mapping results to rows

@dataclass
class PaperMeta:
    """What we keep of one API entry (plain values, ready for the `paper` row)."""

    arxiv_id: str
    version: int | None
    title: str
    authors: list[str]
    abstract: str
    primary_category: str | None
    categories: list[str]
    published: object
    updated: object
    pdf_url: str | None
    doi: str | None
    journal_ref: str | None
    comment: str | None
    status: str = "ok"


def _one_line(text: str | None) -> str:
    return " ".join((text or "").split())


_VERSIONED = re.compile(r"^(?P<id>.+?)(?:v(?P<v>\d+))?$")


def split_version(short_id: str) -> tuple[str, int | None]:
    """``1807.03819v3`` -> (``1807.03819``, 3); ``hep-th/9901001`` -> (``hep-th/9901001``, None)."""
    m = _VERSIONED.match(short_id.strip())
    return m.group("id"), int(m.group("v")) if m.group("v") else None


def category_tag(category: str) -> str:
    """``cs.CL`` -> ``cs.cl``: the tag an arXiv category becomes."""
    return category.strip().casefold()


def paper_meta(result: arxiv_pkg.Result) -> PaperMeta:
    arxiv_id, version = split_version(result.get_short_id())
    abstract = _one_line(result.summary)
    comment = _one_line(result.comment) or None
    withdrawn = bool(comment and _WITHDRAWN.search(comment)) or bool(_WITHDRAWN_ABSTRACT.match(abstract))
    categories = list(dict.fromkeys(c for c in result.categories if c))
    primary = result.primary_category or (categories[0] if categories else None)
    if primary and primary not in categories:
        categories.insert(0, primary)
    return PaperMeta(
        arxiv_id=arxiv_id, version=version, title=_one_line(result.title),
        authors=[name for name in (_one_line(a.name) for a in result.authors) if name],
        abstract=abstract, primary_category=primary, categories=categories,
        published=to_naive_utc(result.published), updated=to_naive_utc(result.updated),
        pdf_url=result.pdf_url, doi=_one_line(result.doi) or None,
        journal_ref=_one_line(result.journal_ref) or None, comment=comment,
        status="withdrawn" if withdrawn else "ok")


# ---------------------------------------------------------------- writing

_UPSERT = (
    "INSERT INTO paper(arxiv_id, version, title, authors, abstract, primary_category, categories, published,"
    " updated, pdf_url, doi, journal_ref, comment, status, fetched_at)"
    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
    " ON CONFLICT(arxiv_id) DO UPDATE SET version=excluded.version, title=excluded.title,"
    " authors=excluded.authors, abstract=excluded.abstract, primary_category=excluded.primary_category,"
    " categories=excluded.categories, published=excluded.published, updated=excluded.updated,"
    " pdf_url=excluded.pdf_url, doi=excluded.doi, journal_ref=excluded.journal_ref, comment=excluded.comment,"
    " status=excluded.status, fetched_at=excluded.fetched_at")


def store_papers(conn: Connection, found: list[PaperMeta], missing: Iterable[tuple[str, str]] = ()) -> list[int]:
    """Upsert fetched papers and mark `missing` ids ``(arxiv_id, status)``; returns the posts touched.

    Category tags are rewritten for these papers and for the posts linking them, and those
    posts' search rows are rebuilt (their text now includes the paper's title and abstract).
    """
    now = utcnow()
    if found:
        conn.exec_driver_sql(_UPSERT, [
            (m.arxiv_id, m.version, m.title, json.dumps(m.authors, ensure_ascii=False), m.abstract,
             m.primary_category, json.dumps(m.categories), m.published, m.updated, m.pdf_url, m.doi,
             m.journal_ref, m.comment, m.status, now) for m in found])
    missing = list(missing)
    if missing:
        # A paper we once had metadata for keeps it when a refresh comes back empty-handed.
        conn.exec_driver_sql(
            "INSERT INTO paper(arxiv_id, authors, categories, status, fetched_at) VALUES (?, '[]', '[]', ?, ?)"
            " ON CONFLICT(arxiv_id) DO UPDATE SET fetched_at=excluded.fetched_at,"
            " status=CASE WHEN paper.title IS NULL THEN excluded.status ELSE paper.status END",
            [(arxiv_id, status, now) for arxiv_id, status in missing])
    if not found:
        return []
    paper_ids = dict(select_in(conn, "SELECT arxiv_id, id FROM paper WHERE arxiv_id IN", [m.arxiv_id for m in found]))
    names = sorted({category_tag(c) for m in found for c in m.categories})
    if names:
        conn.exec_driver_sql("INSERT OR IGNORE INTO tag(name) VALUES (?)", [(n,) for n in names])
    tag_ids = dict(select_in(conn, "SELECT name, id FROM tag WHERE name IN", names)) if names else {}
    pids = list(paper_ids.values())
    for part in chunked(pids):
        conn.exec_driver_sql(f"DELETE FROM paper_tag WHERE origin='arxiv-category' AND paper_id IN ({placeholders(part)})",
                             tuple(part))
    rows = {(paper_ids[m.arxiv_id], tag_ids[category_tag(c)]) for m in found for c in m.categories}
    if rows:
        conn.exec_driver_sql("INSERT OR IGNORE INTO paper_tag(paper_id, tag_id, origin) VALUES (?, ?, 'arxiv-category')",
                             sorted(rows))
    posts = [r[0] for r in select_in(conn, "SELECT DISTINCT post_id FROM post_paper WHERE paper_id IN", pids)]
    if posts:
        retag_posts(conn, posts)
        reindex_posts(conn, posts)
    return posts


# ---------------------------------------------------------------- sync and add

@dataclass
class SyncReport:
    requested: int = 0          # ids this run meant to fetch
    fetched: int = 0            # papers stored with metadata (ok or withdrawn)
    withdrawn: int = 0
    not_found: int = 0
    errors: int = 0             # ids the API rejected as malformed
    requests: int = 0
    posts_updated: int = 0      # posts re-tagged and re-indexed
    offline: bool = False
    warning: str | None = None
    pending: list[str] = field(default_factory=list)  # ids still without metadata
    added: list[str] = field(default_factory=list)    # `add`: ids now in the catalog

    def as_dict(self) -> dict:
        return asdict(self)


def _pending_ids(conn: Connection, refresh: bool) -> list[str]:
    where = "" if refresh else " WHERE status='pending'"
    return [r[0] for r in conn.exec_driver_sql(f"SELECT arxiv_id FROM paper{where} ORDER BY arxiv_id")]


class Syncer:
    """Fetches ids batch by batch and stores each batch in its own transaction."""

    def __init__(self, engine: Engine, config: ClientConfig | None = None, *, transport: Transport | None = None,
                 on_progress: Callable[[int], None] | None = None):
        self.engine = engine
        self.config = config or (transport.config if transport else ClientConfig.from_env())
        self.transport = transport or Transport(self.config)
        self.client = ArxivClient(self.config, self.transport)
        self.on_progress = on_progress

    def _requests(self) -> int:
        return len(self.transport.sent)

    def fetch_and_store(self, ids: list[str], report: SyncReport, versions: dict[str, int] | None = None) -> None:
        versions = versions or {}
        size = max(1, min(self.config.batch_size, MAX_BATCH))
        for start in range(0, len(ids), size):
            batch = ids[start:start + size]
            asked = [f"{i}v{versions[i]}" if i in versions else i for i in batch]
            results, rejected = self.client.fetch_ids(asked)
            metas: dict[str, PaperMeta] = {}
            for result in results:
                meta = paper_meta(result)
                if meta.arxiv_id in batch:
                    metas[meta.arxiv_id] = meta
            rejected_ids = {split_version(r)[0] for r in rejected}
            missing = [(i, "error" if i in rejected_ids else "not_found") for i in batch if i not in metas]
            with self.engine.begin() as conn:
                posts = store_papers(conn, list(metas.values()), missing)
            report.fetched += len(metas)
            report.withdrawn += sum(m.status == "withdrawn" for m in metas.values())
            report.not_found += sum(s == "not_found" for _, s in missing)
            report.errors += sum(s == "error" for _, s in missing)
            report.posts_updated += len(posts)
            if self.on_progress:
                self.on_progress(len(batch))


def sync(engine: Engine, *, refresh: bool = False, offline: bool = False, config: ClientConfig | None = None,
         transport: Transport | None = None, on_start: Callable[[int], None] | None = None,
         on_progress: Callable[[int], None] | None = None) -> SyncReport:
    """Fetch metadata for every pending paper (every paper with `refresh`).

    Offline, or when the network turns out to be down, nothing is fetched or lost: the
    report lists the ids still pending and carries a warning; batches stored before the
    network went away stay stored. A malformed response raises `ArxivResponseError`
    after rolling back its own batch.
    """
    report = SyncReport()
    with engine.begin() as conn:
        apply_category_tags(conn)
        ids = _pending_ids(conn, refresh)
    report.requested = len(ids)
    if on_start:
        on_start(len(ids))
    if offline:
        report.offline = True
        report.warning = "offline: nothing fetched"
    elif ids:
        syncer = Syncer(engine, config, transport=transport, on_progress=on_progress)
        try:
            syncer.fetch_and_store(ids, report)
        except NetworkDown as exc:
            report.offline = True
            report.warning = f"{exc}; nothing more fetched"
        finally:
            report.requests = syncer._requests()
            if transport is None:
                syncer.transport.close()
    with engine.connect() as conn:
        report.pending = [i for i in _pending_ids(conn, False)]
    return report


def _looks_like_id(item: str) -> bool:
    """One token that is not a field query (``ti:dropout``): meant as an arXiv id or URL."""
    if any(ch.isspace() for ch in item):
        return False
    low = item.lower()
    if low.startswith(("arxiv:", "http://", "https://", "arxiv.org/", "www.arxiv.org/")):
        return True
    return not re.match(r"^[a-z_]+:", low) and bool(re.match(r"^[\w.\-/]*\d[\w.\-/]*$", item))


def parse_add_args(items: Iterable[str]) -> tuple[dict[str, int | None], list[str]]:
    """Split `digest arxiv add` arguments into ids (with any version named) and search queries.

    ``2004.13342``, ``arXiv:1807.03819v3``, ``hep-th/9901001`` and arxiv.org URLs are ids;
    anything else (``cat:cs.CL AND ti:dropout``, ``dropout``) is an arXiv search query.
    """
    ids: dict[str, int | None] = {}
    queries: list[str] = []
    for item in (i.strip() for i in items):
        if not item:
            continue
        if not _looks_like_id(item):
            queries.append(item)
            continue
        try:
            arxiv_id, version = normalize_arxiv_id(item)
        except ValueError:
            raise UsageError(f"not an arXiv id: {item!r} (ids look like 2004.13342, 1807.03819v3 or "
                             "hep-th/9901001; quote a search query such as 'cat:cs.CL AND ti:dropout')") from None
        ids[arxiv_id] = version if version is not None else ids.get(arxiv_id)
    return ids, queries


def add(engine: Engine, items: Iterable[str], *, max_results: int = 10, config: ClientConfig | None = None,
        transport: Transport | None = None, offline: bool = False) -> SyncReport:
    """Add papers by id or by arXiv search query, whether or not a post mentions them.

    Ids are always recorded (as ``pending`` when the API cannot be reached, so a later
    `sync` fills them); queries need the network. Ids already fetched are not asked again.
    """
    ids, queries = parse_add_args(items)
    if not ids and not queries:
        raise UsageError("give at least one arXiv id or search query")
    if max_results < 1:
        raise UsageError("--max must be at least 1")
    report = SyncReport()
    with engine.begin() as conn:
        if ids:
            conn.exec_driver_sql(
                "INSERT OR IGNORE INTO paper(arxiv_id, authors, categories, status) VALUES (?, '[]', '[]', 'pending')",
                [(i,) for i in ids])
        cached = {r[0] for r in select_in(conn, "SELECT arxiv_id FROM paper WHERE status != 'pending' AND arxiv_id IN",
                                           list(ids))} if ids else set()
    todo = [i for i in ids if i not in cached]
    report.added = list(ids)
    report.requested = len(todo)
    if offline:
        report.offline, report.warning = True, "offline: nothing fetched"
    else:
        syncer = Syncer(engine, config, transport=transport)
        try:
            if todo:
                syncer.fetch_and_store(todo, report, {i: v for i, v in ids.items() if v is not None and i in todo})
            for query in queries:
                metas = [paper_meta(r) for r in syncer.client.search(query, max_results)]
                with engine.begin() as conn:
                    report.posts_updated += len(store_papers(conn, metas))
                report.fetched += len(metas)
                report.added += [m.arxiv_id for m in metas if m.arxiv_id not in report.added]
        except NetworkDown as exc:
            report.offline, report.warning = True, f"{exc}; nothing more fetched"
        finally:
            report.requests = syncer._requests()
            if transport is None:
                syncer.transport.close()
    if report.offline and queries:
        report.warning += f"; {len(queries)} search quer{'y' if len(queries) == 1 else 'ies'} not run"
    with engine.connect() as conn:
        report.pending = [r[0] for r in select_in(
            conn, "SELECT arxiv_id FROM paper WHERE status='pending' AND arxiv_id IN", report.added)] \
            if report.added else []
    return report
