"""Related posts and papers: TF-IDF over what the catalog holds, cosine similarity, top-k stored.

What each item is, as text:
- a paper: its title and abstract plus the text of (up to five of) the posts discussing it;
- a post: its title and text plus the titles of the papers it discusses.

Texts go through the search index's own folding and Chinese segmentation
(`catalog.searchtext.document_text`), then the TF-IDF fit and the cosine top-k of
`catalog.similarity`; the top `K` posts and `K` papers of every item are stored in the
``related`` table.

Keeping the lists up to date (`ensure_related`, `update_related`): nothing happens while
the catalog's fingerprint (post and paper counts, last-update times, in ``meta``) is the
one stored. When it moved, the stored state (a short hash of every item's text, the last
post and paper ids, also in ``meta``) tells what changed:

- nothing in any text (a post's tags, a paper's fetch time): the state is brought up to
  date, the lists stay;
- only NEW posts and papers, plus existing papers whose text grew because a new post
  discusses them (a paper's text includes its first posts), and fewer of these fresh
  items since the last full rebuild than `INCREMENTAL_MAX` of that rebuild's items: an
  incremental update. The whole corpus is fitted again as in a full rebuild, but
  similarities are computed only between the fresh items and all items: a fresh item
  gets its lists anew (exactly a full rebuild's); an existing item's stored list drops
  its old entries for fresh items and takes in fresh items only where they beat its
  `K`-th score (or the list is short), re-ranked and cut to `K`; its other neighbours
  stay as stored;
- anything else (an existing post or paper edited or deleted, too many fresh items, the
  catalog crossing a size where the fit changes kind, lists scored over other terms by an
  older version, another `k`, no state yet): the full rebuild, `rebuild_related`, which
  `digest related --rebuild` forces.

The incremental update is an approximation, on purpose: pairs of old items keep the
scores of the last full fit, whose IDF (and past `EXACT_MAX` whose SVD basis) differ a
little from the new fit that scores the fresh pairs, and an old neighbour that a fresh
item pushed out of a list is not replaced by the one that ranked just below the list.
In exchange, adding a few posts changes only the lists those posts (and the papers they
grow) really enter, where a full refit reshuffles nearly every item's neighbours (global
IDF, a new SVD) and so would make an incremental site build rewrite every page; the
rows written are few. The time is still about a full rebuild's (10k posts: 6–8 s): the
refit (about half), then reading every stored list and rewriting those that changed.
`INCREMENTAL_MAX` bounds the drift until a full rebuild starts afresh. Both paths write in
one transaction and are deterministic: the same catalog and stored state give the same rows.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterable

import numpy as np
from sqlalchemy import Engine, delete, func, insert, select, text
from sqlalchemy.orm import Session

from catalog.models import Meta, Paper, Post, PostPaper, Related
from catalog.searchtext import document_text
from catalog.similarity import K, fit, fit_id, one_blas_thread, top_k

POSTS_PER_PAPER = 5
CHARS_PER_DOC = 4000  # a long post says what it is about early; the tail costs time, not quality
INCREMENTAL_MAX = 0.10  # fresh items since the last full rebuild, as a share of its items
FINGERPRINT_KEY = "related_fingerprint"
STATE_KEY = "related_state"
HASH_CHARS = 8  # per item in the stored state: base64 of a 48-bit digest of its text
KINDS = ("post", "paper")
INSERT_BATCH = 5000
IN_BATCH = 500  # ids per IN (...) list: well under SQLite's and PostgreSQL's parameter limits


@dataclass
class Corpus:
    """The items to compare, as (kind, id) keys and their texts, posts first."""

    keys: list[tuple[str, int]]
    texts: list[str]
    post_papers: dict[int, list[int]] = field(default_factory=dict)  # post id -> ids of the papers it discusses

    @property
    def n_posts(self) -> int:
        return sum(1 for kind, _ in self.keys if kind == "post")


def load_corpus(engine: Engine) -> Corpus:
    """Every post and every paper, as the text similarity is measured on."""
    with Session(engine) as s:
        titles: dict[int, str] = {}
        abstracts: dict[int, str] = {}
        for pid, title, abstract in s.execute(select(Paper.id, Paper.title, Paper.abstract).order_by(Paper.id)):
            titles[pid], abstracts[pid] = title or "", abstract or ""
        post_papers: dict[int, list[int]] = {}
        for post_id, paper_id in s.execute(select(PostPaper.post_id, PostPaper.paper_id)
                                           .order_by(PostPaper.post_id, PostPaper.paper_id)):
            post_papers.setdefault(post_id, []).append(paper_id)
        keys: list[tuple[str, int]] = []
        texts: list[str] = []
        paper_posts: dict[int, list[str]] = {}
        for post_id, title, text in s.execute(select(Post.id, Post.title, Post.text).order_by(Post.id)):
            body = f"{title or ''}\n{(text or '')[:CHARS_PER_DOC]}"
            for paper_id in post_papers.get(post_id, []):
                if len(paper_posts.setdefault(paper_id, [])) < POSTS_PER_PAPER:
                    paper_posts[paper_id].append(body)
            keys.append(("post", post_id))
            texts.append(body + "\n" + "\n".join(titles.get(i, "") for i in post_papers.get(post_id, [])))
        for pid in titles:
            keys.append(("paper", pid))
            texts.append("\n".join([titles[pid], abstracts[pid], *paper_posts.get(pid, [])]))
    return Corpus(keys, [document_text(t) for t in texts], post_papers)


def fingerprint(engine: Engine) -> str:
    """Changes whenever a post or paper is added, removed or updated."""
    with engine.connect() as c:
        posts = c.execute(select(func.count(Post.id), func.max(Post.updated_at), func.max(Post.id))).one()
        papers = c.execute(select(func.count(Paper.id), func.max(Paper.fetched_at), func.max(Paper.id))).one()
    return "|".join(str(v) for v in (*posts, *papers))


# ------------------------------------------------------------------ what the stored lists were computed from

@dataclass
class State:
    """What the stored lists were computed from (``meta``, as JSON), to tell an addition from a change.

    `hashes` holds `HASH_CHARS` per item, in corpus order (posts by id, then papers by id),
    for every post up to `max_post` and paper up to `max_paper`."""

    k: int
    fit: str  # `fit_id`
    full_items: int  # items at the last full rebuild
    fresh_since_full: int  # items recomputed by incremental updates since then
    max_post: int
    max_paper: int
    hashes: str

    @classmethod
    def of(cls, corpus: Corpus, *, k: int, full_items: int, fresh_since_full: int) -> State:
        return cls(k=k, fit=fit_id(len(corpus.keys)), full_items=full_items, fresh_since_full=fresh_since_full,
                   max_post=max((i for kind, i in corpus.keys if kind == "post"), default=0),
                   max_paper=max((i for kind, i in corpus.keys if kind == "paper"), default=0),
                   hashes="".join(text_hash(t) for t in corpus.texts))


def text_hash(text: str) -> str:
    return base64.b64encode(hashlib.blake2b(text.encode("utf-8"), digest_size=6).digest()).decode("ascii")


def load_state(engine: Engine) -> State | None:
    with Session(engine) as s:
        value = s.scalar(select(Meta.value).where(Meta.key == STATE_KEY))
    try:
        return State(**json.loads(value)) if value is not None else None
    except (TypeError, ValueError):  # written by another version: start again from a full rebuild
        return None


def _write_meta(s: Session, key: str, value: str) -> None:
    meta = s.get(Meta, key)
    if meta is None:
        s.add(Meta(key=key, value=value))
    else:
        meta.value = value


def fresh_rows(corpus: Corpus, state: State | None, k: int) -> list[int] | None:
    """The rows an incremental update recomputes, or None when it must be a full rebuild.

    Fresh: posts and papers newer than the stored state, and existing papers whose text
    changed only because a new post discusses them (a paper's text includes its posts).
    Any other change to an existing item's text, or a missing item, means a full rebuild."""
    if state is None or state.k != k or state.fit != fit_id(len(corpus.keys)):
        return None
    last = {"post": state.max_post, "paper": state.max_paper}
    old = [row for row, (kind, i) in enumerate(corpus.keys) if i <= last[kind]]
    if len(old) * HASH_CHARS != len(state.hashes):
        return None  # an existing item was deleted
    new_posts = [i for kind, i in corpus.keys if kind == "post" and i > state.max_post]
    grew = {paper for post in new_posts for paper in corpus.post_papers.get(post, [])}
    old_set = set(old)
    fresh = [row for row in range(len(corpus.keys)) if row not in old_set]
    for n, row in enumerate(old):
        if text_hash(corpus.texts[row]) != state.hashes[n * HASH_CHARS:(n + 1) * HASH_CHARS]:
            kind, i = corpus.keys[row]
            if kind != "paper" or i not in grew:
                return None  # an existing item was edited
            fresh.append(row)
    if fresh and state.fresh_since_full + len(fresh) >= INCREMENTAL_MAX * state.full_items:
        return None
    return sorted(fresh)


# ------------------------------------------------------------------ full rebuild and incremental update

def _rows(item: tuple[str, int], kind: str, best: Iterable[tuple[int, float]]) -> list[dict[str, Any]]:
    """``related`` rows of one item's list of one kind, `best` as (other id, score) best first."""
    return [{"item_kind": item[0], "item_id": item[1], "other_kind": kind, "rank": rank,
             "other_id": other, "score": score} for rank, (other, score) in enumerate(best, start=1)]


def _by_id(corpus: Corpus, best: list[tuple[int, float]]) -> list[tuple[int, float]]:
    """`top_k`'s (row, score) pairs as stored: (id, score rounded to 6 places)."""
    return [(corpus.keys[row][1], round(score, 6)) for row, score in best]


RELATED_LOCK = 0x7265_6C61_7465_64  # the advisory lock writers of the lists take turns on ("related")


def _writers_take_turns(s: Session) -> None:
    """Serialise writers of the lists: two processes refreshing them at once (two `digest related`
    on a stale catalog) would each delete what they see and insert the same keys. SQLite's single
    writer already serialises them; PostgreSQL takes a transaction-scoped advisory lock."""
    if s.get_bind().dialect.name == "postgresql":
        s.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": RELATED_LOCK})


def _insert(s: Session, rows: list[dict[str, Any]]) -> None:
    for i in range(0, len(rows), INSERT_BATCH):
        s.execute(insert(Related), rows[i:i + INSERT_BATCH])


def _stats(corpus: Corpus, mode: str, **extra: Any) -> dict[str, Any]:
    return {"mode": mode, "items": len(corpus.keys), "posts": corpus.n_posts,
            "papers": len(corpus.keys) - corpus.n_posts, **extra}


def rebuild_related(engine: Engine, *, k: int = K, progress: Callable[[int], None] | None = None,
                    on_start: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Recompute every item's related posts and papers and store them (one transaction)."""
    stamp = fingerprint(engine)
    return _rebuild(engine, load_corpus(engine), stamp, k=k, progress=progress, on_start=on_start)


def _rebuild(engine: Engine, corpus: Corpus, stamp: str, *, k: int, progress: Callable[[int], None] | None,
             on_start: Callable[[int], None] | None) -> dict[str, Any]:
    if on_start:
        on_start(len(corpus.keys))
    rows: list[dict[str, Any]] = []
    if corpus.keys:
        with one_blas_thread():
            for row, kind, best in top_k(fit(corpus.texts), corpus.n_posts, k, progress=progress):
                rows += _rows(corpus.keys[row], kind, _by_id(corpus, best))
    state = State.of(corpus, k=k, full_items=len(corpus.keys), fresh_since_full=0)
    with Session(engine) as s, s.begin():
        _writers_take_turns(s)
        s.execute(delete(Related))
        _insert(s, rows)
        _write_meta(s, STATE_KEY, json.dumps(asdict(state)))
        _write_meta(s, FINGERPRINT_KEY, stamp)
    return _stats(corpus, "full", pairs=len(rows), fresh=len(corpus.keys), lists_changed=len(corpus.keys))


def merge_neighbours(stored: list[tuple[int, float]], fresh: list[tuple[int, float]], replaced: set[int],
                     k: int = K) -> list[tuple[int, float]]:
    """An existing item's stored list of one kind with the fresh items' scores merged in.

    Entries for `replaced` ids (the fresh items) lose their old scores; `fresh` (id, score)
    pairs enter where they beat the list's `k`-th or the list is short; best first, a tie
    keeping stored entries ahead (in their stored order), then `fresh` in its order."""
    kept = [entry for entry in stored if entry[0] not in replaced]
    return sorted(kept + fresh, key=lambda entry: -entry[1])[:k]


def stored_lists(s: Session) -> dict[tuple[str, int], dict[str, list[tuple[int, float]]]]:
    """The ``related`` table as ``{(kind, id): {other kind: [(other id, score), …] best first}}``."""
    out: dict[tuple[str, int], dict[str, list[tuple[int, float]]]] = {}
    for r in s.execute(select(Related.item_kind, Related.item_id, Related.other_kind, Related.other_id,
                              Related.score)
                       .order_by(Related.item_kind, Related.item_id, Related.other_kind, Related.rank)):
        out.setdefault((r.item_kind, r.item_id), {}).setdefault(r.other_kind, []).append((r.other_id, r.score))
    return out


def _delete_lists(s: Session, items: Iterable[tuple[str, int]]) -> None:
    for kind in KINDS:
        ids = sorted(i for item_kind, i in items if item_kind == kind)
        for n in range(0, len(ids), IN_BATCH):
            s.execute(delete(Related).where(Related.item_kind == kind, Related.item_id.in_(ids[n:n + IN_BATCH])))


def incremental_update(engine: Engine, corpus: Corpus, fresh: list[int], state: State, stamp: str, *,
                       k: int = K, progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Recompute the lists of the `fresh` rows, and merge them into the others' stored lists
    (see the module docstring); one transaction. `stamp` is the fingerprint `corpus` was read at."""
    new_lists: dict[tuple[str, int], dict[str, list[tuple[int, float]]]] = {}
    candidates: dict[tuple[str, int], dict[str, list[tuple[int, float]]]] = {}
    if fresh:
        with one_blas_thread():
            matrix = fit(corpus.texts)
            cols = np.asarray(fresh, dtype=np.int64)
            for row, kind, best in top_k(matrix, corpus.n_posts, k, rows=cols, progress=progress):
                new_lists.setdefault(corpus.keys[row], {})[kind] = _by_id(corpus, best)
            others = np.setdiff1d(np.arange(len(corpus.keys)), cols)
            for row, kind, best in top_k(matrix, corpus.n_posts, k, rows=others, cols=cols, progress=progress):
                candidates.setdefault(corpus.keys[row], {})[kind] = _by_id(corpus, best)
    replaced = {kind: {i for key_kind, i in new_lists if key_kind == kind} for kind in KINDS}
    after = State.of(corpus, k=k, full_items=state.full_items, fresh_since_full=state.fresh_since_full + len(fresh))
    with Session(engine) as s, s.begin():
        _writers_take_turns(s)
        stored = stored_lists(s) if candidates else {}
        for item, by_kind in candidates.items():
            lists = stored.get(item, {})
            merged = {kind: merge_neighbours(lists.get(kind, []), by_kind.get(kind, []), replaced[kind], k)
                      for kind in KINDS}
            if any(merged[kind] != lists.get(kind, []) for kind in KINDS):
                new_lists[item] = merged
        _delete_lists(s, new_lists)
        rows = [row for item in sorted(new_lists) for kind in KINDS
                for row in _rows(item, kind, new_lists[item].get(kind, []))]
        _insert(s, rows)
        _write_meta(s, STATE_KEY, json.dumps(asdict(after)))
        _write_meta(s, FINGERPRINT_KEY, stamp)
    return _stats(corpus, "incremental", pairs=len(rows), fresh=len(fresh), lists_changed=len(new_lists))


def update_related(engine: Engine, *, k: int = K, progress: Callable[[int], None] | None = None,
                   on_start: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Bring the stored lists up to date: incrementally when only new items came (few enough),
    else by a full rebuild (module docstring)."""
    stamp = fingerprint(engine)
    corpus, state = load_corpus(engine), load_state(engine)
    fresh = fresh_rows(corpus, state, k)
    if fresh is None:
        return _rebuild(engine, corpus, stamp, k=k, progress=progress, on_start=on_start)
    if on_start:
        on_start(len(corpus.keys) if fresh else 0)
    return incremental_update(engine, corpus, fresh, state, stamp, k=k, progress=progress)


def is_fresh(engine: Engine) -> bool:
    with Session(engine) as s:
        meta = s.get(Meta, FINGERPRINT_KEY)
        return meta is not None and meta.value == fingerprint(engine)


def ensure_related(engine: Engine, **kwargs: Any) -> dict[str, Any] | None:
    """Update the related lists (`update_related`) when the catalog changed since; None when fresh."""
    return None if is_fresh(engine) else update_related(engine, **kwargs)
