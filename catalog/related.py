"""Related posts and papers: TF-IDF over what the catalog holds, cosine similarity, top-k stored.

What each item is, as text:
- a paper: its title and abstract plus the text of (up to five of) the posts discussing it;
- a post: its title and text plus the titles of the papers it discusses.

Text goes through the search index's own folding and Chinese segmentation
(`catalog.searchtext.document_text`), then two scikit-learn TF-IDF vectorisers: words,
and character 3–5-grams within words — the second is what lets Russian inflections
(`внимание` / `внимания`) and unsegmented Chinese meet. Both halves are L2-normalised
and weighted equally, so a cosine is a plain dot product of rows.

Similarities are computed once per rebuild, in row blocks (memory stays bounded by
block × items), and the top `K` posts and `K` papers of every item are stored in the
``related`` table. Up to `EXACT_MAX` items the cosines are exact, over the sparse
TF-IDF rows. Past that, a sparse product over hundreds of thousands of character
n-grams grows with the square of the catalog, so the rows are first projected onto
their `LSA_DIMS` leading singular directions (latent semantic analysis, randomised
SVD) and compared densely: the neighbours become approximate, the cost a fixed number
of matrix products per block. `ensure_related` rebuilds only when the catalog changed since the
last rebuild (a fingerprint of post and paper counts and last-update times in ``meta``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from sqlalchemy import Engine, delete, func, insert, select
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
FINGERPRINT_KEY = "related_fingerprint"
KINDS = ("post", "paper")


@dataclass
class Corpus:
    """The items to compare, as (kind, id) keys and their texts, posts first."""

    keys: list[tuple[str, int]]
    texts: list[str]

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
    return Corpus(keys, [document_text(t) for t in texts])


def vectorize(texts: list[str]):
    """Rows of L2-normalised TF-IDF (words ⊕ character n-grams), float32 CSR."""
    from scipy.sparse import hstack
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.preprocessing import normalize

    # Rare terms carry the similarity; terms in most documents only cost time.
    common = dict(sublinear_tf=True, dtype=np.float32, min_df=1 if len(texts) < 1000 else 2, max_df=0.5)
    words = TfidfVectorizer(analyzer="word", token_pattern=r"(?u)\b\w\w*\b", max_features=1 << 17, **common)
    chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), max_features=1 << 18, **common)
    halves = []
    for vec in (words, chars):
        try:
            halves.append(vec.fit_transform(texts))
        except ValueError:  # no term survives (a catalog of empty posts): this half adds nothing
            continue
    if not halves:
        from scipy.sparse import csr_matrix

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


def top_k(matrix, n_posts: int, k: int = K, *, block: int = BLOCK,
          progress: Callable[[int], None] | None = None):
    """For each row: the `k` most similar posts and papers (never itself), by cosine.

    `matrix` is sparse (exact cosines) or a dense projection. Yields
    ``(row, kind, [(other_row, score), …])`` with scores > 0, best first.
    """
    n = matrix.shape[0]
    dense = isinstance(matrix, np.ndarray)
    t = matrix.T if dense else matrix.T.tocsr()
    for start in range(0, n, block):
        stop = min(start + block, n)
        sims = matrix[start:stop] @ t  # (block, n) cosine similarities
        sims = sims if dense else sims.toarray()
        sims[np.arange(stop - start), np.arange(start, stop)] = -1.0  # an item is not its own neighbour
        for kind, lo, hi in (("post", 0, n_posts), ("paper", n_posts, n)):
            if hi - lo == 0:
                continue
            part = sims[:, lo:hi]
            kk = min(k, hi - lo)
            idx = np.argpartition(-part, kk - 1, axis=1)[:, :kk]
            for r in range(stop - start):
                order = idx[r][np.argsort(-part[r, idx[r]], kind="stable")]
                best = [(lo + int(j), float(part[r, j])) for j in order if part[r, j] > 0]
                yield start + r, kind, best
        if progress:
            progress(stop - start)


def fingerprint(engine: Engine) -> str:
    """Changes whenever a post or paper is added, removed or updated."""
    with engine.connect() as c:
        posts = c.execute(select(func.count(Post.id), func.max(Post.updated_at), func.max(Post.id))).one()
        papers = c.execute(select(func.count(Paper.id), func.max(Paper.fetched_at), func.max(Paper.id))).one()
    return "|".join(str(v) for v in (*posts, *papers))


def rebuild_related(engine: Engine, *, k: int = K, progress: Callable[[int], None] | None = None,
                    on_start: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Recompute every item's related posts and papers and store them (one transaction)."""
    stamp = fingerprint(engine)
    corpus = load_corpus(engine)
    if on_start:
        on_start(len(corpus.keys))
    rows: list[dict[str, Any]] = []
    if corpus.keys:
        matrix = vectorize(corpus.texts)
        if matrix.shape[0] > EXACT_MAX:
            matrix = project(matrix)
        for row, kind, best in top_k(matrix, corpus.n_posts, k, progress=progress):
            item_kind, item_id = corpus.keys[row]
            rows += [{"item_kind": item_kind, "item_id": item_id, "other_kind": kind, "rank": rank,
                      "other_id": corpus.keys[other][1], "score": round(score, 6)}
                     for rank, (other, score) in enumerate(best, start=1)]
    with Session(engine) as s, s.begin():
        s.execute(delete(Related))
        for i in range(0, len(rows), 5000):
            s.execute(insert(Related), rows[i:i + 5000])
        meta = s.get(Meta, FINGERPRINT_KEY)
        if meta is None:
            s.add(Meta(key=FINGERPRINT_KEY, value=stamp))
        else:
            meta.value = stamp
    return {"items": len(corpus.keys), "posts": corpus.n_posts, "papers": len(corpus.keys) - corpus.n_posts,
            "pairs": len(rows)}


def is_fresh(engine: Engine) -> bool:
    with Session(engine) as s:
        meta = s.get(Meta, FINGERPRINT_KEY)
        return meta is not None and meta.value == fingerprint(engine)


def ensure_related(engine: Engine, **kwargs: Any) -> dict[str, Any] | None:
    """Rebuild the related lists when the catalog changed since the last rebuild; None when fresh."""
    return None if is_fresh(engine) else rebuild_related(engine, **kwargs)


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
