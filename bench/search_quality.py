"""Search quality on a labelled query set: stemmed search (ours) vs today's exact-token search.

    python bench/search_quality.py [--synthetic 2000] [--seed 30] [--repeat 5]

The corpus is the bundled sample (catalog/sample: 29 posts in ru/en/zh) plus synthetic
posts written here: filler of made-up words (bench/synthetic.py's vocabularies past their
real words) with a few words of a hand-written lexicon, each in a random one of its
forms, and some hashtags. The labels come from that lexicon and from the catalog's own
links and tags, never from a search:

- a word query (inflected form, plural, exact form) is relevant to every post holding
  any form of its word, as the lexicon lists them (the sample posts are read with the
  same lists);
- a multi-word query to posts holding every word;
- a paper title to the posts that link that paper (post_paper), a tag to the posts with
  that tag (post_tag), a Chinese word to the posts whose text contains it.

"Today's" search is the one before stemming: each term a phrase of its typed tokens in
the title or body, ranked by bm25 with the title weighted 10. The catalog still holds
those columns, so it is `catalog.search.search` with every word quoted (`today_query`):
the same path, hydration and snippets included, which the latency columns compare.

Prints recall@10 (capped: hits in the top 10 / min(10, relevant)) and nDCG@10 (binary
gains) per kind of query for both, p50/p95 latency of both, and last
``ratio=<ours/today nDCG@10 over all queries>``. Targets (issue 30): recall@10 >= 0.9
on inflected forms, no loss on exact forms.
"""

from __future__ import annotations

import argparse
import math
import random
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.search import percentile  # noqa: E402
from bench.synthetic import EN, EN_VOCAB, RU, RU_VOCAB  # noqa: E402
from bench.search_labels import LEXICON, MULTIWORD, PAPERS, QUERIES, TAGS, ZH_WORDS  # noqa: E402


def synthetic_posts(n: int, seed: int) -> list[tuple[str, set[str], set[str]]]:
    """(text, lexicon words in it, tags) of `n` posts: made-up filler with a few real words."""
    rng = random.Random(seed)
    ru_filler, en_filler = RU_VOCAB[0][len(RU):], EN_VOCAB[0][len(EN):]
    words = {lang: [w for w, entry in LEXICON.items() if entry[0] == lang] for lang in ("ru", "en")}
    posts = []
    for _ in range(n):
        lang = rng.choice(("ru", "en", "zh")) if rng.random() < 0.15 else rng.choice(("ru", "en"))
        if lang == "zh":
            chosen = set(rng.sample(ZH_WORDS, 2))
            filler = "".join(rng.choice("的了在是有和与对把被这那个一上下中大小") for _ in range(30))
            cut = rng.randrange(len(filler))
            text = f"{filler[:10]}\n{filler[10:cut]}{''.join(chosen)}{filler[cut:]}"
            posts.append((text, {f"zh:{w}" for w in chosen}, set()))
            continue
        filler = ru_filler if lang == "ru" else en_filler
        pairs = [pair for pair in MULTIWORD if LEXICON[pair[0]][0] == lang]
        if rng.random() < 0.04:  # the multi-word queries' pairs, together
            chosen = set(rng.choice(pairs))
        else:
            chosen = set(rng.sample(words[lang], rng.randint(1, 2))) if rng.random() < 0.3 else set()
        title = [rng.choice(filler) for _ in range(rng.randint(3, 6))]
        body = [rng.choice(filler) for _ in range(rng.randint(20, 50))]
        for word in sorted(chosen):  # sorted: the same text under any hash seed
            form = rng.choice(LEXICON[word][1])
            (title if rng.random() < 0.3 else body).insert(rng.randint(0, 3), form)
        tags = set(rng.sample(sorted(TAGS), 1)) if rng.random() < 0.05 else set()
        text = " ".join(title).capitalize() + "\n" + " ".join(body) + "".join(f" #{t}" for t in sorted(tags))
        posts.append((text, chosen, tags))
    return posts


def _export(posts: list[tuple[str, set[str], set[str]]]) -> dict:
    messages = [{"id": i, "type": "message", "date": f"2022-01-01T00:{i // 60 % 60:02d}:{i % 60:02d}",
                 "from": "Quality", "from_id": "channel30", "text": text,
                 "text_entities": [{"type": "plain", "text": text}]} for i, (text, _, _) in enumerate(posts, 1)]
    return {"name": "Quality bench", "type": "public_channel", "id": 30, "messages": messages}


def _holds(text: str, forms: list[str]) -> bool:
    low = text.lower().replace("ё", "е")
    return any(re.search(rf"(?<!\w){re.escape(f)}(?!\w)", low) for f in forms)


def judgements(engine, synthetic: dict[int, tuple[set[str], set[str]]]) -> list[tuple[str, str, set[int]]]:
    """(kind, query, relevant post ids) for every labelled query."""
    with engine.connect() as c:
        texts = dict(c.exec_driver_sql("SELECT id, title || '\n' || text FROM post").all())
        linked = c.exec_driver_sql("SELECT pp.post_id, pa.arxiv_id FROM post_paper pp"
                                   " JOIN paper pa ON pa.id = pp.paper_id").all()
        tagged = c.exec_driver_sql("SELECT pt.post_id, t.name FROM post_tag pt JOIN tag t ON t.id = pt.tag_id").all()
    sample = [pid for pid in texts if pid not in synthetic]

    def with_word(word: str) -> set[int]:
        if word.startswith("zh:"):
            return {pid for pid, text in texts.items() if word[3:] in text}
        found = {pid for pid, (words, _) in synthetic.items() if word in words}
        return found | {pid for pid in sample if _holds(texts[pid], LEXICON[word][1])}

    out = []
    for kind, query, label in QUERIES:
        if kind == "title":
            relevant = {pid for pid, arxiv in linked if arxiv == PAPERS[label]}
        elif kind == "tag":
            relevant = {pid for pid, name in tagged if name == label}
        else:
            relevant = set.intersection(*(with_word(w) for w in label.split("+")))
        out.append((kind, query, relevant))
    return out


