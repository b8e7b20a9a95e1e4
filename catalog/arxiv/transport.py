"""HTTP to the arXiv API: one kept-alive connection, paced, with timeouts, backoff and a DNS bound.

Why this is ours and not the `arxiv` package's `Client`: the package's public API has
no request timeout (a dead network hangs the command), no way to set our User-Agent,
retries at once without backoff and ignores Retry-After, paces on the wall clock (tests
would have to sleep), and turns "no network" into the same exception as an HTTP error.
Its request path is reachable only through private names (``_session``,
``_parse_feed``), which we do not use. So the request path is our own, on the standard
library's `http.client` (not `requests`, which the package uses: per request it
re-encodes the 1.5 KB URL character by character and re-reads the environment, several
times the CPU of the exchange itself, and most of a no-pacing sync's overhead). The
package still describes the query (`arxiv.Search`, see `catalog.arxiv.client`) and the
results (`arxiv.Result`, see `catalog.arxiv.feed`).

arXiv's terms of use: at least 3 s between requests, one connection, a User-Agent that
says who is asking. `clock`, `sleep` and `resolve` are injectable so tests check the
pacing on a fake clock and the DNS handling with a resolver they control.
"""

from __future__ import annotations

import functools
import gzip
import http.client
import os
import platform
import re
import select
import socket
import ssl
import threading
import time
import urllib.request
from dataclasses import dataclass
from importlib.metadata import version
from typing import Callable
from urllib.parse import urlsplit

from catalog.arxiv.errors import ArxivResponseError, NetworkDown
from catalog.errors import UsageError

DEFAULT_API_URL = "https://export.arxiv.org/api/query"
API_URL_ENV = "DIGEST_ARXIV_API_URL"
USER_AGENT = (f"paper-digest/0.1 (catalog of ML paper digests; arXiv metadata sync; "
              f"python-arxiv/{version('arxiv')}; python/{platform.python_version()})")
MAX_BATCH = 100  # arXiv's advice for id_list queries
MAX_RETRY_AFTER_S = 120.0

Resolver = Callable[[str, int], object]  # (host, port) -> anything; raises OSError when the name is unknown


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
        if not re.match(r"^https?://[^/\s]+", url) or not _port_ok(url):
            raise UsageError(f"bad arXiv API URL {url!r}: expected http(s)://host[:port]/path")
        return cls(api_url=url, **overrides)


def _port_ok(url: str) -> bool:
    try:
        urlsplit(url).port  # noqa: B018 - raises on a port that is not a number
        return True
    except ValueError:
        return False


def system_resolver(host: str, port: int) -> object:
    return socket.getaddrinfo(host, port)


