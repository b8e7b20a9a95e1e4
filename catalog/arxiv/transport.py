"""HTTP to the arXiv API: one kept-alive connection, paced, with timeouts, backoff and a DNS bound.

Why this is ours and not the `arxiv` package's `Client`: the package's public API has
no request timeout (a dead network hangs the command), no way to set our User-Agent,
retries at once without backoff and ignores Retry-After, paces on the wall clock (tests
would have to sleep), and turns "no network" into the same exception as an HTTP error.
Its request path is reachable only through private names (``_session``,
``_parse_feed``), which we do not use. So the request path is `requests` directly; the
package still describes the query (`arxiv.Search`, see `catalog.arxiv.client`) and the
results (`arxiv.Result`, see `catalog.arxiv.feed`).

arXiv's terms of use: at least 3 s between requests, one connection, a User-Agent that
says who is asking. `clock`, `sleep` and `resolve` are injectable so tests check the
pacing on a fake clock and the DNS handling with a resolver they control.
"""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from dataclasses import dataclass
from importlib.metadata import version
from typing import Callable
from urllib.parse import urlsplit

import requests

from catalog.arxiv.errors import ArxivResponseError, NetworkDown
from catalog.errors import UsageError

DEFAULT_API_URL = "https://export.arxiv.org/api/query"
API_URL_ENV = "DIGEST_ARXIV_API_URL"
USER_AGENT = (f"paper-digest/0.1 (catalog of ML paper digests; arXiv metadata sync; "
              f"python-arxiv/{version('arxiv')}; requests/{requests.__version__})")
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
        if not re.match(r"^https?://[^/\s]+", url):
            raise UsageError(f"bad arXiv API URL {url!r}: expected http(s)://host/path")
        return cls(api_url=url, **overrides)


def system_resolver(host: str, port: int) -> object:
    return socket.getaddrinfo(host, port)


class Transport:
    """GETs over one kept-alive connection, paced, with timeouts and backoff.

    `clock` and `sleep` default to ``time.monotonic`` / ``time.sleep``; `resolve` to the
    system resolver. `sent` records ``(clock(), url)`` per request.
    """

    def __init__(self, config: ClientConfig, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep, resolve: Resolver = system_resolver):
        self.config = config
        self.clock = clock
        self.sleep = sleep
        self.resolve = resolve
        self.session = requests.Session()
        # One connection, no urllib3-level retries: the retry policy is ours alone.
        adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=1, max_retries=0,
                                                pool_block=True)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers["User-Agent"] = config.user_agent
        # Proxy and CA-bundle settings from the environment, read once: with `trust_env` requests
        # reads them again, and looks for ~/.netrc, on every request (a few ms each on a busy
        # disk). arXiv needs no credentials, so .netrc is not consulted at all.
        env = self.session.merge_environment_settings(config.api_url, {}, None, None, None)
        self.session.trust_env = False
        self.session.proxies.update(env["proxies"])
        self.session.verify = env["verify"]
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
        """Look the host up once, bounded by the connect timeout: requests' timeout does not
        cover DNS, and a resolver that never answers must not hang the command."""
        if self._resolved:
            return
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        answer: list = []

        def lookup() -> None:
            try:
                self.resolve(parts.hostname, port)
                answer.append(None)
            except OSError as exc:
                answer.append(exc)

        # A daemon thread: a lookup stuck in the C library cannot be cancelled, only left behind.
        worker = threading.Thread(target=lookup, daemon=True, name="arxiv-dns")
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
