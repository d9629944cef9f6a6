"""BM25 over a sparse term -> postings index, in numpy and scipy (no numba, nothing to compile).

Scoring is Lucene's BM25 (``BM25Similarity`` since Lucene 8, what Anserini and Pyserini run)::

    idf(t)      = ln(1 + (N - df(t) + 0.5) / (df(t) + 0.5))
    w(t, d)     = idf(t) * tf(t, d) / (tf(t, d) + k1 * (1 - b + b * dl(d) / avgdl))
    score(q, d) = sum over the tokens t of q of w(t, d)

with ``N`` the number of items, ``df(t)`` the number of items containing term ``t``, ``tf`` its
count in the item and ``dl`` the item's length in terms (after stopword removal). A term repeated in
the query counts once per occurrence (as in rank_bm25). ``k1=0.9, b=0.4`` are Anserini's defaults
(tuned on short documents; Lucene itself defaults to 1.2 / 0.75).

**Index.** Every weight ``w(t, d)`` is computed once by :meth:`BM25.index` and stored term-major
(CSR: the postings of a term are contiguous; float32 weights, int32 rows). Each term also keeps its
largest weight and its 10th/100th/1000th/10000th largest. The frequent terms (in at least 1/16 of
the items) also get a dense float32 row of weights, and their postings are kept in impact order
(weight descending, row ascending); the others' postings are sorted by row. For each pair of
the 24 most frequent of those, the index keeps the 4,096 rows with the largest sum of the two
weights, in (sum descending, row ascending) order: MaxScore ending with two frequent terms takes
its rows outside the candidates from there. A catalog is
tokenised in pyarrow's compiled string kernels, Python analysing only the distinct words (see
:class:`~recgym.text.Vocabulary`); the postings are counted by scipy's COO to CSR conversion (a
counting sort) and put in impact order by one sort of packed keys (an argsort where those keys
would not fit 64 bits).

**Search** (exact, with the ties broken by the lower row) is in
:mod:`recgym.retrievers.bm25_search`. This module holds what shapes the index: the index cache
key hashes its source (see :mod:`recgym.cache`), not that of the search.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from itertools import combinations, pairwise
from typing import Any

import numpy as np
from scipy import sparse

from recgym.catalog import Catalog
from recgym.retrievers.base import check_search, empty_results
from recgym.retrievers.bm25_search import BM25Search, _top_k
from recgym.text import Tokenizer, Vocabulary

__all__ = ["BM25"]

VERSION = "1"
# Terms in at least 1/_DENSE_FRACTION of the items (with at least _DENSE_MIN_ITEMS items) get a
# dense float32 row of weights, so that MaxScore looks them up in O(1) per candidate.
_DENSE_FRACTION = 16
_DENSE_MIN_ITEMS = 1024
# Pairs of frequent terms: for each pair of dense rows (among the _PAIR_TERMS terms in most items),
# the _PAIR_HEAD rows with the largest sum of the two weights, ranked by (sum descending, row
# ascending). MaxScore ending with two such terms takes the rows that are not candidates from
# there instead of adding the two rows for every item (bm25_search._pair_finish).
_PAIR_HEAD = 4096
_PAIR_TERMS = 24
_PAIR_SAMPLE = 4096  # values sampled to guess a pair head's threshold
# The k' for which each term keeps its k'-th largest weight.
_KTH_LEVELS = np.array([10, 100, 1000, 10000])
# Bits of the packed sort keys of _impact_order (a uint64); tests set 0 to force the argsort.
_PACKED_KEY_BITS = 64


class BM25(BM25Search):
    """Lucene BM25 with precomputed weights and exact, pruned top-k search.

    Args:
        k1: term-frequency saturation (Anserini's default 0.9).
        b: length normalisation (Anserini's default 0.4).
        tokenizer: a :class:`~recgym.text.Tokenizer` or a mapping of its settings (default:
            lowercase, Unicode folding, Lucene's English stopwords, Snowball English stemmer).
        fields: catalog fields indexed after the title (``None``: all; ``[]``: the title only).
        n_threads: threads answering a batch of queries (default 1; see the module docstring).

    An empty catalog can be indexed; every search of it returns only ``-1`` rows and ``-inf``
    scores. Queries with no indexed term do the same.
    """

    name = "bm25"
    _kth_levels = _KTH_LEVELS  # for the search

    def __init__(
        self,
        k1: float = 0.9,
        b: float = 0.4,
        tokenizer: Tokenizer | Mapping[str, Any] | None = None,
        fields: Sequence[str] | None = None,
        n_threads: int = 1,
    ) -> None:
        self.k1, self.b, self.tokenizer, self.fields = bm25_settings(k1, b, tokenizer, fields)
        self.n_threads = max(1, int(n_threads))
        self.n_items = 0
        self._vocab: Vocabulary | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._local = threading.local()
        self._csr: tuple[np.ndarray, ...] | None = None  # built on first use

    # -- protocol --------------------------------------------------------------------------------

    def config(self) -> dict[str, Any]:
        """What changes the index or the ranking (``n_threads`` does not)."""
        return bm25_config(self)

    def index(self, catalog: Catalog | Sequence[str]) -> None:
        """Build the index of a catalog (or of a plain sequence of texts, one per row)."""
        texts = _texts(catalog, self.fields)
        vocab = Vocabulary(self.tokenizer)
        ids, rows = vocab.encode_batch(texts, grow=True)
        self._build(len(texts), vocab, ids, rows)

    def search(self, queries: Sequence[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` rows and scores of each query; ``-1`` / ``-inf`` where fewer items match."""
        if self._vocab is None:
            raise RuntimeError("BM25.search called before index()")
        k = check_search(queries, k)
        n = len(queries)
        rows, scores = empty_results(n, k)
        if n == 0 or self.n_items == 0:
            return rows, scores
        ids, qpos = self._vocab.encode_batch(queries)
        self._search_plan(self._plan(ids, qpos, n, k), k, rows, scores)
        return rows, scores

    def memory_bytes(self) -> int:
        """Bytes of the index arrays (not the vocabulary dict, nor the per-thread score buffer
        of 4 bytes per item)."""
        if self._vocab is None:
            return 0
        arrays = (self._indptr, self._docs, self._w, self._maxw, self._kth, self._dense)
        pairs = (self._pair_id, self._pair_ptr, self._pair_rows, self._pair_scores)
        return sum(a.nbytes for a in (*arrays, *pairs)) + self._dense_row.nbytes

    def index_state(self) -> dict[str, np.ndarray]:
        """The index as named arrays (the :class:`~recgym.retrievers.base.IndexState` protocol):
        the vocabulary as one UTF-8 blob with offsets, and the arrays ``search`` reads."""
        if self._vocab is None:
            raise RuntimeError("BM25.index_state called before index()")
        encoded = [t.encode("utf-8", "surrogatepass") for t in self._vocab.terms]
        offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        np.cumsum([len(e) for e in encoded], out=offsets[1:])
        return {
            "meta": np.array([self.n_items, self.avgdl, len(encoded)], dtype=np.float64),
            "terms": np.frombuffer(b"".join(encoded), dtype=np.uint8),
            "term_offsets": offsets,
            "indptr": self._indptr,
            "docs": self._docs,
            "weights": self._w,
            "max_weight": self._maxw,
            "kth_weight": self._kth,
            "dense": self._dense,
            "dense_row": self._dense_row,
            "pair_head": np.array([self._pair_head], dtype=np.int64),
            "pair_id": self._pair_id,
            "pair_ptr": self._pair_ptr,
            "pair_rows": self._pair_rows,
            "pair_scores": self._pair_scores,
        }

    def load_index_state(self, arrays: Mapping[str, np.ndarray]) -> None:
        """Restore an index saved by :meth:`index_state` (arrays are kept, not copied)."""
        try:
            n_items, avgdl, n_terms = (float(x) for x in arrays["meta"])
            n, v = int(n_items), int(n_terms)
            offsets, indptr = arrays["term_offsets"], arrays["indptr"]
            docs, w, kth = arrays["docs"], arrays["weights"], arrays["kth_weight"]
            dense, dense_row = arrays["dense"], arrays["dense_row"]
            (pair_head,) = (int(x) for x in arrays["pair_head"])
            pair_id, pair_ptr = arrays["pair_id"], arrays["pair_ptr"]
            pair_rows, pair_scores = arrays["pair_rows"], arrays["pair_scores"]
            ok = (
                offsets.shape == (v + 1,)
                and indptr.shape == (v + 1,)
                and docs.dtype == np.int32
                and w.dtype == np.float32
                and docs.shape == w.shape == (int(indptr[-1]) if v else 0,)
                and arrays["max_weight"].shape == (v,)
                and kth.shape == (len(_KTH_LEVELS), v)
                and dense.dtype == np.float32
                and dense.ndim == 2
                and dense.shape[1] == n
                and dense_row.shape == (v,)
                and pair_id.dtype == np.int64
                and pair_id.shape == (len(dense), len(dense))
                and pair_ptr.dtype == np.int64
                and pair_ptr.ndim == 1
                and pair_rows.dtype == np.int32
                and pair_scores.dtype == np.float32
                and pair_rows.shape == pair_scores.shape == (int(pair_ptr[-1]),)
            )
            ok = ok and _pair_heads_fit(pair_head, pair_id, pair_ptr, pair_rows, pair_scores, dense)
        except (KeyError, TypeError, ValueError, IndexError) as e:
            raise ValueError(f"not a BM25 index state: {e}") from None
        if not ok:
            raise ValueError("BM25 index state arrays have the wrong shapes, dtypes or values")
        raw = arrays["terms"].tobytes()
        bounds = offsets.tolist()
        terms = [raw[a:z].decode("utf-8", "surrogatepass") for a, z in pairwise(bounds)]
        vocab = Vocabulary(self.tokenizer)
        vocab.terms = {t: i for i, t in enumerate(terms)}
        self.n_items, self.avgdl = n, avgdl
        self._vocab = vocab
        self._indptr, self._docs, self._w = indptr, docs, w
        self._maxw, self._kth = arrays["max_weight"], kth
        self._dense, self._dense_row = dense, dense_row
        self._pair_head = pair_head
        self._pair_id, self._pair_ptr = pair_id, pair_ptr
        self._pair_rows, self._pair_scores = pair_rows, pair_scores
        self._local = threading.local()
        self._csr: tuple[np.ndarray, ...] | None = None  # built on first use

    # -- index -----------------------------------------------------------------------------------

    def _build(self, n: int, vocab: Vocabulary, ids: np.ndarray, rows: np.ndarray) -> None:
        n_terms = len(vocab)
        n1 = max(n, 1)
        dl = np.bincount(rows, minlength=n).astype(np.float64)
        avgdl = float(dl.mean()) if n else 0.0
        # (term, row) pairs with their counts, term-major then by row: scipy's COO -> CSR
        # conversion, a counting sort by term that keeps the rows in their input order (here
        # ascending, so no sort follows), then sums the duplicates.
        ones = np.ones(len(ids), dtype=np.int32)
        counts = sparse.coo_matrix((ones, (ids, rows)), shape=(n_terms, n1)).tocsr()
        indptr = counts.indptr.astype(np.int64)
        docs = counts.indices.astype(np.int32, copy=False)
        tf = counts.data.astype(np.float64)
        del counts, ones
        df = np.diff(indptr)
        term = np.repeat(np.arange(n_terms), df)
        idf = np.log(1.0 + (n - df + 0.5) / (df + 0.5))
        norm = self.k1 * (1.0 - self.b + self.b * dl / avgdl) if avgdl > 0 else dl
        # idf * tf / (tf + norm), in float64, with two temporaries instead of five
        den = norm[docs]
        den += tf
        num = np.repeat(idf, df)
        num *= tf
        num /= den
        w = num.astype(np.float32)
        del den, num
        # Weights are > 0 (search relies on it: a zero in the score buffer means "not seen").
        np.maximum(w, np.finfo(np.float32).tiny, out=w)
        # Per term: the largest weight (MaxScore's upper bound) and the k-th largest for a few k
        # (k items score at least that: a lower bound of the k-th best score of a query).
        impact_docs, impact = _impact_order(term, docs, w, n_terms, n)
        kth = np.zeros((len(_KTH_LEVELS), n_terms), dtype=np.float32)
        for i, level in enumerate(_KTH_LEVELS):
            has = df >= level
            kth[i, has] = impact[indptr[:-1][has] + level - 1]
        maxw = np.zeros(n_terms, dtype=np.float32)
        maxw[df > 0] = impact[indptr[:-1][df > 0]]
        # Frequent terms: a dense row of weights, and postings in impact order.
        dense_terms = np.flatnonzero((df * _DENSE_FRACTION >= n) & (n >= _DENSE_MIN_ITEMS))
        dense_row = np.full(n_terms, -1, dtype=np.int64)
        dense_row[dense_terms] = np.arange(len(dense_terms))
        dense = np.zeros((len(dense_terms), n), dtype=np.float32)
        for i, t in enumerate(dense_terms.tolist()):
            dense[i, docs[indptr[t] : indptr[t + 1]]] = w[indptr[t] : indptr[t + 1]]
        by_impact = dense_row[term] >= 0
        docs = np.where(by_impact, impact_docs, docs)
        w = np.where(by_impact, impact, w)
        del impact_docs, impact, by_impact
        self.n_items, self.avgdl = n, avgdl
        self._vocab = vocab
        self._indptr, self._docs, self._w, self._maxw, self._kth = indptr, docs, w, maxw, kth
        self._dense, self._dense_row = dense, dense_row
        self._pair_head = _PAIR_HEAD
        self._pair_id, self._pair_ptr, self._pair_rows, self._pair_scores = _pair_heads(
            dense, _PAIR_HEAD
        )
        self._local = threading.local()
        self._csr: tuple[np.ndarray, ...] | None = None  # built on first use


def _pair_heads(
    dense: np.ndarray, head: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """For each pair of dense rows among the ``_PAIR_TERMS`` with most nonzero entries, the
    ``head`` rows of largest sum of the two (all its nonzero rows if fewer), ranked by (sum
    descending, row ascending). Returns ``(pair_id, ptr, rows, sums)``: ``pair_id[a, b]`` (the
    same as ``pair_id[b, a]``; -1 for no pair) indexes ``ptr``, and the head of pair ``p`` is
    ``rows[ptr[p]:ptr[p + 1]]`` / ``sums[...]``. A sum is the float32 sum of two weights, the
    same in either order."""
    n_dense, n = dense.shape
    pair_id = np.full((n_dense, n_dense), -1, dtype=np.int64)
    densest = np.argsort(-np.count_nonzero(dense, axis=1), kind="stable")[:_PAIR_TERMS]
    pairs = list(combinations(np.sort(densest).tolist(), 2))
    ptr = np.zeros(len(pairs) + 1, dtype=np.int64)
    heads_rows, heads_sums = [], []
    total = np.empty(n, dtype=np.float32)
    for p, (a, b) in enumerate(pairs):
        pair_id[a, b] = pair_id[b, a] = p
        np.add(dense[a], dense[b], out=total)
        top = _rows_reaching(total, head)
        rows, sums = _top_k(top, total.take(top), head)
        heads_rows.append(rows.astype(np.int32))
        heads_sums.append(sums)
        ptr[p + 1] = ptr[p] + len(rows)
    if not pairs:
        return pair_id, ptr, np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.float32)
    return pair_id, ptr, np.concatenate(heads_rows), np.concatenate(heads_sums)


def _pair_heads_fit(
    head: int,
    pair_id: np.ndarray,
    ptr: np.ndarray,
    rows: np.ndarray,
    sums: np.ndarray,
    dense: np.ndarray,
) -> bool:
    """Whether loaded pair heads are what ``_pair_heads`` builds for ``dense``: every pair listed
    once (``pair_id`` symmetric), its rows in range with their sums and in ranking order, and
    each head ``head`` rows long or holding every nonzero row of its pair (the search relies on
    that to serve k up to ``head / 2``). A few passes over the heads, one over the items per
    short head."""
    n_pairs, n = len(ptr) - 1, dense.shape[1]
    lengths = np.diff(ptr)
    a, b = np.nonzero(np.triu(pair_id >= 0, 1))
    if not (
        head > 0
        and n_pairs >= 0
        and ptr[0] == 0
        and np.all((lengths >= 0) & (lengths <= head))
        and np.array_equal(pair_id, pair_id.T)
        and np.all(np.diag(pair_id) == -1)
        and np.all(pair_id >= -1)
        and np.array_equal(np.sort(pair_id[a, b]), np.arange(n_pairs))
        and np.all((rows >= 0) & (rows < n))
    ):
        return False
    first, second = np.empty(n_pairs, dtype=np.int64), np.empty(n_pairs, dtype=np.int64)
    first[pair_id[a, b]], second[pair_id[a, b]] = a, b
    ra, rb = np.repeat(first, lengths), np.repeat(second, lengths)
    if not np.array_equal(sums, dense[ra, rows] + dense[rb, rows]) or np.any(sums <= 0):
        return False
    # ranked by (sum descending, row ascending) within each head
    same = np.repeat(np.arange(n_pairs), lengths)
    later = same[1:] == same[:-1]
    ranked = (sums[1:] < sums[:-1]) | ((sums[1:] == sums[:-1]) & (rows[1:] > rows[:-1]))
    return bool(np.all(ranked | ~later)) and all(
        np.count_nonzero(dense[first[p]] + dense[second[p]]) == lengths[p]
        for p in np.flatnonzero(lengths < head).tolist()
    )


def _rows_reaching(values: np.ndarray, k: int) -> np.ndarray:
    """The rows of ``values`` (>= 0) reaching some threshold that at least ``k`` of them reach, or
    every nonzero row: a superset of the rows of the k largest values. The threshold is guessed
    from a strided sample (an exact ``np.partition`` of all values costs several times more on
    value sets with many zeros and ties)."""
    stride = max(1, len(values) // _PAIR_SAMPLE)
    sample = np.sort(values[::stride])
    for margin in (1.25, 4.0):
        rank = int(k * margin / stride) + 1
        if rank > len(sample) or sample[-rank] <= 0:
            break
        rows = np.flatnonzero(values >= sample[-rank])
        if len(rows) >= k:
            return rows
    return np.flatnonzero(values)


def _impact_order(
    term: np.ndarray, docs: np.ndarray, w: np.ndarray, n_terms: int, n_items: int
) -> tuple[np.ndarray, np.ndarray]:
    """The postings in impact order (term, then weight descending, then row ascending), as
    ``(rows, weights)``; the postings come term-major with rows ascending, weights > 0.

    A positive float32 orders like its bit pattern. When the term, the distance of the weight's
    bit pattern below the largest weight's (``top - bits``) and the row fit one uint64
    together, one ``np.sort`` of such keys gives both arrays (numpy's vectorised sort: several
    times faster than an argsort); otherwise a stable argsort of ``(term, ~bits)`` does, the
    rows of equal weights staying in order.
    """
    bits = w.view(np.uint32)
    if len(bits) == 0:
        return docs.copy(), w.copy()
    top = bits.max()
    w_bits = int(top - bits.min()).bit_length()
    row_bits = max(1, (n_items - 1).bit_length())
    term_bits = max(1, (n_terms - 1).bit_length())
    if term_bits + w_bits + row_bits > _PACKED_KEY_BITS:
        key = (term.astype(np.uint64) << np.uint64(32)) | np.invert(bits)
        order = np.argsort(key, kind="stable")
        return docs[order], w[order]
    # In place, with one scratch array: each temporary of this size costs as much as its pass.
    key = term.astype(np.uint64)
    key <<= np.uint64(w_bits + row_bits)
    part = np.subtract(top, bits, dtype=np.uint64)
    part <<= np.uint64(row_bits)
    key |= part
    np.copyto(part, docs, casting="unsafe")  # rows >= 0
    key |= part
    key.sort()
    rows = np.bitwise_and(key, np.uint64((1 << row_bits) - 1), out=part).astype(np.int32)
    np.right_shift(key, np.uint64(row_bits), out=part)
    part &= np.uint64((1 << w_bits) - 1)
    below_top = part.astype(np.uint32)
    return rows, np.subtract(top, below_top, out=below_top).view(np.float32)


def bm25_settings(
    k1: float,
    b: float,
    tokenizer: Tokenizer | Mapping[str, Any] | None,
    fields: Sequence[str] | None,
) -> tuple[float, float, Tokenizer, list[str] | None]:
    """The checked settings of a Lucene-BM25 retriever (``BM25`` and the ``RankBM25``
    reference): ``(k1, b, tokenizer, fields)``."""
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
    return float(k1), float(b), tokenizer, None if fields is None else list(fields)


def bm25_config(retriever: Any) -> dict[str, Any]:
    """The cache key of a Lucene-BM25 retriever (``BM25`` and the ``RankBM25`` reference)."""
    return {
        "name": retriever.name,
        "version": VERSION,
        "k1": retriever.k1,
        "b": retriever.b,
        "tokenizer": retriever.tokenizer.config(),
        "fields": retriever.fields,
    }


def _texts(catalog: Catalog | Sequence[str], fields: list[str] | None) -> list[str]:
    """One text per row: the title then the given catalog fields (all of them for ``None``)."""
    if not isinstance(catalog, Catalog):
        return list(catalog)
    if fields is None:
        return catalog.texts()
    return catalog.texts(["title", *(f for f in fields if f != "title")])
