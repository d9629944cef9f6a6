"""BM25 over a sparse term -> postings index, in numpy only (no compiled extension, no numba).

Scoring is Lucene's BM25 (``BM25Similarity`` since Lucene 8, what Anserini and Pyserini run)::

    idf(t)      = ln(1 + (N - df(t) + 0.5) / (df(t) + 0.5))
    w(t, d)     = idf(t) * tf(t, d) / (tf(t, d) + k1 * (1 - b + b * dl(d) / avgdl))
    score(q, d) = sum over the tokens t of q of w(t, d)

with ``N`` the number of items, ``df(t)`` the number of items containing term ``t``, ``tf`` its count
in the item and ``dl`` the item's length in terms (after stopword removal). A term repeated in the
query counts once per occurrence (as in rank_bm25). ``k1=0.9, b=0.4`` are Anserini's defaults
(tuned on short documents; Lucene itself defaults to 1.2 / 0.75).

**Index.** Every weight ``w(t, d)`` is computed once by :meth:`BM25.index` and stored term-major
(CSR: the postings of a term are contiguous and sorted by row; float32 weights, int32 rows). The
most frequent terms (in at least 1/32 of the items) also get a dense float32 row of weights.

**Search** is exact (the ranking of an exhaustive evaluation, ties broken by the lower row) without
scoring every posting. It runs MaxScore (Turtle & Flood, 1995): a query's terms are taken in order of
decreasing upper bound (rare terms first) and their postings accumulated until the sum of the upper
bounds of the remaining (frequent) terms falls below ``theta``, the k-th best partial score so far.
No item outside the postings seen can then reach the top k, and the candidates whose partial score
plus that bound still reaches ``theta`` get the remaining terms' weights by lookup (the dense rows,
or binary search in the postings). The top k is picked by ``np.partition`` over those candidates
only, on int64 keys that encode (score descending, row ascending).

Queries are processed in chunks in lockstep: each step of MaxScore is one numpy call over the
postings or candidates of every query of the chunk (a ``(chunk, N)`` score buffer keeps queries
apart), so the Python overhead is paid per chunk, not per query, and the large numpy calls release
the GIL, which lets :class:`BM25` answer chunks in parallel threads.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from recgym.catalog import Catalog
from recgym.retrievers.base import empty_results
from recgym.text import Tokenizer, Vocabulary

__all__ = ["BM25"]

VERSION = "1"
# Terms in at least 1/_DENSE_FRACTION of the items (with at least _DENSE_MIN_ITEMS items) get a
# dense float32 row of weights, so that MaxScore looks them up in O(1) per candidate.
_DENSE_FRACTION = 32
_DENSE_MIN_ITEMS = 1024
# Score buffer per thread: chunk * n_items float32 values at most (32 MiB).
_BUFFER_VALUES = 1 << 23
_MAX_CHUNK = 256
_EPS = 1e-5  # relative slack on MaxScore bounds, far above float32 accumulation error
_U32 = np.uint64(0xFFFFFFFF)
_PAD = np.uint64(0xFFFFFFFFFFFFFFFF)


class BM25:
    """Lucene BM25 with precomputed weights and exact, pruned, batched top-k search.

    Args:
        k1: term-frequency saturation (Anserini's default 0.9).
        b: length normalisation (Anserini's default 0.4).
        tokenizer: a :class:`~recgym.text.Tokenizer` or a mapping of its settings (default:
            lowercase, Unicode folding, Lucene's English stopwords, Snowball English stemmer).
        fields: catalog fields indexed after the title (``None``: all; ``[]``: the title only).
        n_threads: threads answering a batch of queries (default: the number of CPUs).

    An empty catalog can be indexed; every search of it returns only ``-1`` rows and ``-inf``
    scores. Queries with no indexed term do the same.
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
            raise TypeError(
                f"tokenizer must be a Tokenizer or a mapping, got {type(tokenizer).__name__}"
            )
        self.k1 = float(k1)
        self.b = float(b)
        self.tokenizer = tokenizer
        self.fields = None if fields is None else list(fields)
        self.n_threads = max(1, int(n_threads or os.cpu_count() or 1))
        self.n_items = 0
        self.buffer_values = _BUFFER_VALUES
        self._vocab: Vocabulary | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._local = threading.local()

    # -- protocol --------------------------------------------------------------------------------

    def config(self) -> dict[str, Any]:
        """What changes the index or the ranking (``n_threads`` does not)."""
        return {
            "name": self.name,
            "version": VERSION,
            "k1": self.k1,
            "b": self.b,
            "tokenizer": self.tokenizer.config(),
            "fields": self.fields,
        }

    def index(self, catalog: Catalog | Sequence[str]) -> None:
        """Build the index of a catalog (or of a plain sequence of texts, one per row)."""
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
        plan = self._plan(ids, qpos, n, k)
        n_jobs = min(self.n_threads, max(1, n // 16))
        if n_jobs == 1:
            self._search_range(plan, 0, n, k, rows, scores)
            return rows, scores
        if self._pool is None or self._pool._max_workers != n_jobs:
            self._pool = ThreadPoolExecutor(n_jobs, thread_name_prefix="recgym-bm25")
        step = -(-n // (4 * n_jobs))  # a few chunks per thread evens out the load
        jobs = [
            self._pool.submit(self._search_range, plan, lo, min(n, lo + step), k, rows, scores)
            for lo in range(0, n, step)
        ]
        for job in jobs:
            job.result()
        return rows, scores

    def memory_bytes(self) -> int:
        """Approximate size of the index arrays (the vocabulary dict and search buffers excluded)."""
        if self._vocab is None:
            return 0
        arrays = (self._indptr, self._docs, self._w, self._maxw, self._dense, self._dense_row)
        return sum(a.nbytes for a in arrays)

    # -- index -----------------------------------------------------------------------------------

    def _build(self, n: int, vocab: Vocabulary, ids: np.ndarray, rows: np.ndarray) -> None:
        n_terms = len(vocab)
        n1 = max(n, 1)
        dl = np.bincount(rows, minlength=n).astype(np.float64)
        avgdl = float(dl.mean()) if n else 0.0
        # (term, row) pairs with their counts, sorted term-major then by row.
        key = np.sort(ids * n1 + rows)
        first = np.ones(len(key), dtype=bool)
        first[1:] = key[1:] != key[:-1]
        starts = np.flatnonzero(first)
        tf = np.diff(np.append(starts, len(key))).astype(np.float64)
        key = key[starts]
        term = key // n1
        docs = (key - term * n1).astype(np.int32)
        df = np.bincount(term, minlength=n_terms)
        indptr = np.zeros(n_terms + 1, dtype=np.int64)
        np.cumsum(df, out=indptr[1:])
        idf = np.log(1.0 + (n - df + 0.5) / (df + 0.5))
        norm = self.k1 * (1.0 - self.b + self.b * dl / avgdl) if avgdl > 0 else dl
        w = (idf[term] * tf / (tf + norm[docs])).astype(np.float32)
        # Weights are > 0 (search relies on it: a zero in the score buffer means "not seen").
        np.maximum(w, np.finfo(np.float32).tiny, out=w)
        # Impact order: each term's postings by weight descending, then row ascending. A
        # positive float32 orders like its bit pattern.
        order = np.argsort(
            (term.astype(np.uint64) << np.uint64(32)) | np.invert(w.view(np.uint32)), kind="stable"
        )
        docs, w = docs[order], w[order]
        maxw = np.zeros(n_terms, dtype=np.float32)
        maxw[df > 0] = w[indptr[:-1][df > 0]]
        dense_terms = np.flatnonzero((df * _DENSE_FRACTION >= n) & (n >= _DENSE_MIN_ITEMS))
        dense_row = np.full(n_terms, -1, dtype=np.int64)
        dense_row[dense_terms] = np.arange(len(dense_terms))
        dense = np.zeros((len(dense_terms), n), dtype=np.float32)
        for i, t in enumerate(dense_terms.tolist()):
            dense[i, docs[indptr[t] : indptr[t + 1]]] = w[indptr[t] : indptr[t + 1]]
        self.n_items, self.avgdl = n, avgdl
        self._vocab = vocab
        self._indptr, self._docs, self._w, self._maxw = indptr, docs, w, maxw
        self._dense, self._dense_flat, self._dense_row = dense, dense.reshape(-1), dense_row
        self._local = threading.local()

    # -- search ----------------------------------------------------------------------------------

    def _buffer(self) -> np.ndarray:
        """This thread's float32 score buffer, one value per row, all zero between queries."""
        buf = getattr(self._local, "buf", None)
        if buf is None or len(buf) != self.n_items:
            buf = self._local.buf = np.zeros(self.n_items, dtype=np.float32)
        return buf

    def _plan(self, ids: np.ndarray, qpos: np.ndarray, n: int, k: int) -> tuple[Any, ...]:
        """Each query's distinct terms by decreasing upper bound (count * max weight), ties by
        term id, as Python lists (start offsets per query; term, count, bound, postings range and
        dense row per entry): the per-query loop then makes no numpy scalar look-ups."""
        n_terms = len(self._maxw)
        key = np.sort(qpos * n_terms + ids)
        first = np.ones(len(key), dtype=bool)
        first[1:] = key[1:] != key[:-1]
        at = np.flatnonzero(first)
        cnt = np.diff(np.append(at, len(key)))
        key = key[at]
        eq = key // n_terms
        et = key - eq * n_terms
        ub = cnt * self._maxw[et].astype(np.float64)
        order = np.lexsort((et, -ub, eq))
        eq, et, cnt, ub = eq[order], et[order], cnt[order], ub[order]
        start = np.searchsorted(eq, np.arange(n + 1)).tolist()
        lo, hi = self._indptr[et], self._indptr[et + 1]
        dense = self._dense_row[et]
        # The k-th largest weight of each term (impact order): k items score at least that.
        kth = np.where(hi - lo >= k, cnt * self._w[np.minimum(lo + k - 1, hi - 1)], 0.0)
        lists = (cnt, ub, lo, hi, dense, kth)
        return (start, *(x.tolist() for x in lists))

    def _search_range(
        self,
        plan: tuple[Any, ...],
        lo: int,
        hi: int,
        k: int,
        out_rows: np.ndarray,
        out_scores: np.ndarray,
    ) -> None:
        buf = self._buffer()
        start, cnt, ub, p_lo, p_hi, dense, kth = plan
        for i in range(lo, hi):
            a, z = start[i], start[i + 1]
            if z > a:
                rows, scores = self._search_one(
                    cnt[a:z], ub[a:z], p_lo[a:z], p_hi[a:z], dense[a:z], max(kth[a:z]), k, buf
                )
                out_rows[i, : len(rows)] = rows
                out_scores[i, : len(scores)] = scores

    def _search_one(
        self,
        cnt: list[int],
        ub: list[float],
        p_lo: list[int],
        p_hi: list[int],
        dense: list[int],
        theta: float,
        k: int,
        buf: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """MaxScore top-k of one query, its terms given in plan order (``buf`` all zero, and left
        so)."""
        docs, w = self._docs, self._w
        m = len(cnt)
        # rest[j]: the most an item can score from plan terms j.. (MaxScore's remaining bound).
        rest = [0.0] * (m + 1)
        for j in range(m - 1, -1, -1):
            rest[j] = rest[j + 1] + ub[j]
        lo, hi, c = p_lo[0], p_hi[0], cnt[0]
        if m == 1:  # impact order: the top k are the first k postings
            hi = min(hi, lo + k)
            return docs[lo:hi].astype(np.int64), w[lo:hi] if c == 1 else w[lo:hi] * np.float32(c)
        cand = docs[lo:hi].astype(np.intp)
        wt = w[lo:hi] if c == 1 else w[lo:hi] * np.float32(c)
        # Accumulate postings term by term into buf; stop when theta, a lower bound of the k-th
        # best score (at first the best k-th weight of a single term), beats the bound of the
        # remaining terms. theta is refined on the candidates when it could make a difference.
        buf[cand] = wt
        parts = [cand]
        n_cand = len(cand)
        j = 1
        while j < m and not rest[j] * (1 + _EPS) < theta:
            lo, hi, c = p_lo[j], p_hi[j], cnt[j]
            d = docs[lo:hi].astype(np.intp)
            got = buf.take(d)
            parts.append(d[got == 0])  # weights are > 0: zero marks a row not seen yet
            n_cand += len(parts[-1])
            got += w[lo:hi] if c == 1 else w[lo:hi] * np.float32(c)
            buf[d] = got
            j += 1
            if (
                j < m
                and n_cand >= k
                and theta <= rest[j] * (1 + _EPS) < rest[0] - rest[j]
            ):
                parts = [np.concatenate(parts)]
                theta = float(np.partition(buf.take(parts[0]), n_cand - k)[n_cand - k])
        lookups: list[tuple[int, int, float]] = []
        bound = 0.0  # the most a candidate can still gain from the terms looked up below
        for i in range(j, m):
            lo, hi, c = p_lo[i], p_hi[i], cnt[i]
            if dense[i] >= 0:
                lookups.append((dense[i], c, ub[i]))
                bound += ub[i]
                continue
            # A term without a dense row: scan its postings against the buffer, adding its weight
            # to the rows that are already candidates only (no new candidate can reach theta).
            d = docs[lo:hi].astype(np.intp)
            got = buf.take(d)
            hit = np.flatnonzero(got)
            wt = w[lo:hi].take(hit)
            buf[d.take(hit)] = got.take(hit) + (wt if c == 1 else wt * np.float32(c))
        cand = np.concatenate(parts) if len(parts) > 1 else parts[0]
        s = buf.take(cand)
        buf[cand] = 0
        if j < m:
            # Drop the candidates that cannot reach theta even with every term still to look up,
            # look up the next term in the others, repeat; finally drop those below theta (a
            # lower bound of the k-th best final score).
            for r, c, u in lookups:
                keep = s >= np.float32(theta / (1 + _EPS) - bound)
                cand, s = cand[keep], s[keep]
                add = self._dense[r].take(cand)
                s += add if c == 1 else add * np.float32(c)
                bound -= u
            keep = s >= np.float32(theta)
            cand, s = cand[keep], s[keep]
        return _top_k(cand, s, k)


def _top_k(rows: np.ndarray, scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best ``(row, score)`` by score descending then row ascending (scores > 0)."""
    # A non-negative float32 orders like its bit pattern, so ``~bits << 32 | row`` is one uint64
    # key whose ascending order is (score descending, row ascending).
    key = np.left_shift(np.invert(scores.view(np.uint32)), 32, dtype=np.uint64)
    key |= rows.view(np.uint64)
    if len(key) > k:
        key = np.partition(key, k - 1)[:k]
    key.sort()
    half = key.view(np.uint32)  # little-endian halves: [row, ~bits] per key
    return half[0::2].astype(np.int64), np.invert(half[1::2]).view(np.float32)
