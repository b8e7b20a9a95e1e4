"""Parse throughput per input format, against a plain baseline measured in the same run.

    python bench/parse.py [--size-mb 50] [--html-mb 10] [--keep DIR]

Generates a synthetic corpus into a temporary folder: a Telegram Desktop export
(``result.json``, pretty-printed like the real one) of about ``--size-mb`` MB and
t.me/s pages of about ``--html-mb`` MB in total (20 posts a page, as t.me serves).

* JSON, ours: `scrapers.telegram_json.parse_file` (streaming) -> PostRecords.
  Baseline: ``json.load`` of the whole file + the same per-message walk
  (`parse_export`) -> the same PostRecords. The two run interleaved, best of
  ``--repeat`` each. Also shown: ``json.load`` + a bare
  dict walk (no normalisation), for scale.
* HTML, ours: `scrapers.tme_preview.parse_file` -> PostRecords. Baseline: bs4 +
  lxml, ``find_all`` of the message blocks and their text.
* Peak memory (max RSS, measured in a fresh subprocess) of reading the export
  ours vs ``json.load``: streaming must stay flat (target: ≤ 300 MB for 200 MB).

The last line is ``ratio=<ours/baseline>`` for the JSON export path (time).
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.synthetic import post_text  # noqa: E402


def write_export(path: Path, size_mb: float, seed: int = 0) -> int:
    """A Telegram-shaped export of about `size_mb` MB, written message by message."""
    rng = random.Random(seed)
    target = int(size_mb * 1024 * 1024)
    n = 0
    with path.open("w", encoding="utf-8") as f:
        f.write('{\n "name": "Bench channel",\n "type": "public_channel",\n "id": 7,\n "messages": [')
        written = 0
        while written < target:
            n += 1
            text = post_text(rng, n)
            first, rest = text.split("\n", 1)
            msg = {"id": n, "type": "message", "date": "2021-03-04T05:06:07", "date_unixtime": str(1614834367 + n),
                   "from": "Bench", "from_id": "channel7",
                   "text": [first + "\n", {"type": "link", "text": rest.split("\n")[0]}, "\n" + rest.split("\n", 1)[-1]],
                   "text_entities": [{"type": "plain", "text": first + "\n"},
                                     {"type": "link", "text": rest.split("\n")[0]},
                                     {"type": "plain", "text": "\n" + rest.split("\n", 1)[-1]}]}
            chunk = ("," if n > 1 else "") + "\n  " + json.dumps(msg, ensure_ascii=False, indent=1).replace("\n", "\n  ")
            f.write(chunk)
            written += len(chunk.encode("utf-8"))
        f.write("\n ]\n}\n")
    return n


def write_pages(folder: Path, size_mb: float, seed: int = 1) -> int:
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    target, written, msg_id, pages = int(size_mb * 1024 * 1024), 0, 0, 0
    while written < target:
        pages += 1
        widgets = []
        for _ in range(20):
            msg_id += 1
            body = post_text(rng, msg_id).replace("\n", "<br/>")
            widgets.append(
                f'<div class="tgme_widget_message_wrap js-widget_message_wrap"><div class="tgme_widget_message '
                f'js-widget_message" data-post="bench/{msg_id}"><div class="tgme_widget_message_bubble">'
                f'<div class="tgme_widget_message_text js-message_text" dir="auto"><i class="emoji"><b>🔥</b></i> '
                f'{body}</div><div class="tgme_widget_message_footer"><div class="tgme_widget_message_info">'
                f'<span class="tgme_widget_message_views">{rng.randint(1, 999)}.{rng.randint(0, 9)}K</span>'
                f'<span class="tgme_widget_message_meta"><a class="tgme_widget_message_date" '
                f'href="https://t.me/bench/{msg_id}"><time datetime="2021-03-04T05:06:07+00:00">05:06</time>'
                f'</a></span></div></div></div></div></div>')
        html = (f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>Bench</title></head><body>'
                f'<div class="tgme_channel_info_header_title"><span>Bench</span></div><section>'
                f'<a class="tme_messages_more" data-before="{msg_id - 19}"></a>{"".join(widgets)}</section></body></html>')
        page = folder / f"page{pages:05d}.html"
        page.write_text(html, encoding="utf-8")
        written += page.stat().st_size
    return msg_id


def timed(fn) -> tuple[float, int]:
    t0 = time.perf_counter()
    n = fn()
    return time.perf_counter() - t0, n


def json_ours(path: Path) -> int:
    from scrapers.telegram_json import parse_file

    return sum(1 for _ in parse_file(path))


def json_baseline(path: Path) -> int:
    from scrapers.telegram_json import parse_export

    with path.open("rb") as f:
        data = json.load(f)
    return sum(1 for _ in parse_export(data))


def json_bare(path: Path) -> int:
    with path.open("rb") as f:
        data = json.load(f)
    n = 0
    for m in data["messages"]:
        if m.get("type") == "message":
            t = m.get("text")
            "".join(x if isinstance(x, str) else x.get("text", "") for x in t) if isinstance(t, list) else t
            n += 1
    return n


def html_ours(folder: Path) -> int:
    from scrapers.tme_preview import parse_file

    return sum(1 for p in sorted(folder.iterdir()) for _ in parse_file(p))


def html_baseline(folder: Path) -> int:
    from bs4 import BeautifulSoup

    n = 0
    for p in sorted(folder.iterdir()):
        soup = BeautifulSoup(p.read_bytes(), "lxml")
        for w in soup.find_all("div", class_="tgme_widget_message"):
            node = w.find("div", class_="tgme_widget_message_text")
            (node.get_text("\n") if node else "")
            n += 1
    return n


def peak_rss_mb(kind: str, path: Path) -> float:
    """Max RSS of a fresh interpreter that reads `path` the `kind` way ("ours" / "json.load")."""
    out = subprocess.run([sys.executable, __file__, "--child", kind, str(path)], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    return float(out.stdout.strip().splitlines()[-1])


def child(kind: str, path: str) -> None:
    fn = {"ours": json_ours, "json.load": json_bare}[kind]
    fn(Path(path))
    # VmHWM, not ru_maxrss: ru_maxrss survives exec, so a child of a big parent would report the parent's size
    try:
        status = Path("/proc/self/status").read_text()
        print(int(next(ln.split()[1] for ln in status.splitlines() if ln.startswith("VmHWM:"))) / 1024)
    except (OSError, StopIteration):
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size-mb", type=float, default=50, help="size of the synthetic JSON export (MB)")
    ap.add_argument("--html-mb", type=float, default=10, help="total size of the synthetic t.me/s pages (MB)")
    ap.add_argument("--repeat", type=int, default=2, help="timing runs per JSON reader (best is kept)")
    ap.add_argument("--keep", type=Path, help="write the corpus here and keep it")
    ap.add_argument("--child", nargs=2, metavar=("KIND", "PATH"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(*args.child)
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        export, pages = folder / "result.json", folder / "pages"
        n_msgs = write_export(export, args.size_mb)
        n_html = write_pages(pages, args.html_mb)
        json_mb = export.stat().st_size / 2**20
        html_mb = sum(p.stat().st_size for p in pages.iterdir()) / 2**20

        rss_ours = peak_rss_mb("ours", export)
        rss_load = peak_rss_mb("json.load", export)
        rows = []
        # interleaved, best of `--repeat`: the machine is shared, so one slow run says little
        t_ours = t_base = float("inf")
        for _ in range(args.repeat):
            t, n1 = timed(lambda: json_ours(export))
            t_ours = min(t_ours, t)
            t, n2 = timed(lambda: json_baseline(export))
            t_base = min(t_base, t)
        t_bare, _ = timed(lambda: json_bare(export))
        assert n1 == n2 == n_msgs, (n1, n2, n_msgs)
        rows += [("telegram-json", "ours: streaming parse_file", json_mb, n1, t_ours),
                 ("telegram-json", "baseline: json.load + parse_export", json_mb, n2, t_base),
                 ("telegram-json", "json.load + bare dict walk", json_mb, n2, t_bare)]
        h_ours, m1 = timed(lambda: html_ours(pages))
        h_base, m2 = timed(lambda: html_baseline(pages))
        assert m1 == m2 == n_html, (m1, m2, n_html)
        rows += [("tme-preview", "ours: parse_file -> PostRecords", html_mb, m1, h_ours),
                 ("tme-preview", "baseline: bs4+lxml find_all", html_mb, m2, h_base)]

        print(f"{'format':<14} {'reader':<36} {'MB':>8} {'posts':>8} {'s':>8} {'MB/s':>8} {'posts/s':>9}")
        for fmt, reader, mb, n, t in rows:
            print(f"{fmt:<14} {reader:<36} {mb:8.1f} {n:8d} {t:8.2f} {mb / t:8.2f} {n / t:9.0f}")
        print(f"peak RSS reading the {json_mb:.0f} MB export: ours {rss_ours:.0f} MB, json.load {rss_load:.0f} MB"
              f" (target for 200 MB: ours <= 300 MB)")
        print(f"html ratio (ours/baseline) = {h_ours / h_base:.2f}")
        print(f"ratio={t_ours / t_base:.3f}")


if __name__ == "__main__":
    main()
