"""Which addresses the follow list may hold: Telegram's public pages and the mirrors a person named.

A follow is fetched later, unattended, by a scheduled `digest sync`; on a shared
PostgreSQL catalog whoever can add a follow could otherwise point that sync at an
internal address (a cloud metadata service, a database's HTTP port). So a target is
accepted only as ``@name``, ``t.me/name`` or ``https://t.me/s/name``, or on a host
listed explicitly as a mirror in the catalog (``digest follow --mirror HOST``, kept
in ``meta``). Everything else is refused with its reason, before anything is written.
Link-local, multicast and unspecified addresses are refused even as mirrors.
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy import Connection, select

from catalog.errors import DigestError, UsageError
from catalog.models import Meta

TELEGRAM_HOST = "t.me"
MIRRORS_KEY = "follow_mirrors"
_CHANNEL = re.compile(r"^[A-Za-z0-9_]{3,64}$")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
_HOST_PORT = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::(\d{1,5}))?$")


@dataclass(frozen=True)
class Channel:
    handle: str
    host: str  # "t.me", or a mirror as host[:port]
    url: str  # the channel's page: https://t.me/s/<handle> or <mirror>/s/<handle>

    @property
    def name(self) -> str:
        return f"@{self.handle}" if self.host == TELEGRAM_HOST else f"@{self.handle} at {self.host}"


def _address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def _never_reachable(host: str) -> str | None:
    """Why `host` may never be fetched, even when named as a mirror."""
    ip = _address(host)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip is not None and (ip.is_loopback or (ip.is_private and not ip.is_link_local)):
        return None  # refused too, unless a person names it as a mirror
    if ip is not None and (ip.is_link_local or ip.is_multicast or ip.is_unspecified or ip.is_reserved):
        return f"{host} is a link-local, multicast or reserved address (cloud metadata lives there)"
    return None


def _why_not(host: str) -> str:
    ip = _address(host)
    if ip is not None:
        if ip.is_loopback or ip.is_private:
            return f"{host} is a private or loopback address"
        return f"{host} is an IP address, not t.me"
    if host == "localhost" or host.endswith(".localhost"):
        return f"{host} is a loopback host"
    return f"{host} is not t.me"


def normalise_mirror(value: str) -> str:
    """``host`` or ``host:port`` as stored (lower case), or a UsageError saying why not."""
    value = value.strip().lower()
    if "://" in value:
        value = urlsplit(value).netloc
    m = _HOST_PORT.match(value)
    if not m or (m.group(2) and not 0 < int(m.group(2)) < 65536):
        raise UsageError(f"not a mirror host: {value!r} (expected HOST or HOST:PORT)")
    why = _never_reachable(m.group(1))
    if why:
        raise UsageError(f"refused mirror {value}: {why}")
    return value


def mirrors(conn: Connection) -> list[str]:
    raw = conn.execute(select(Meta.value).where(Meta.key == MIRRORS_KEY)).scalar()
    try:
        return list(json.loads(raw)) if raw else []
    except ValueError:
        return []


def add_mirrors(conn: Connection, hosts: list[str]) -> list[str]:
    from catalog.sqlutil import dialect_insert

    known = mirrors(conn)
    known += [h for h in dict.fromkeys(normalise_mirror(h) for h in hosts) if h not in known]
    stmt = dialect_insert(conn, Meta.__table__).values(key=MIRRORS_KEY, value=json.dumps(known))
    conn.execute(stmt.on_conflict_do_update(index_elements=["key"], set_={"value": stmt.excluded.value}))
    return known


def _mirror_of(netloc: str, allowed: list[str]) -> str | None:
    """The mirror entry `netloc` (host[:port]) falls under: an entry without a port allows any port."""
    host = netloc.rsplit(":", 1)[0] if not netloc.endswith("]") else netloc
    for entry in allowed:
        if entry == netloc or (":" not in entry.strip("[]").split("]")[-1] and entry == host):
            return netloc
    return None


def parse_channel(target: str, allowed_mirrors: list[str]) -> Channel:
    """`target` as a followable channel, or a DigestError with the one-line reason it is refused."""
    raw = target.strip()
    if raw.startswith("@"):
        if not _CHANNEL.match(raw[1:]):
            raise DigestError(f"not a channel: {target!r} (expected @username or https://t.me/s/<username>)")
        return Channel(raw[1:], TELEGRAM_HOST, f"https://t.me/s/{raw[1:]}")
    scheme = raw.split("://", 1)[0].lower() if "://" in raw else (_SCHEME.match(raw) or [None, None])[1]
    if scheme is not None and scheme.lower() not in ("http", "https"):
        raise DigestError(f"refused {target!r}: only http(s) addresses can be followed, not {scheme.lower()}:")
    if scheme is None:
        if not re.match(r"^t\.me/", raw, re.I):
            raise DigestError(f"not a channel: {target!r} (expected @username, t.me/username or "
                              "https://t.me/s/<username>)")
        raw = "https://" + raw
    parts = urlsplit(raw)
    try:
        host, port = (parts.hostname or "").lower(), parts.port
    except ValueError:
        raise DigestError(f"refused {target!r}: bad port") from None
    if parts.username is not None or parts.password is not None:
        raise DigestError(f"refused {target!r}: an address with a user name or password cannot be followed")
    netloc = host if port is None else f"{host}:{port}"
    if "[" in parts.netloc:
        netloc = f"[{host}]" if port is None else f"[{host}]:{port}"
    segments = [s for s in parts.path.split("/") if s]
    if segments and segments[0] == "s":
        segments = segments[1:]
    if not segments or not _CHANNEL.match(segments[0]) or len(segments) > 1:
        raise DigestError(f"not a channel: {target!r} (expected https://t.me/s/<username>)")
    handle = segments[0]
    if host in (TELEGRAM_HOST, "www.t.me", "telegram.me") and port is None:
        return Channel(handle, TELEGRAM_HOST, f"https://t.me/s/{handle}")
    never = _never_reachable(host if not netloc.startswith("[") else f"[{host}]")
    if never:
        raise DigestError(f"refused {target!r}: {never}")
    if _mirror_of(netloc, allowed_mirrors):
        return Channel(handle, netloc, f"{parts.scheme.lower()}://{netloc}/s/{handle}")
    raise DigestError(f"refused {target!r}: {_why_not(host)} and not a mirror of this catalog"
                      f" (a person who runs it may add one: digest follow --mirror {netloc} …)")


def allowed_host(url: str, allowed_mirrors: list[str]) -> bool:
    """Whether a fetch of `url` (a redirect target, a stored follow) stays on t.me or a mirror."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        return False
    try:
        host, port = (parts.hostname or "").lower(), parts.port
    except ValueError:
        return False
    if host == TELEGRAM_HOST and port is None:
        return True
    netloc = host if port is None else f"{host}:{port}"
    return _never_reachable(host) is None and _mirror_of(netloc, allowed_mirrors) is not None


