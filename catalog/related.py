"""Related posts and papers: TF-IDF over what the catalog holds, cosine similarity, top-k stored.

What each item is, as text:
- a paper: its title and abstract plus the text of (up to five of) the posts discussing it;
- a post: its title and text plus the titles of the papers it discusses.

Text goes through the search index's own folding and Chinese segmentation
(`catalog.searchtext.document_text`), then TF-IDF twice (scikit-learn's weighting, our own
faster counting, see `vectorize`): words, and character 4-grams within words — the second
is what lets Russian inflections (`внимание` / `внимания`) meet. Both halves are
L2-normalised and weighted equally, so a cosine is a plain dot product of rows.

Similarities are computed in row blocks (memory stays bounded by block × items), and
the top `K` posts and `K` papers of every item are stored in the ``related`` table. Up
to `EXACT_MAX` items the cosines are exact, over the sparse TF-IDF rows. Past that, a
sparse product over hundreds of thousands of character n-grams grows with the square of
the catalog, so the rows are first projected onto their `LSA_DIMS` leading singular
directions (latent semantic analysis, randomised SVD) and compared densely: the
neighbours become approximate, the cost a fixed number of matrix products per block.

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
import re
from array import array
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterable

import numpy as np
from sqlalchemy import Engine, delete, func, insert, select, text
from sqlalchemy.orm import Session

from catalog.errors import DigestError, UsageError
from catalog.models import Meta, Paper, Post, PostPaper, Related, Source, iso_utc
from catalog.searchtext import document_text

K = 10
BLOCK = 256
EXACT_MAX = 5_000  # items; above this, cosines in an LSA projection
LSA_DIMS = 128
POSTS_PER_PAPER = 5
CHARS_PER_DOC = 4000  # a long post says what it is about early; the tail costs time, not quality
SMALL_CORPUS = 1_000  # texts; below this a term seen once is kept (min_df=1), above it must be seen twice
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


def fit_kind(items: int) -> str:
    """Which fit `fit` makes of a corpus this size: scores of different kinds are not comparable."""
    if items > EXACT_MAX:
        return "lsa"
    return "exact-df1" if items < SMALL_CORPUS else "exact-df2"


def fit_id(items: int) -> str:
    """What the stored state records of the fit: its kind and the terms counted. Lists stored
    under another were scored on another scale, so the next update is a full rebuild."""
    return f"{fit_kind(items)} words+char{CHAR_NGRAMS[0]}-{CHAR_NGRAMS[1]}"


WORD_TOKEN = re.compile(r"(?u)\b\w\w*\b")  # a word: a run of letters and digits
# Character n-grams within a word, padded with a space at each end. 4-grams alone find
# neighbours as well as 3- to 5-grams did (the other half of the same Penn Treebank passage
# among 5.3k half-passages, in the top 5: 41.2% vs 41.4%, ±0.4 over SVD seeds; 48 labelled
# papers: precision@5 0.475 both; a synthetic 10k catalog: a post's cited paper in its top 5,
# 16.6% vs 14.9%) from 42% of the matrix entries: the SVD takes a third of the time.
CHAR_NGRAMS = (4, 4)
WORD_FEATURES, CHAR_FEATURES = 1 << 17, 1 << 18  # the most frequent terms kept per half
MAX_DF = 0.5  # rare terms carry the similarity; terms in most documents only cost time


def word_terms(token: str) -> list[str]:
    return WORD_TOKEN.findall(token)


def char_terms(token: str, ngrams: tuple[int, int] = CHAR_NGRAMS) -> list[str]:
    """The character n-grams of one word, as scikit-learn's ``char_wb`` analyzer makes them."""
    padded = f" {token} "
    out: list[str] = []
    for n in range(ngrams[0], ngrams[1] + 1):
        if len(padded) <= n:  # a short word is one n-gram, counted once
            out.append(padded)
            break
        out.extend(padded[i:i + n] for i in range(len(padded) - n + 1))
    return out


