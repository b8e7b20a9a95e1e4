"""arXiv sync overhead: `catalog.arxiv.sync` vs plain urllib + xml.etree on the same requests.

    python bench/arxiv.py [--ids 1000] [--repeat 5]

A local HTTP server on 127.0.0.1 answers ``id_list`` queries with Atom entries made up
here (titles, ~1 KB abstracts, 1-6 authors, 1-3 categories). Our side is the whole
sync with pacing set to zero: requests over our transport (one kept-alive connection),
strict parsing into `arxiv.Result`s, and writing papers, tags and paper tags into a
fresh catalog (one transaction per API page, in a writer thread). The baseline makes
the same requests (same URLs) with ``urllib.request`` and turns each entry into a dict
with ``xml.etree.ElementTree`` — and writes nothing. A row for our client alone (fetch +
parse, no catalog) and, once, a feedparser row are printed for reference.

Each path's best wall time of `--repeat` interleaved runs is compared; the CPU column
(process time, the in-process server included) says how much of a slow row is a busy
machine. Prints a table and, last, ``ratio=<ours/baseline>`` (target <= 1.3).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
import xml.etree.ElementTree as ET
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlparse
from xml.sax.saxutils import escape

# Run as a script, this file's folder comes first on sys.path and its name would shadow
# the `arxiv` package: drop the folder, put the repository root there instead.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

WORDS = ("attention head layer dropout transformer training sequence model token embedding gradient "
         "regularisation variance decoder encoder latent prior posterior benchmark language vision "
         "recurrent depth halting schedule parameter scaling optimiser loss corpus evaluation").split()
CATS = ["cs.CL", "cs.LG", "stat.ML", "cs.CV", "cs.AI", "cs.NE"]
NS = {"a": "http://www.w3.org/2005/Atom", "x": "http://arxiv.org/schemas/atom",
      "o": "http://a9.com/-/spec/opensearch/1.1/"}


def make_entries(n: int, seed: int = 0) -> dict[str, str]:
    """``{arxiv_id: <entry> xml}`` for n synthetic papers, deterministic."""
    rng = random.Random(seed)
    out = {}
    for k in range(n):
        arxiv_id = f"2{rng.randint(0, 3)}{rng.randint(1, 12):02d}.{k:05d}"
        while arxiv_id in out:
            arxiv_id = arxiv_id[:5] + f"{rng.randint(0, 99999):05d}"
        words = lambda m: " ".join(rng.choice(WORDS) for _ in range(m))  # noqa: E731
        cats = rng.sample(CATS, rng.randint(1, 3))
        authors = "".join(f"<author><name>Author {rng.randint(1, 9999)} {rng.choice(WORDS).title()}</name></author>"
                          for _ in range(rng.randint(1, 6)))
        vid = f"{arxiv_id}v{rng.randint(1, 4)}"
        out[arxiv_id] = (
            f"<entry><id>http://arxiv.org/abs/{vid}</id><updated>2021-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}T10:00:00Z"
            f"</updated><published>2020-0{rng.randint(1, 9)}-0{rng.randint(1, 9)}T09:00:00Z</published>"
            f"<title>{escape(words(8).capitalize())}\n  {escape(words(3))}</title>"
            f"<summary>  {escape(words(150))}\n</summary>{authors}"
            f"<arxiv:comment>{rng.randint(8, 20)} pages</arxiv:comment>"
            f'<link href="http://arxiv.org/abs/{vid}" rel="alternate" type="text/html"/>'
            f'<link title="pdf" href="http://arxiv.org/pdf/{vid}" rel="related" type="application/pdf"/>'
            f'<arxiv:primary_category term="{cats[0]}" scheme="http://arxiv.org/schemas/atom"/>'
            + "".join(f'<category term="{c}" scheme="http://arxiv.org/schemas/atom"/>' for c in cats) + "</entry>")
    return out


def feed(entries: list[str]) -> bytes:
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom" '
            'xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/" xmlns:arxiv="http://arxiv.org/schemas/atom">'
            "<title>bench</title><id>http://arxiv.org/api/bench</id><updated>2024-01-01T00:00:00-05:00</updated>"
            f"<opensearch:totalResults>{len(entries)}</opensearch:totalResults>"
            f"<opensearch:startIndex>0</opensearch:startIndex><opensearch:itemsPerPage>{len(entries)}"
            "</opensearch:itemsPerPage>" + "".join(entries) + "</feed>").encode()


def serve(entries: dict[str, str]) -> tuple[ThreadingHTTPServer, str, list]:
    urls: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            urls.append(self.path)
            ids = parse_qs(urlparse(self.path).query).get("id_list", [""])[0].split(",")
            body = feed([entries[i.split("v")[0]] for i in ids if i.split("v")[0] in entries])
            self.send_response(200)
            self.send_header("Content-Type", "application/atom+xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/api/query", urls


def ours(api_url: str, ids: list[str], folder: Path, tag: str) -> tuple[float, float]:
    from catalog.arxiv import ClientConfig, add, sync
    from catalog.db import open_db

    engine = open_db(folder / f"{tag}.db")
    add(engine, ids, offline=True)  # the papers a real catalog would have as pending
    config = ClientConfig(api_url=api_url, delay_s=0.0)
    t0, c0 = time.perf_counter(), time.process_time()
    report = sync(engine, config=config)
    elapsed = time.perf_counter() - t0, time.process_time() - c0
    engine.dispose()
    assert report.fetched == len(ids), report
    return elapsed


def ours_fetch_only(api_url: str, ids: list[str]) -> tuple[float, float]:
    """Our client alone (our transport, strict parse into `arxiv.Result`s, rows ready), no catalog."""
    from catalog.arxiv import ArxivClient, ClientConfig, paper_meta

    client = ArxivClient(ClientConfig(api_url=api_url, delay_s=0.0))
    ordered = sorted(ids)
    t0, c0 = time.perf_counter(), time.process_time()
    n = 0
    for i in range(0, len(ordered), 100):
        results, _ = client.fetch_ids(ordered[i:i + 100])
        n += len([paper_meta(r) for r in results])
    elapsed = time.perf_counter() - t0, time.process_time() - c0
    client.transport.close()
    assert n == len(ids)
    return elapsed


def _etree_entry(e: ET.Element) -> dict:
    text = lambda path: (e.findtext(path, namespaces=NS) or "")  # noqa: E731
    return {
        "id": text("a:id"), "title": " ".join(text("a:title").split()), "summary": " ".join(text("a:summary").split()),
        "published": text("a:published"), "updated": text("a:updated"),
        "authors": [a.findtext("a:name", namespaces=NS) for a in e.findall("a:author", NS)],
        "primary": (e.find("x:primary_category", NS).get("term")),
        "categories": [c.get("term") for c in e.findall("a:category", NS)],
        "pdf": next((l.get("href") for l in e.findall("a:link", NS) if l.get("title") == "pdf"), None),
        "doi": text("x:doi"), "journal_ref": text("x:journal_ref"), "comment": text("x:comment"),
    }


def baseline_urls(api_url: str, ids: list[str]) -> list[str]:
    """The same URLs our client sends: sorted ids, batches of 100, the package's parameters."""
    ids = sorted(ids)
    return [api_url + "?" + urlencode({"search_query": "", "id_list": ",".join(ids[i:i + 100]), "sortBy": "relevance",
                                       "sortOrder": "descending", "start": "0", "max_results": str(len(ids[i:i + 100]))})
            for i in range(0, len(ids), 100)]