def today_query(query: str) -> str:
    """The query as today's search reads it: each word quoted, so only its typed form matches.

    A quoted term is an FTS5 phrase over the title and body columns, ranked by bm25 with
    the same weights in the same ratio (title 10: body 1), and on PostgreSQL a phrase
    over the same tsvector, ranked by ts_rank: the statements the search ran before stems."""
    return " ".join(f'"{chunk}"' for chunk in query.replace('"', " ").split())


def recall_ndcg(ranked: list[int], relevant: set[int], k: int = 10) -> tuple[float, float]:
    if not relevant:
        return 1.0, 1.0
    gains = [1.0 if pid in relevant else 0.0 for pid in ranked[:k]]
    ideal = sum(1 / math.log2(i + 2) for i in range(min(k, len(relevant))))
    dcg = sum(g / math.log2(i + 2) for i, g in enumerate(gains))
    return sum(gains) / min(k, len(relevant)), dcg / ideal


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--synthetic", type=int, default=2000, help="synthetic posts beside the sample corpus")
    ap.add_argument("--seed", type=int, default=30)
    ap.add_argument("--repeat", type=int, default=5, help="timed runs of each query (latency)")
    ap.add_argument("--verbose", action="store_true", help="print each query's scores")
    args = ap.parse_args()

    import json

    from catalog.db import open_db
    from catalog.demo import sample_corpus
    from catalog.ingest import ingest_paths
    from catalog.search import search

    with tempfile.TemporaryDirectory() as tmp:
        posts = synthetic_posts(args.synthetic, args.seed)
        export = Path(tmp) / "quality.json"
        export.write_text(json.dumps(_export(posts), ensure_ascii=False), encoding="utf-8")
        engine = open_db(Path(tmp) / "q.db")
        ingest_paths(engine, sample_corpus())
        ingest_paths(engine, [export])
        with engine.connect() as c:
            ids = dict(c.exec_driver_sql("SELECT CAST(p.external_id AS INTEGER), p.id FROM post p"
                                         " JOIN source s ON s.id = p.source_id WHERE s.title = 'Quality bench'").all())
        synthetic = {ids[i]: (words, tags) for i, (_, words, tags) in enumerate(posts, 1) if i in ids}
        labelled = judgements(engine, synthetic)
        scores: dict[str, dict[str, list[tuple[float, float]]]] = {"ours": {}, "today": {}}
        times: dict[str, list[float]] = {"ours": [], "today": []}
        slow = []
        for kind, query, relevant in labelled:
            for name, typed in (("ours", query), ("today", today_query(query))):
                ranked = [h.id for h in search(engine, typed, limit=10)]
                spent = []
                for _ in range(args.repeat):
                    t = time.perf_counter()
                    search(engine, typed, limit=10)
                    spent.append((time.perf_counter() - t) * 1000)
                times[name] += spent
                slow.append((max(spent), name, query))
                scores[name].setdefault(kind, []).append(recall_ndcg(ranked, relevant))
                if args.verbose:
                    print(f"{name:<6}{kind:<10}{query:<40} relevant {len(relevant):>4}  "
                          f"recall {scores[name][kind][-1][0]:.2f}  nDCG {scores[name][kind][-1][1]:.2f}")
        engine.dispose()

    kinds = list(dict.fromkeys(kind for kind, _, _ in QUERIES))
    print(f"corpus: {len(synthetic) + 29} posts (29 sample + {len(synthetic)} synthetic), "
          f"{len(QUERIES)} labelled queries, relevant posts per query: median "
          f"{statistics.median(len(r) for _, _, r in labelled):.0f}")
    print(f"{'kind':<12}{'queries':>8}{'recall@10 ours':>16}{'today':>8}{'nDCG@10 ours':>14}{'today':>8}")
    for kind in kinds + ["all"]:
        rows = {name: [s for k in (kinds if kind == "all" else [kind]) for s in scores[name][k]] for name in scores}
        mean = {name: (statistics.fmean(r for r, _ in rows[name]), statistics.fmean(n for _, n in rows[name]))
                for name in rows}
        print(f"{kind:<12}{len(rows['ours']):>8}{mean['ours'][0]:>16.3f}{mean['today'][0]:>8.3f}"
              f"{mean['ours'][1]:>14.3f}{mean['today'][1]:>8.3f}")
    for name in ("ours", "today"):
        p50, p95 = percentile(times[name], 0.5), percentile(times[name], 0.95)
        print(f"latency {name:<6} p50 {p50:6.2f} ms   p95 {p95:6.2f} ms")
    print("slowest:", ", ".join(f"{q!r} {name} {ms:.1f} ms" for ms, name, q in sorted(slow, reverse=True)[:4]))
    ours_all = statistics.fmean(n for k in kinds for _, n in scores["ours"][k])
    today_all = statistics.fmean(n for k in kinds for _, n in scores["today"][k])
    print(f"ratio={ours_all / today_all:.3f}")


if __name__ == "__main__":
    main()