def _ids() -> dict[str, int]:
    """A dict that numbers a new key on first lookup (in order of first appearance)."""
    ids: dict[str, int] = defaultdict()
    ids.default_factory = ids.__len__
    return ids


def _count_matrix(rows: Iterable[list[str]], ids: dict[str, int], n_rows: int):
    """Rows × `ids` occurrence counts (int32 CSR, indices sorted), numbering new keys as it goes."""
    from scipy.sparse import csr_matrix

    indices = array("q")  # machine integers: a list would hold an int object per occurrence
    indptr = array("q", [0])
    number = ids.__getitem__
    for row in rows:
        indices.extend(map(number, row))
        indptr.append(len(indices))
    index_type = np.int64 if len(indices) >= 2 ** 31 else np.int32
    matrix = csr_matrix((np.ones(len(indices), dtype=np.int32), np.frombuffer(indices, np.int64).astype(index_type),
                         np.frombuffer(indptr, np.int64).astype(index_type)), shape=(n_rows, len(ids)))
    matrix.sum_duplicates()  # also sorts each row's indices
    return matrix


def _tfidf_half(doc_tokens, tokens: list[str], terms: Callable[[str], list[str]], *, min_df: int,
                max_features: int):
    """One half of `vectorize`: the matrix ``TfidfVectorizer(sublinear_tf=True, min_df, max_df=MAX_DF,
    max_features, dtype=float32)`` gives, bit for bit, with the analyzer `terms` applied to each
    whitespace-separated token. Raises ValueError where it would (no term survives)."""
    from scipy.sparse import csr_matrix
    from sklearn.feature_extraction.text import TfidfTransformer

    ids = _ids()
    counts = doc_tokens @ _count_matrix(map(terms, tokens), ids, len(tokens))  # documents × terms
    if not ids:
        raise ValueError("no terms")
    counts.sort_indices()
    # What CountVectorizer then does: columns in term order (indices re-labelled, not re-sorted),
    # the document-frequency bounds, then the `max_features` most frequent terms.
    relabel = np.empty(len(ids), dtype=counts.indices.dtype)
    relabel[[ids[term] for term in sorted(ids)]] = np.arange(len(ids), dtype=counts.indices.dtype)
    counts = csr_matrix((counts.data.astype(np.float32), relabel.take(counts.indices), counts.indptr),
                        shape=counts.shape)  # a new matrix: the old one's cached "sorted" flag no longer holds
    n_docs = counts.shape[0]
    if MAX_DF * n_docs < min_df:
        raise ValueError("max_df corresponds to < documents than min_df")
    df = np.bincount(counts.indices, minlength=counts.shape[1])
    mask = (df <= MAX_DF * n_docs) & (df >= min_df)
    if mask.sum() > max_features:
        frequency = np.asarray(counts.sum(axis=0)).ravel()  # float32 sums as there, so ties fall alike
        keep = np.zeros(len(mask), dtype=bool)
        keep[np.flatnonzero(mask)[(-frequency[mask]).argsort()[:max_features]]] = True
        mask = keep
    if not mask.any():
        raise ValueError("no terms remain")
    counts = counts[:, np.flatnonzero(mask)]
    return TfidfTransformer(sublinear_tf=True).fit(counts).transform(counts, copy=False)