def baseline(urls: list[str], parser: str) -> tuple[float, float]:
    t0, c0 = time.perf_counter(), time.process_time()
    n = 0
    for url in urls:
        with urllib.request.urlopen(url, timeout=30) as resp:
            body = resp.read()
        if parser == "etree":
            n += len([_etree_entry(e) for e in ET.fromstring(body).findall("a:entry", NS)])
        else:
            import feedparser

            n += len(feedparser.parse(body).entries)
    elapsed = time.perf_counter() - t0, time.process_time() - c0
    assert n == sum(len(parse_qs(urlparse(u).query)["id_list"][0].split(",")) for u in urls)
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ids", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()

    entries = make_entries(args.ids)
    ids = list(entries)
    server, api_url, seen = serve(entries)
    try:
        import feedparser  # noqa: F401
        has_feedparser = True
    except ImportError:
        has_feedparser = False
    times: dict[str, list[tuple[float, float]]] = {"ours": [], "fetch": [], "etree": [], "feedparser": []}
    with tempfile.TemporaryDirectory() as tmp:
        ours(api_url, ids[:50], Path(tmp), "warmup")  # imports, first connection
        for r in range(args.repeat):
            seen.clear()
            times["ours"].append(ours(api_url, ids, Path(tmp), f"run{r}"))
            our_urls = ["http://127.0.0.1" + u for u in seen]
            urls = baseline_urls(api_url, ids)
            assert [urlparse(u).query for u in urls] == [urlparse(u).query for u in our_urls], "different requests"
            times["etree"].append(baseline(urls, "etree"))
            times["fetch"].append(ours_fetch_only(api_url, ids))
        if has_feedparser:  # a reference only, and slow: once
            times["feedparser"].append(baseline(urls, "feedparser"))
    server.shutdown()

    best = {k: min(w for w, _ in v) for k, v in times.items() if v}
    print(f"arXiv sync of {args.ids} ids, {len(urls)} requests, local server, zero pacing; "
          f"best of {args.repeat} (feedparser: 1 run)")
    print(f"{'path':<46} {'best s':>8} {'median s':>9} {'cpu s':>7} {'ids/s':>8}")
    rows = [("ours: catalog.arxiv.sync (fetch+parse+store)", "ours"),
            ("ours: fetch + parse only (no store)", "fetch"),
            ("baseline: urllib + xml.etree (no store)", "etree"),
            ("reference: urllib + feedparser (no store)", "feedparser")]
    for label, key in rows:
        if times[key]:
            median = statistics.median(w for w, _ in times[key])
            cpu = min(c for _, c in times[key])
            print(f"{label:<46} {best[key]:>8.3f} {median:>9.3f} {cpu:>7.3f} {args.ids / best[key]:>8.0f}")
    cpu = {k: min(c for _, c in v) for k, v in times.items() if v}
    print(f"fetch+parse only / baseline: {best['fetch'] / best['etree']:.2f}; cpu ours / baseline: "
          f"{cpu['ours'] / cpu['etree']:.2f}; ratio below is the whole sync (with the catalog writes) / baseline "
          "(wall); target <= 1.3")
    print(f"ratio={best['ours'] / best['etree']:.2f}")


if __name__ == "__main__":
    main()
