"""BM25 over a sparse term -> postings index, in numpy and scipy only.

Scoring is Lucene's BM25 (``BM25Similarity`` since Lucene 8, what Anserini and Pyserini run)::

    idf(t)      = ln(1 + (N - df(t) + 0.5) / (df(t) + 0.5))
    w(t, d)     = idf(t) * tf(t, d) / (tf(t, d) + k1 * (1 - b + b * dl(d) / avgdl))
    score(q, d) = sum over the tokens t of q of w(t, d)

with ``N`` the number of items, ``df(t)`` the number of items containing term ``t``, ``tf`` its count
in the item and ``dl`` the item's length in terms (after stopword removal). A term repeated in the
query counts once per occurrence (as in rank_bm25). Lucene's defaults ``k1=0.9, b=0.4`` are
Anserini's defaults for short documents.

Every document-side weight ``w(t, d)`` is computed once at :meth:`BM25.index` and stored
term-major (postings of a term contiguous and sorted by row). :meth:`BM25.search` is exact
(identical rankings to an exhaustive evaluation, ties broken by the lower row) but does not score
every posting: it runs MaxScore (Turtle & Flood, 1995) per query. Query terms are taken in order of
decreasing upper bound (rare terms first); their postings are accumulated into a dense buffer until
the sum of the upper bounds of the remaining, frequent terms falls below the k-th best partial score
found so far. No item outside the postings seen so far can then reach the top k; the few candidates
whose partial score plus that bound still reaches the threshold get the remaining terms' weights by
direct lookup (a dense ``uint8`` term-frequency row for the most frequent terms, binary search in
the postings otherwise). The top k is selected by ``np.partition`` over the candidates only, on
int64 keys that encode (score descending, row ascending), so ties need no second pass. Queries are
answered in parallel threads (numpy releases the GIL in its inner loops).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from recgym.catalog import Catalog
from recgym.retrievers.base import empty_results
from recgym.text import Tokenizer, Vocabulary

__all__ = ["BM25"]

VERSION = "1"
# A term whose postings cover at least 1/_DENSE_FRACTION of the items also gets a dense uint8 row of
# term frequencies (N bytes, at most 8x/_DENSE_FRACTION... i.e. no more than its 8-byte postings),
# so that MaxScore can look its weight up for any candidate in O(1).
_DENSE_FRACTION = 8
_DENSE_MIN_ITEMS = 1024
_EPS = 1e-5  # relative slack on MaxScore bounds against float32 rounding


class BM25:
    """Lucene BM25 with precomputed weights and exact, pruned top-k search.

    Args:
        k1: term-frequency saturation (Lucene/Anserini default 0.9).
        b: length normalisation (Lucene/Anserini default 0.4).
        tokenizer: a :class:`~recgym.text.Tokenizer` or a mapping of its settings.
        fields: catalog fields to index after the title (``None``: all; ``[]``: the title only).
        n_threads: threads answering a batch of queries (default: the number of CPUs).

    An empty catalog can be indexed; every search then returns only ``-1`` rows.
    """

    name = "bm25"

    def __init__(
        self,
        k1: float = 0.9,
        b: float = 0.4,
        tokenizer: Tokenizer | Mapping[str, Any] | None = None,
        fields: Sequence[str] | None = None,
        n_threads: int | None = None,
    ) -> None:
        if not (np.isfinite(k1) and k1 >= 0):
            raise ValueError(f"k1 must be finite and >= 0, got {k1}")
        if not (np.isfinite(b) and 0 <= b <= 1):
            raise ValueError(f"b must be in [0, 1], got {b}")
        if tokenizer is None:
            tokenizer = Tokenizer()
        elif isinstance(tokenizer, Mapping):
            tokenizer = Tokenizer(**tokenizer)
        elif not isinstance(tokenizer, Tokenizer):
            raise TypeError(f"tokenizer must be a Tokenizer or a mapping, got {type(tokenizer).__name__}")
        self.k1 = float(k1)
        self.b = float(b)
        self.tokenizer = tokenizer
        self.fields = None if fields is None else list(fields)
        self.n_threads = max(1, n_threads or os.cpu_count() or 1)
        self.dense_fraction = _DENSE_FRACTION
        self._vocab: Vocabulary | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._local = threading.local()

    # -- protocol --------------------------------------------------------------------------------

    def config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": VERSION,
            "k1": self.k1,
            "b": self.b,
            "tokenizer": self.tokenizer.config(),
            "fields": self.fields,
        }

    def index(self, catalog: Catalog | Sequence[str]) -> None:
        """Build the index of a catalog (or of a plain list of texts, one per row)."""
        texts = catalog.texts(self.fields) if isinstance(catalog, Catalog) else list(catalog)
        vocab = Vocabulary(self.tokenizer)
        ids, rows = vocab.encode_batch(texts, grow=True)
        self._build(len(texts), vocab, ids, rows)

    def search(self, queries: Sequence[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` rows and scores of each query; ``-1`` / ``-inf`` where fewer items match."""
        if self._vocab is None:
            raise RuntimeError("BM25.search called before index()")
        if isinstance(queries, str):
            raise TypeError("search expects a sequence of query strings, not a single str")
        k = int(k)
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        n = len(queries)
        rows, scores = empty_results(n, k)
        if n == 0 or self.n_items == 0:
            return rows, scores
        ids, qpos = self._vocab.encode_batch(queries)
        bounds = np.searchsorted(qpos, np.arange(n + 1))
        n_jobs = min(self.n_threads, max(1, n // 8))
        if n_jobs == 1:
            self._search_range(0, n, ids, bounds, k, rows, scores)
            return rows, scores
        if self._pool is None or self._pool._max_workers != n_jobs:
            self._pool = ThreadPoolExecutor(n_jobs, thread_name_prefix="recgym-bm25")
        step = -(-n // (4 * n_jobs))  # several chunks per thread to even out the load
        futures = [
            self._pool.submit(self._search_range, lo, min(n, lo + step), ids, bounds, k, rows, scores)
            for lo in range(0, n, step)
        ]
        for f in futures:
            f.result()
        return rows, scores

    # -- index -----------------------------------------------------------------------------------

    def _build(self, n: int, vocab: Vocabulary, ids: np.ndarray, rows: np.ndarray) -> None:
        n_terms = len(vocab)
        self.n_items = n
        dl = np.bincount(rows, minlength=n).astype(np.float64)
        self.avgdl = float(dl.mean()) if n else 0.0
        # (term, row) pairs with their counts, sorted term-major then by row.
        key = np.sort(ids * max(n, 1) + rows)
        first = np.ones(len(key), dtype=bool)
        first[1:] = key[1:] != key[:-1]
        starts = np.flatnonzero(first)
        tf = np.diff(np.append(starts, len(key))).astype(np.float64)
        key = key[starts]
        term = key // max(n, 1)
        docs = (key - term * max(n, 1)).astype(np.int32)
        df = np.bincount(term, minlength=n_terms)
        indptr = np.zeros(n_terms + 1, dtype=np.int64)
        np.cumsum(df, out=indptr[1:])
        idf = np.log(1.0 + (n - df + 0.5) / (df + 0.5))
        norm = self.k1 * (1.0 - self.b + self.b * dl / self.avgdl) if self.avgdl > 0 else dl
        w = (idf[term] * tf / (tf + norm[docs])).astype(np.float32)
        np.maximum(w, np.finfo(np.float32).tiny, out=w)  # > 0 always: 0 marks "unseen" in search
        maxw = np.zeros(n_terms, dtype=np.float32)
        if len(w):
            np.maximum.at(maxw, term, w)
        # Dense term-frequency rows of the most frequent terms (for O(1) MaxScore lookups).
        dense_row = np.full(n_terms, -1, dtype=np.int64)
        dense_terms = np.flatnonzero((df * self.dense_fraction >= n) & (n >= _DENSE_MIN_ITEMS))
        dense = np.zeros((len(dense_terms), n), dtype=np.float32)
        for i, t in enumerate(dense_terms.tolist()):
            lo, hi = indptr[t], indptr[t + 1]
            dense[i, docs[lo:hi]] = w[lo:hi]
            dense_row[t] = i
        self._vocab = vocab
        self._indptr, self._docs, self._w, self._maxw = indptr, docs, w, maxw
        self._idf, self._norm, self._df = idf, norm, df
        self._dense, self._dense_row = dense, dense_row
        self._local = threading.local()

    def memory_bytes(self) -> int:
        """Approximate size of the index arrays (the vocabulary dict excluded)."""
        arrays = (self._indptr, self._docs, self._w, self._maxw, self._idf, self._norm, self._df)
        return sum(a.nbytes for a in arrays) + self._dense.nbytes + self._dense_row.nbytes

    # -- search ----------------------------------------------------------------------------------

    def _workspace(self) -> np.ndarray:
        """This thread's score buffer (one float32 per item, all zero between queries)."""
        ws = getattr(self._local, "ws", None)
        if ws is None or len(ws) != self.n_items:
            ws = self._local.ws = np.zeros(self.n_items, dtype=np.float32)
        return ws

    def _search_range(
        self,
        lo: int,
        hi: int,
        ids: np.ndarray,
        bounds: np.ndarray,
        k: int,
        rows: np.ndarray,
        scores: np.ndarray,
    ) -> None:
        buf = self._workspace()
        for i in range(lo, hi):
            q = ids[bounds[i] : bounds[i + 1]]
            if len(q):
                r, s = self._search_one(q, k, buf)
                rows[i, : len(r)] = r
                scores[i, : len(s)] = s

    def _search_one(
        self, q: np.ndarray, k: int, buf: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """MaxScore top-k of one query (term ids ``q``); ``buf`` is all zeros and is left so."""
        indptr, docs, w, maxw = self._indptr, self._docs, self._w, self._maxw
        counts: dict[int, int] = {}
        for t in q.tolist():
            counts[t] = counts.get(t, 0) + 1
        # Terms by decreasing upper bound (count * max weight), ties by term id.
        plan = sorted(((-c * float(maxw[t]), t, c) for t, c in counts.items()))
        m = len(plan)
        ub = [-p[0] for p in plan]
        # rest[j]: the most any item can score from terms j.. (MaxScore's remaining bound);
        # done[j]: the most it can score from terms ..j-1.
        rest = [0.0] * (m + 1)
        for j in range(m - 1, -1, -1):
            rest[j] = rest[j + 1] + ub[j]
        parts: list[np.ndarray] = []
        n_cand = 0
        theta = -np.inf
        j = 0
        while j < m:
            _, t, c = plan[j]
            lo, hi = indptr[t], indptr[t + 1]
            d = docs[lo:hi].astype(np.intp)
            g = buf.take(d)
            parts.append(d[g == 0])  # weights are > 0, so 0 marks an item not seen yet
            n_cand += len(parts[-1])
            buf[d] = g + (w[lo:hi] if c == 1 else w[lo:hi] * np.float32(c))
            j += 1
            # Can the remaining terms be skipped? Only if theta (the k-th best partial score,
            # at most rest[0] - rest[j]) exceeds what they can add.
            if j < m and n_cand >= k and rest[0] - rest[j] > rest[j] * (1 + _EPS):
                if len(parts) > 1:
                    parts = [np.concatenate(parts)]
                s = buf.take(parts[0])
                theta = float(np.partition(s, n_cand - k)[n_cand - k])
                if rest[j] * (1 + _EPS) < theta:
                    break
        cand = np.concatenate(parts) if len(parts) > 1 else parts[0]
        s = buf.take(cand)
        buf[cand] = 0
        if j < m:
            # Candidates that cannot reach theta even with every remaining term are dropped; the
            # others get the remaining terms' weights by lookup.
            alive = s >= np.float32(theta / (1 + _EPS) - rest[j])
            cand, s = cand[alive], s[alive]
            for _, t, c in plan[j:]:
                s += self._lookup(t, c, cand)
        return _top_k(cand, s, k)

    def _lookup(self, t: int, c: int, cand: np.ndarray) -> np.ndarray:
        """float32 weight (times the query count ``c``) of term ``t`` in each candidate row."""
        r = self._dense_row[t]
        if r >= 0:
            out = self._dense[r].take(cand)
        else:
            lo, hi = self._indptr[t], self._indptr[t + 1]
            d = self._docs[lo:hi]
            pos = np.searchsorted(d, cand)
            pos[pos == len(d)] = 0
            out = np.where(d.take(pos) == cand, self._w[lo:hi].take(pos), np.float32(0))
        return out if c == 1 else out * np.float32(c)


def _top_k(cand: np.ndarray, s: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best ``(row, score)`` by score descending then row ascending (scores > 0)."""
    # For non-negative float32, the bit pattern orders like the value; inverting it and putting
    # the row in the low 32 bits makes one ascending int64 key for (score desc, row asc).
    key = (np.uint64(0xFFFFFFFF) - s.view(np.uint32).astype(np.uint64)) << np.uint64(32)
    key |= cand.astype(np.uint64)
    if len(key) > k:
        key = np.partition(key, k - 1)[:k]
    key.sort()
    rows = (key & np.uint64(0xFFFFFFFF)).astype(np.int64)
    scores = (np.uint64(0xFFFFFFFF) - (key >> np.uint64(32))).astype(np.uint32).view(np.float32)
    return rows, scores