def vectorize(texts: list[str]):
    """Rows of L2-normalised TF-IDF (words ⊕ character n-grams), float32 CSR.

    Each half is exactly scikit-learn's ``TfidfVectorizer`` (words: `WORD_TOKEN`; characters:
    ``analyzer="char_wb"``, `CHAR_NGRAMS`) on the lower-cased text — tests compare the two —
    but counted per distinct token. A document's words and character n-grams are those of its
    whitespace-separated tokens, so its term counts are its token counts times each token's
    terms: one sparse product, each distinct token analysed once instead of at each of its
    occurrences (a synthetic 10k-post catalog: 2.7M tokens, 10k distinct; its 3–5-gram half
    took 9.4–10.3 s in scikit-learn, 1.4 s so, the same matrix)."""
    from scipy.sparse import csr_matrix, hstack
    from sklearn.preprocessing import normalize

    token_ids = _ids()
    doc_tokens = _count_matrix((text.lower().split() for text in texts), token_ids, len(texts))
    tokens = list(token_ids)
    min_df = 1 if len(texts) < SMALL_CORPUS else 2
    halves = []
    for terms, limit in ((word_terms, WORD_FEATURES), (char_terms, CHAR_FEATURES)):
        try:
            halves.append(_tfidf_half(doc_tokens, tokens, terms, min_df=min_df, max_features=limit))
        except ValueError:  # no term survives (a catalog of empty posts): this half adds nothing
            continue
    if not halves:
        return csr_matrix((len(texts), 1), dtype=np.float32)
    return normalize(hstack(halves).tocsr().astype(np.float32))


def project(matrix, dims: int = LSA_DIMS, seed: int = 0) -> np.ndarray:
    """Rows in their `dims` leading singular directions, L2-normalised again (dense float32)."""
    from sklearn.decomposition import TruncatedSVD
    from sklearn.preprocessing import normalize

    dims = max(1, min(dims, matrix.shape[0] - 1, matrix.shape[1] - 1))
    reduced = TruncatedSVD(n_components=dims, algorithm="randomized", n_iter=4,
                           random_state=seed).fit_transform(matrix)
    return normalize(reduced).astype(np.float32)


def one_blas_thread():
    """A context in which BLAS (the SVD's QR and small SVD, `top_k`'s dense products) runs one thread.

    Those products are small: a second thread gains little on an idle machine, and on a busy
    one OpenBLAS's threads wait on each other (10k posts on 2 loaded cores: the SVD 4–5.5 s
    with two, 1.5–2 s with one; `top_k` 2.5–2.9 s, 1.1–1.5 s). And the lists then do not
    depend on how many cores the machine has (threads split sums differently)."""
    from threadpoolctl import threadpool_limits  # scikit-learn's own dependency

    return threadpool_limits(limits=1, user_api="blas")


def fit(texts: list[str]):
    """The rows similarities are measured on: exact TF-IDF, or its LSA projection past `EXACT_MAX`."""
    matrix = vectorize(texts)
    return project(matrix) if fit_kind(matrix.shape[0]) == "lsa" else matrix


def top_k(matrix, n_posts: int, k: int = K, *, rows: np.ndarray | None = None, cols: np.ndarray | None = None,
          block: int = BLOCK, progress: Callable[[int], None] | None = None):
    """For each of `rows` (default all): the `k` most similar posts and papers among `cols`
    (sorted row numbers, default all), never itself, by cosine.

    `matrix` is sparse (exact cosines) or a dense projection. Yields
    ``(row, kind, [(other_row, score), …])`` with scores > 0, best first.
    """
    n = matrix.shape[0]
    rows = np.arange(n) if rows is None else np.asarray(rows, dtype=np.int64)
    cols = np.arange(n) if cols is None else np.asarray(cols, dtype=np.int64)
    dense = isinstance(matrix, np.ndarray)
    candidates = matrix if len(cols) == n else matrix[cols]
    t = candidates.T if dense else candidates.T.tocsr()
    split = int(np.searchsorted(cols, n_posts))  # cols before it are posts
    for start in range(0, len(rows), block):
        chunk = rows[start:start + block]
        sims = matrix[chunk] @ t  # (block, cols) cosine similarities
        sims = sims if dense else sims.toarray()
        at = np.minimum(np.searchsorted(cols, chunk), len(cols) - 1)
        own = np.flatnonzero(cols[at] == chunk) if len(cols) else at[:0]
        sims[own, at[own]] = -1.0  # an item is not its own neighbour
        for kind, lo, hi in (("post", 0, split), ("paper", split, len(cols))):
            if hi - lo == 0:
                continue
            part = sims[:, lo:hi]
            kk = min(k, hi - lo)
            idx = np.argpartition(-part, kk - 1, axis=1)[:, :kk]
            for r in range(len(chunk)):
                order = idx[r][np.argsort(-part[r, idx[r]], kind="stable")]
                best = [(int(cols[lo + j]), float(part[r, j])) for j in order if part[r, j] > 0]
                yield int(chunk[r]), kind, best
        if progress:
            progress(len(chunk))


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


