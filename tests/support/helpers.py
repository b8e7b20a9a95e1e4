"""Plain helpers the tests import (fixtures live in conftest.py).

`shared_path` and `seed` find real inputs in ../shared (or `$DIGEST_SHARED`); `needs`
decides what a missing prerequisite means: a skip with the reason on a developer's
machine, a failure under `CI=true`, where CI is known to have it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, NoReturn

import pytest

REPO = Path(__file__).resolve().parents[2]
SHARED_ENV = "DIGEST_SHARED"


def in_ci() -> bool:
    """True on CI (`CI=true`, as GitHub Actions and our .ci/run set it)."""
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def missing(reason: str) -> NoReturn:
    """A prerequisite is absent: fail under CI (it must be there), skip with the reason elsewhere."""
    if in_ci():
        pytest.fail(f"CI=true but {reason}", pytrace=False)
    pytest.skip(reason)


def shared_root() -> Path:
    """The folder of real inputs: `$DIGEST_SHARED`, else ../shared beside the checkout."""
    env = os.environ.get(SHARED_ENV)
    return Path(env).expanduser() if env else REPO.parent / "shared"


def shared_path(*parts: str) -> Path:
    """A path under ../shared; skip when absent (fail under CI, which always has it)."""
    path = shared_root().joinpath(*parts)
    if not path.exists():
        missing(f"{path} not present (the ../shared folder beside the checkout, or ${SHARED_ENV})")
    return path


def seed(prefix: str) -> Path:
    """A seed document under ../shared/seeds by its number prefix (`"003"`)."""
    folder = shared_path("seeds")
    found = sorted(folder.glob(f"{prefix}_*"))
    if not found:
        missing(f"seed {prefix} not present under {folder}")
    return found[0]


# ---------------------------------------------------------------- Telegram export builders

def telegram_export(messages: list[dict[str, Any]], *, name: str = "Test Channel", chat_id: int = 42) -> dict:
    return {"name": name, "type": "public_channel", "id": chat_id, "messages": messages}


def message(msg_id: int, text: str | list, *, date: str = "2020-04-27T10:15:00", **extra) -> dict[str, Any]:
    m: dict[str, Any] = {"id": msg_id, "type": "message", "date": date, "from": "Test Channel", "text": text}
    m.update(extra)
    return m


def write_json(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


# ---------------------------------------------------------------- catalog snapshots

def table_counts(engine) -> dict[str, int]:
    from catalog.queries import counts

    with engine.connect() as c:
        extra = {t: c.exec_driver_sql(f"SELECT count(*) FROM {t}").scalar()
                 for t in ("post_tag", "post_paper", "post_search")}
    return counts(engine) | extra


def dump(engine) -> list[tuple]:
    """Every row of the content tables, for before/after comparisons."""
    rows = []
    with engine.connect() as c:
        for table in ("source", "post", "tag", "post_tag", "paper", "post_paper", "link", "post_search"):
            rows += [(table, *r) for r in c.exec_driver_sql(f"SELECT * FROM {table} ORDER BY 1, 2")]
    return rows


def run_one_and_two_processes(name: str, overrides: dict[str, Any], out: Path,
                              data_dir: Path | None = None) -> dict[int, dict[str, Any]]:
    """The smoke preset of reproduction `name` run with 1 and with 2 processes (gloo, CPU):
    ``{1: run.json, 2: run.json}``; each run must complete."""
    from reproductions import runner

    records = {}
    for nproc in (1, 2):
        res = runner.run(runner.RunRequest(name=name, preset="smoke", device="cpu", out=out / f"n{nproc}",
                                           overrides=overrides, data_dir=data_dir, nproc=nproc, progress=False),
                         echo=lambda _line: None)
        assert res.status == "completed", res.error
        records[nproc] = json.loads((res.run_dir / "run.json").read_text(encoding="utf-8"))
    return records


# ---------------------------------------------------------------- a local web server

def serve_pages(respond) -> tuple[Any, str]:
    """A threaded HTTP server on 127.0.0.1 (a random port) whose GET answers come from
    `respond(path) -> (status, headers, body)`; ``(server, "127.0.0.1:PORT")``. Stop it with
    ``server.shutdown()``. Tests of channel fetching serve their fake t.me pages through it."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            status, headers, body = respond(self.path)
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"127.0.0.1:{server.server_address[1]}"


HTML = {"Content-Type": "text/html; charset=utf-8"}