def host_of(url: str) -> str:
    netloc = urlsplit(url).netloc.lower()
    return TELEGRAM_HOST if netloc in ("", TELEGRAM_HOST, "www.t.me", "telegram.me") else netloc


def key_follows_by_host(conn: Connection) -> None:
    """The migration: ``follow`` gains ``host`` (from each stored URL), unique with the handle."""
    from sqlalchemy import inspect

    from catalog.models import Follow

    if "host" in {c["name"] for c in inspect(conn).get_columns("follow")}:
        return  # a fresh catalog: the first migration created the current table
    rows = conn.exec_driver_sql(
        "SELECT id, handle, url, added_at, last_synced_at, last_status, last_error FROM follow").all()
    if conn.dialect.name == "sqlite":
        # SQLite cannot drop the old UNIQUE (handle): the table is rebuilt, its rows kept as they were.
        conn.exec_driver_sql("ALTER TABLE follow RENAME TO follow_before_host")
        Follow.__table__.create(conn)
        conn.exec_driver_sql(  # stored values copied as they are (dates stay in SQLite's own text form)
            "INSERT INTO follow (id, handle, host, url, added_at, last_synced_at, last_status, last_error)"
            " SELECT id, handle, 't.me', url, added_at, last_synced_at, last_status, last_error"
            " FROM follow_before_host")
        conn.exec_driver_sql("DROP TABLE follow_before_host")
        for r in rows:
            conn.exec_driver_sql("UPDATE follow SET host=? WHERE id=?", (host_of(r.url), r.id))
        return
    conn.exec_driver_sql("ALTER TABLE follow ADD COLUMN host VARCHAR(255) NOT NULL DEFAULT 't.me'")
    for r in rows:
        conn.exec_driver_sql("UPDATE follow SET host=%s WHERE id=%s", (host_of(r.url), r.id))
    for (name,) in conn.exec_driver_sql(
            "SELECT conname FROM pg_constraint WHERE conrelid = 'follow'::regclass AND contype = 'u'").all():
        conn.exec_driver_sql(f'ALTER TABLE follow DROP CONSTRAINT "{name}"')
    conn.exec_driver_sql("ALTER TABLE follow ADD CONSTRAINT uq_follow_handle_host UNIQUE (handle, host)")
