"""The vector maths of the related lists: texts as TF-IDF rows, and each row's top-k neighbours by cosine.

Texts (already folded by `catalog.searchtext.document_text`) go through TF-IDF twice
(scikit-learn's weighting, our own faster counting, see `vectorize`): words, and character
4-grams within words — the second is what lets Russian inflections (`внимание` /
`внимания`) meet. Both halves are L2-normalised and weighted equally, so a cosine is a
plain dot product of rows.

Similarities are computed in row blocks (memory stays bounded by block × items), keeping
the top `K` posts and `K` papers of every row. Up to `EXACT_MAX` items the cosines are
exact, over the sparse TF-IDF rows. Past that, a sparse product over hundreds of thousands
of character n-grams grows with the square of the catalog, so the rows are first projected
onto their `LSA_DIMS` leading singular directions (latent semantic analysis, randomised
SVD) and compared densely: the neighbours become approximate, the cost a fixed number of
matrix products per block. Nothing here touches the database (`catalog.related` does).
"""

from __future__ import annotations

import re
from array import array
from collections import defaultdict
from typing import Callable, Iterable

import numpy as np

K = 10
BLOCK = 256
EXACT_MAX = 5_000  # items; above this, cosines in an LSA projection
LSA_DIMS = 128
SMALL_CORPUS = 1_000  # texts; below this a term seen once is kept (min_df=1), above it must be seen twice


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