def resolve_item(engine: Engine, ident: str) -> tuple[str, int]:
    """A post id (``42``) or an arXiv id (``2004.13342``, ``arXiv:…``) as (kind, row id)."""
    ident = ident.strip()
    with Session(engine) as s:
        if ident.isdigit():
            if s.get(Post, int(ident)) is None:
                raise DigestError(f"no post with id {ident}")
            return "post", int(ident)
        from catalog.papers import parse_paper_id

        arxiv_id = parse_paper_id(ident)
        pid = s.scalar(select(Paper.id).where(Paper.arxiv_id == arxiv_id))
        if pid is None:
            raise DigestError(f"no paper {arxiv_id} in the catalog")
        return "paper", pid


def related(engine: Engine, ident: str, *, kinds: tuple[str, ...] = KINDS, limit: int = 5) -> list[dict[str, Any]]:
    """The stored neighbours of a post or paper, best first per kind (posts, then papers)."""
    for kind in kinds:
        if kind not in KINDS:
            raise UsageError(f"unknown kind {kind!r}: use post or paper")
    item_kind, item_id = resolve_item(engine, ident)
    out: list[dict[str, Any]] = []
    with Session(engine) as s:
        for kind in kinds:
            rows = s.execute(select(Related.other_id, Related.score, Related.rank)
                             .where(Related.item_kind == item_kind, Related.item_id == item_id,
                                    Related.other_kind == kind, Related.rank <= limit)
                             .order_by(Related.rank)).all()
            ids = [r.other_id for r in rows]
            if kind == "post":
                info = {p.id: {"id": p.id, "title": p.title or _first_line(p.text), "source": src_title,
                               "published_at": iso_utc(p.published_at), "url": p.url}
                        for p, src_title in s.execute(select(Post, func.coalesce(func.nullif(Source.title, ""),
                                                                                   Source.handle))
                                                      .join(Source, Source.id == Post.source_id)
                                                      .where(Post.id.in_(ids)))} if ids else {}
            else:
                info = {p.id: {"arxiv_id": p.arxiv_id, "title": p.title, "primary_category": p.primary_category}
                        for p in s.scalars(select(Paper).where(Paper.id.in_(ids)))} if ids else {}
            out += [{"kind": kind, "rank": r.rank, "score": r.score, **info[r.other_id]}
                    for r in rows if r.other_id in info]
    return out


def _first_line(text: str | None, limit: int = 90) -> str:
    line = (text or "").strip().split("\n", 1)[0]
    return line if len(line) <= limit else line[:limit].rsplit(" ", 1)[0] + "…"


def related_map(engine: Engine, limit: int = 5) -> dict[tuple[str, int], list[tuple[str, int, float]]]:
    """Every item's neighbours as ``{(kind, id): [(other_kind, other_id, score), …]}`` (for the site)."""
    out: dict[tuple[str, int], list[tuple[str, int, float]]] = {}
    with engine.connect() as c:
        for r in c.execute(select(Related).where(Related.rank <= limit)
                           .order_by(Related.item_kind, Related.item_id, Related.other_kind, Related.rank)):
            out.setdefault((r.item_kind, r.item_id), []).append((r.other_kind, r.other_id, r.score))
    return out