class Transport:
    """GETs over one kept-alive connection, paced, with timeouts and backoff.

    `clock` and `sleep` default to ``time.monotonic`` / ``time.sleep``; `resolve` to the
    system resolver. `sent` records ``(clock(), url)`` per request. A proxy named in the
    environment (``HTTPS_PROXY``/``HTTP_PROXY``, ``NO_PROXY``) is used as `requests`
    would: a CONNECT tunnel for https, absolute URLs for http.
    """

    def __init__(self, config: ClientConfig, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep, resolve: Resolver = system_resolver):
        self.config = config
        self.clock = clock
        self.sleep = sleep
        self.resolve = resolve
        self.sent: list[tuple[float, str]] = []
        self._target = urlsplit(config.api_url)
        self._proxy = _proxy_for(config.api_url)
        self._conn: http.client.HTTPConnection | None = None
        self._last_done: float | None = None
        self._ever_answered = False
        self._resolved = False

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _wait_turn(self, at_least: float = 0.0) -> None:
        wait = at_least
        if self._last_done is not None:
            wait = max(wait, self.config.delay_s - (self.clock() - self._last_done))
        if wait > 0:
            self.sleep(wait)

    def _peer(self) -> tuple[str, int]:
        """The host and port we connect to: the proxy's, if there is one."""
        parts = self._proxy or self._target
        return parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)

    def _resolve_once(self) -> None:
        """Look the host up once, bounded by the connect timeout: a socket timeout does not
        cover DNS, and a resolver that never answers must not hang the command."""
        if self._resolved:
            return
        host, port = self._peer()
        answer: list = []

        def lookup() -> None:
            try:
                self.resolve(host, port)
                answer.append(None)
            except OSError as exc:
                answer.append(exc)

        # A daemon thread: a lookup stuck in the C library cannot be cancelled, only left behind.
        worker = threading.Thread(target=lookup, daemon=True, name="arxiv-dns")
        worker.start()
        worker.join(self.config.connect_timeout_s)
        if not answer:
            raise NetworkDown(f"cannot reach the arXiv API at {host}: DNS lookup timed out "
                              f"after {self.config.connect_timeout_s:g} s")
        if answer[0] is not None:
            raise NetworkDown(f"cannot reach the arXiv API at {host}: DNS lookup failed ({answer[0]})")
        self._resolved = True

    def _connect(self) -> http.client.HTTPConnection:
        """The kept-alive connection, opened (with the connect timeout) when there is none."""
        if self._conn is not None and self._conn.sock is not None and not _dropped(self._conn.sock):
            return self._conn
        self.close()
        host, port = self._peer()
        cfg = self.config
        if self._target.scheme == "https":
            conn = http.client.HTTPSConnection(host, port, timeout=cfg.connect_timeout_s, context=_tls_context())
            if self._proxy:
                conn.set_tunnel(self._target.hostname, self._target.port or 443)
        else:
            conn = http.client.HTTPConnection(host, port, timeout=cfg.connect_timeout_s)
        self._conn = conn
        conn.connect()
        conn.sock.settimeout(cfg.read_timeout_s)  # from here on, the socket timeout bounds each read
        return conn

    def _request_target(self, url: str) -> str:
        if self._proxy and self._target.scheme == "http":
            return url  # an http proxy takes the absolute URL
        parts = urlsplit(url)
        return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")

    def _exchange(self, url: str) -> tuple[int, dict, bytes]:
        """One request and its whole answer: (status, headers, body)."""
        cfg = self.config
        try:
            conn = self._connect()
        except TimeoutError as exc:
            self.close()
            raise NetworkDown(f"cannot reach the arXiv API at {_host(url)}: connect timed out "
                              f"after {cfg.connect_timeout_s:g} s") from exc
        except OSError as exc:  # refused, unreachable, no route, TLS handshake failure
            self.close()
            raise _Unreachable(exc) from exc
        try:
            conn.request("GET", self._request_target(url), headers={
                "User-Agent": cfg.user_agent, "Accept-Encoding": "gzip", "Connection": "keep-alive"})
            resp = conn.getresponse()
            body = resp.read()
        except BaseException:
            self.close()  # a half-read answer leaves the connection unusable
            raise
        if resp.will_close:
            self.close()
        headers = {k.lower(): v for k, v in resp.getheaders()}
        if headers.get("content-encoding", "").lower() == "gzip":
            try:
                body = gzip.decompress(body)
            except (OSError, EOFError) as exc:
                raise ArxivResponseError(f"malformed response from the arXiv API (bad gzip body: {exc})") from exc
        return resp.status, headers, body

    def get(self, url: str) -> bytes:
        """The body of a 200 answer; retries what is worth retrying, raises the rest."""
        cfg = self.config
        self._resolve_once()
        last_problem = ""
        asked_wait = 0.0  # a Retry-After the server sent with its 503/429
        for attempt in range(cfg.retries + 1):
            backoff = cfg.backoff_s * 2 ** (attempt - 1) if attempt else 0.0
            self._wait_turn(max(backoff, asked_wait))
            self.sent.append((self.clock(), url))
            try:
                status, headers, body = self._exchange(url)
            except TimeoutError:
                last_problem = f"no answer within {cfg.read_timeout_s:g} s"
                continue
            except http.client.IncompleteRead:
                last_problem = "answer cut off"
                continue
            except (_Unreachable, ConnectionError, http.client.RemoteDisconnected) as exc:
                # Refused or unreachable before anything ever answered: no network, fail fast.
                # A dropped connection to a server that has answered before is transient.
                reason = _reason(exc.__cause__ if isinstance(exc, _Unreachable) else exc)
                if not self._ever_answered:
                    raise NetworkDown(f"cannot reach the arXiv API at {_host(url)}: {reason}") from exc
                last_problem = f"connection lost ({reason})"
                continue
            except (http.client.HTTPException, OSError) as exc:
                raise ArxivResponseError(f"arXiv API request failed: {exc.__class__.__name__}: {exc}") from exc
            finally:
                self._last_done = self.clock()
            self._ever_answered = True
            if status == 200:
                return body
            if status >= 500 or status == 429:
                last_problem = f"HTTP {status}"
                asked_wait = _retry_after(headers.get("retry-after"))
                continue
            raise ArxivResponseError(f"arXiv API answered HTTP {status} for {_short(url)}", status=status, body=body)
        if last_problem.startswith("HTTP"):
            raise ArxivResponseError(f"arXiv API answered {last_problem} {cfg.retries + 1} times; try again later")
        raise NetworkDown(f"arXiv API at {_host(url)}: {last_problem}, {cfg.retries + 1} tries")


def _dropped(sock: socket.socket) -> bool:
    """An idle kept-alive socket with something to read has been closed by the server."""
    try:
        return bool(select.select([sock], [], [], 0)[0])
    except (OSError, ValueError):
        return True


class _Unreachable(Exception):
    """Opening the connection failed (the OSError is its cause)."""


def _proxy_for(url: str):
    """The proxy the environment names for `url` (``urlsplit`` of it), or None."""
    parts = urlsplit(url)
    if parts.hostname and urllib.request.proxy_bypass(parts.hostname):
        return None
    proxy = urllib.request.getproxies().get(parts.scheme)
    return urlsplit(proxy if "://" in proxy else f"http://{proxy}") if proxy else None


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """Certificates as `requests` finds them: its environment variables, else certifi's bundle."""
    cafile = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if not cafile:
        try:
            import certifi

            cafile = certifi.where()
        except ImportError:
            cafile = None
    return ssl.create_default_context(cafile=cafile)


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


def _reason(exc: BaseException | None) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, socket.gaierror):
        return "DNS lookup failed"
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
