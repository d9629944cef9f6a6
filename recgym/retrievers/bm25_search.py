"""The search of :class:`~recgym.retrievers.bm25.BM25`: exact top-k over its index, in numpy and
scipy. ``BM25`` builds and holds the index arrays and inherits the search from :class:`BM25Search`;
the index cache key hashes only ``bm25.py``, so a change here keeps the cached indexes.

**Search** is exact: the ranking of an exhaustive evaluation, ties broken by the lower row. A
query's term weights are added in float32 in one fixed order (its terms without a dense row, then
those with one, each group by decreasing upper bound), whichever path scores it, so all paths
give the same bits and a query's result never depends on the batch it came in.

*Short queries, many at once.* Queries whose terms have at most ``_EXHAUSTIVE_POSTINGS`` postings in
all (8,192 for k up to 100, fewer for larger k; most requests on a catalog of tens of thousands of
items), and no repeated term, are scored exhaustively when a batch holds at least a few of them: one
sparse product (queries x terms) @ (terms x items) in scipy's compiled CSR kernel, entries below the
query's single-term bound of the k-th best score dropped, and one sort of ``(query, ~score_bits,
row)`` uint64 keys for the top k of all of them. A few dozen numpy calls per batch instead of per
query.

*Other queries: MaxScore* (Turtle & Flood, 1995), one by one. Terms are taken in the order above
(rare terms first, in effect) and their postings accumulated into a dense score buffer until the sum
of the upper bounds of the remaining (frequent) terms falls below ``theta``, a lower bound of the
k-th best score. Queries with rare terms (and no repeated term) have those accumulated a few dozen
queries at a time, by the same sparse product, and MaxScore goes on from their first frequent term
(queries of rare terms only then hold their full scores and end at once). ``theta`` starts at the
best k-th largest weight of a single query term (precomputed) and is raised with scores of real
items: the candidates' partial scores, their full scores when all remaining terms have dense rows (a
``take`` per term), or the full scores of the items heading a frequent term's impact-ordered
postings. No item outside the candidates can then reach the top k; candidates that cannot reach
``theta`` even with every remaining term are dropped, the others get the remaining terms' weights
(dense rows, or a scan of the postings against the buffer). A frequent term that must be accumulated
adds its weight to the candidates through its dense row and brings in new candidates only from the
head of its impact-ordered postings, as far as a new item could still reach ``theta``; the last
term, only its first k (and those tied with the k-th, for a repeated term whose float32 products can
tie). When the frequent terms left (two or more) have many postings to accumulate (more than n_items
times (terms left + 2) / 256), their dense rows are added to the whole score buffer instead: a few
sequential passes over n_items floats cost less than scattered updates of that many postings; the
rows reaching ``theta``, or a higher threshold guessed from a sample when many do and checked by a
count, are the candidates. When those frequent terms are two, each counted once, both among the
index's pairs (the 24 most frequent terms), k at most half of a pair head and the candidates at most
n_items / 8, no pass is needed: the rows that are no candidates score the pair's sum alone, and the
index holds the rows of the largest sums of each such pair in ranking order (see ``_pair_finish``).
The top k is selected by ``np.partition`` over the candidates only, on uint64 keys ``(~score_bits <<
32) | row`` that order by (score descending, row ascending), so ties need no second pass. Apart from
that dense pass, nothing is O(number of items) per query.

Candidates are selected with ``take(flatnonzero(mask))`` rather than ``x[mask]``: numpy's boolean
indexing costs about twice as much on masks that are neither mostly true nor mostly false.

``n_threads > 1`` answers parts of a batch in threads. numpy releases the GIL only in part of this
work (not in ``partition`` or fancy-index assignment), so the gain is small; the default is 1.
"""

from __future__ import annotations

import bisect
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import sparse

try:  # scipy's compiled sparse kernels (see _sparse_product)
    from scipy.sparse._sparsetools import csr_matmat as _csr_matmat
except ImportError:  # pragma: no cover - a scipy that moved it: the public (slower) path
    _csr_matmat = None


# Probe (score the candidates fully, to stop early) when the next term has more postings than
# _PROBE_RATIO times the candidates.
_PROBE_RATIO = 0.5
# Estimate theta from this many heaviest postings (at least 4k) of a term in impact order.
_SAMPLE = 1024
# Queries with at most this many postings in all are scored exhaustively, many at once (one
# sparse product and one sort), rather than one by one with MaxScore, for k up to _EXHAUSTIVE_K.
# For larger k the bound is divided by k / _EXHAUSTIVE_K: more of the product's entries then
# reach the k-th best bound and are sorted, while MaxScore's cost grows less (at 100k items and
# k = 1000, bounds of 500 to 2,000 postings were 4% faster than 8,192).
_EXHAUSTIVE_POSTINGS = 8192
_EXHAUSTIVE_K = 100
_EXHAUSTIVE_BATCH = 256  # queries per sparse product
_EXHAUSTIVE_MIN_BATCH = 4  # fewer such queries in a batch take MaxScore
# MaxScore takes the other queries this many at a time; the rare terms (no dense row) of those
# without a repeated term are accumulated for all of them at once (one sparse product), when at
# least _RARE_MIN_BATCH of them share its fixed cost.
_RARE_BATCH = 64
_RARE_MIN_BATCH = 4
# Candidates are dropped before a look-up only when fewer than this share of them remain.
_KEEP_RATIO = 0.75
# MaxScore adds the dense rows of the terms left to the whole score buffer instead when their
# postings to accumulate outnumber n_items * (terms left + 2) / _DENSE_PASS.
_DENSE_PASS = 256
# When more than _GUESS_ABOVE * k rows reach theta in a dense pass, it guesses a higher threshold
# from a strided sample of about _GUESS_SAMPLE rows: the score of rank k * _GUESS_MARGIN in it
# (scaled to the sample) + 4.
_GUESS_ABOVE = 3
_GUESS_SAMPLE = 4096
_GUESS_MARGIN = 1.5
# MaxScore ending with two frequent terms takes the other rows from their pair's head (built by
# bm25._pair_heads) when k is at most half of it and it has at most n_items / _PAIR_CANDIDATES
# candidates: each costs a few random look-ups and a place in the final partition, where the dense
# pass costs a sequential add per item and term (on an ESCI-sized catalog of 1.8M items, with
# candidates by the hundred thousand, pair heads without that bound made top-100 1.1x slower).
# Tests set _PAIRS False to force the dense pass.
_PAIRS = True
_PAIR_CANDIDATES = 8
_EPS = 1e-5  # relative slack on MaxScore bounds, far above float32 accumulation error
_LITTLE = sys.byteorder == "little"
_TINY = np.finfo(np.float32).tiny  # the least weight


@dataclass
class _Plan:
    """Each query's terms in summation order (see ``BM25._plan``), one entry per (query,
    distinct term): the entries of query ``i`` are ``start[i]:start[i + 1]``."""

    start: np.ndarray
    terms: np.ndarray
    cnt: np.ndarray  # how many times the query has the term
    ub: np.ndarray  # upper bound of the term's contribution: cnt * its largest weight
    lo: np.ndarray  # the term's postings are lo:hi
    hi: np.ndarray
    dense: np.ndarray  # the term's dense row, or -1
    kth: np.ndarray  # a lower bound of the k-th best score of a query with the term
    theta: np.ndarray  # per query: the largest kth of its terms (0 for none)
    postings: np.ndarray  # per query: postings of all its terms
    repeats: np.ndarray  # per query: some term counted more than once
    rare: np.ndarray  # per query: how many of its terms have no dense row (they come first)
    _lists: tuple[list[Any], ...] | None = None

    def lists(self) -> tuple[list[Any], ...]:
        """``(start, cnt, ub, lo, hi, dense, theta)`` as Python lists: MaxScore's per-query
        loop then makes no numpy scalar look-ups."""
        if self._lists is None:
            arrays = (self.start, self.cnt, self.ub, self.lo, self.hi, self.dense, self.theta)
            self._lists = tuple(x.tolist() for x in arrays)
        return self._lists


class BM25Search:
    """The search methods of :class:`~recgym.retrievers.bm25.BM25`, which provides the index
    arrays (``_indptr``, ``_docs``, ``_w``, ``_maxw``, ``_kth``, ``_dense``, ``_dense_row``),
    ``n_items``, ``n_threads``, ``_kth_levels`` and the per-instance ``_local``, ``_pool`` and
    ``_csr``."""

    def _search_plan(self, plan: _Plan, k: int, rows: np.ndarray, scores: np.ndarray) -> None:
        """Answer the queries of ``plan`` into ``rows`` / ``scores`` (which hold empty results),
        each by one of the paths of the module docstring, in threads for ``n_threads > 1``."""
        # Queries with few postings are scored exhaustively, many at once, when there are
        # enough of them to share the fixed cost (both paths give the same bits). Queries
        # without postings keep their empty results.
        has = plan.postings > 0
        most = _EXHAUSTIVE_POSTINGS * min(1.0, _EXHAUSTIVE_K / k)
        short = has & (plan.postings <= most) & ~plan.repeats
        if short.sum() >= _EXHAUSTIVE_MIN_BATCH:
            self._search_exhaustive(plan, np.flatnonzero(short), k, rows, scores)
            has &= ~short
        todo = np.flatnonzero(has).tolist()
        n_jobs = min(self.n_threads, max(1, len(todo) // 16))
        if n_jobs == 1:
            if todo:
                self._search_range(plan, todo, k, rows, scores)
            return
        if self._pool is None or self._pool._max_workers != n_jobs:
            self._pool = ThreadPoolExecutor(n_jobs, thread_name_prefix="recgym-bm25")
        step = -(-len(todo) // (4 * n_jobs))  # a few chunks per thread evens out the load
        jobs = [
            self._pool.submit(self._search_range, plan, todo[a : a + step], k, rows, scores)
            for a in range(0, len(todo), step)
        ]
        for job in jobs:
            job.result()

    def _buffer(self) -> np.ndarray:
        """This thread's float32 score buffer, one value per row, all zero between queries."""
        buf = getattr(self._local, "buf", None)
        if buf is None or len(buf) != self.n_items:
            buf = self._local.buf = np.zeros(self.n_items, dtype=np.float32)
        return buf

    def _plan(self, ids: np.ndarray, qpos: np.ndarray, n: int, k: int) -> _Plan:
        """Each query's distinct terms in summation order: those without a dense row first, then
        those with one, each group by decreasing upper bound (count * max weight), ties by term
        id. MaxScore takes the terms in this order, and both search paths add a candidate's
        term weights in it, so they give bit-identical float32 scores."""
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
        dense = self._dense_row[et]
        order = np.lexsort((et, -ub, dense >= 0, eq))
        eq, et, cnt, ub, dense = eq[order], et[order], cnt[order], ub[order], dense[order]
        start = np.searchsorted(eq, np.arange(n + 1))
        lo, hi = self._indptr[et], self._indptr[et + 1]
        # A lower bound of the k-th best score: k items score at least the k'-th largest weight
        # of a term, for any k' >= k.
        level = int(np.searchsorted(self._kth_levels, k))
        if level < len(self._kth_levels):
            kth = cnt * self._kth[level, et].astype(np.float64)
        else:
            kth = np.zeros(len(et))
        # Terms in impact order (those with a dense row): their exact k-th largest weight.
        exact = (dense >= 0) & (hi - lo >= k)
        kth[exact] = cnt[exact] * self._w[lo[exact] + k - 1].astype(np.float64)
        has = start[1:] > start[:-1]
        theta = np.zeros(n)
        theta[has] = np.maximum.reduceat(kth, start[:-1][has])
        postings = np.zeros(n, dtype=np.int64)
        postings[has] = np.add.reduceat(hi - lo, start[:-1][has])
        repeats = np.zeros(n, dtype=bool)  # a query with a term counted more than once
        repeats[eq[cnt > 1]] = True
        rare = np.bincount(eq[dense < 0], minlength=n)
        return _Plan(start, et, cnt, ub, lo, hi, dense, kth, theta, postings, repeats, rare)

    def _search_range(
        self,
        plan: _Plan,
        todo: list[int],
        k: int,
        out_rows: np.ndarray,
        out_scores: np.ndarray,
    ) -> None:
        """MaxScore for the queries ``todo`` (each with at least one term), ``_RARE_BATCH`` at a
        time: the rare terms of those without a repeated term are accumulated first, for all of
        them at once (``_accumulate_rare``)."""
        buf = self._buffer()
        start, cnt, ub, p_lo, p_hi, dense, theta = plan.lists()
        for c in range(0, len(todo), _RARE_BATCH):
            chunk = todo[c : c + _RARE_BATCH]
            done = self._accumulate_rare(plan, chunk)
            for i in chunk:
                a, z = start[i], start[i + 1]
                rows, scores = self._search_one(
                    cnt[a:z],
                    ub[a:z],
                    p_lo[a:z],
                    p_hi[a:z],
                    dense[a:z],
                    theta[i],
                    k,
                    buf,
                    done.get(i),
                )
                out_rows[i, : len(rows)] = rows
                out_scores[i, : len(scores)] = scores

    def _accumulate_rare(
        self, plan: _Plan, chunk: list[int]
    ) -> dict[int, tuple[int, np.ndarray, np.ndarray]]:
        """For the queries of ``chunk`` with terms without a dense row (and no repeated term):
        the rows of those terms, which come first in plan order, and their partial scores (full
        scores for a query without other terms), by one sparse product for all of them. Query ->
        ``(number of such terms, rows, partial scores)``; empty when fewer than
        ``_RARE_MIN_BATCH`` queries share the product's fixed cost."""
        q = np.array(chunk, dtype=np.intp)
        rare = plan.rare[q]
        batched = (rare > 0) & ~plan.repeats[q]
        if batched.sum() < _RARE_MIN_BATCH:
            return {}
        q, rare = q[batched], rare[batched]
        p_indptr, p_rows, p_scores = self._product(plan, q, rare)
        p_rows = p_rows.astype(np.intp)
        bounds = p_indptr.tolist()
        return {
            i: (n, p_rows[a:z], p_scores[a:z])
            for i, n, a, z in zip(q.tolist(), rare.tolist(), bounds[:-1], bounds[1:])
        }

    def _product(
        self, plan: _Plan, q: np.ndarray, count: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The rows and float32 scores of the first ``count[i]`` plan terms of each query
        ``q[i]`` (their weights added in plan order), as CSR arrays ``(indptr, rows, scores)``:
        one sparse product (queries x terms) @ (terms x items). Every term counts once (queries
        with a repeated term stay out), so the product multiplies weights by 1.0 only: exact,
        fused multiply-add or not."""
        indptr_w, docs, w = self._postings_csr()
        at = np.repeat(plan.start[q] - np.cumsum(count) + count, count)
        at += np.arange(len(at))
        indptr = np.zeros(len(q) + 1, dtype=docs.dtype)
        np.cumsum(count, out=indptr[1:])
        ones = np.ones(len(at), dtype=np.float32)
        terms = plan.terms[at].astype(docs.dtype)
        max_nnz = int((plan.hi[at] - plan.lo[at]).sum())  # each posting adds one entry at most
        return _sparse_product(indptr, terms, ones, indptr_w, docs, w, self.n_items, max_nnz)

    def _search_exhaustive(
        self, plan: _Plan, queries: np.ndarray, k: int, out_rows: np.ndarray, out_scores: np.ndarray
    ) -> None:
        """Score every posting of ``queries`` at once: one sparse product (queries x terms) @
        (terms x items), which adds each item's term weights in plan order, then the top k of
        all queries with one sort of ``(query, ~score_bits, row)`` keys. Entries below the
        query's single-term bound of the k-th best score are dropped before the sort."""
        row_bits = max(1, (self.n_items - 1).bit_length())
        # query, score and row must fit one uint64 key
        chunk = min(_EXHAUSTIVE_BATCH, 1 << (32 - row_bits))
        for a in range(0, len(queries), chunk):
            q = queries[a : a + chunk]
            nq = len(q)
            p_indptr, p_rows, p_scores = self._product(plan, q, plan.start[q + 1] - plan.start[q])
            theta = plan.theta[q].astype(np.float32)
            keep = np.flatnonzero(p_scores >= np.repeat(theta, np.diff(p_indptr)))
            # keep is sorted, so where the queries' bounds fall in it counts each one's kept entries
            kept = np.diff(np.searchsorted(keep, p_indptr))
            which = np.repeat(np.arange(nq, dtype=np.uint64), kept)
            key = np.invert(p_scores.take(keep).view(np.uint32)).astype(np.uint64)
            key <<= np.uint64(row_bits)
            key |= p_rows.take(keep).astype(np.uint64)
            key |= which << np.uint64(32 + row_bits)
            key.sort()
            first = np.zeros(nq, dtype=np.int64)
            np.cumsum(kept[:-1], out=first[1:])
            rank = np.arange(len(key)) - np.repeat(first, kept)
            top = np.flatnonzero(rank < k)
            key, rank = key.take(top), rank.take(top)
            out = q[(key >> np.uint64(32 + row_bits)).astype(np.intp)]
            out_rows[out, rank] = (key & np.uint64((1 << row_bits) - 1)).astype(np.int64)
            bits = (key >> np.uint64(row_bits)).astype(np.uint32)  # the low 32 bits: ~score
            out_scores[out, rank] = np.invert(bits).view(np.float32)

    def _postings_csr(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The postings as CSR arrays ``(indptr, docs, weights)`` with one index dtype (int32
        unless there are 2**31 postings or more), for ``_sparse_product``."""
        if self._csr is None:
            index = np.int32 if len(self._docs) < 2**31 else np.int64
            self._csr = (
                self._indptr.astype(index),
                self._docs.astype(index, copy=False),
                self._w,
            )
        return self._csr

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
        done: tuple[int, np.ndarray, np.ndarray] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """MaxScore top-k of one query, its terms given in plan order (``buf`` all zero, and left
        so). ``done``: its first terms were accumulated already (see ``_accumulate_rare``), as
        ``(how many, rows, partial scores)``."""
        docs, w = self._docs, self._w
        m = len(cnt)
        # rest[j]: the most an item can score from plan terms j.. (MaxScore's remaining bound).
        rest = [0.0] * (m + 1)
        for j in range(m - 1, -1, -1):
            rest[j] = rest[j + 1] + ub[j]
        if done is None:
            lo, hi, c = p_lo[0], p_hi[0], cnt[0]
            if dense[0] >= 0:
                # Impact order: the top k of a lone term are at its head (_head), and rows whose
                # weight plus every other term's bound is below theta cannot make the top k.
                if m == 1:
                    hi = lo + self._head(lo, hi, c, k)
                    if c & (c - 1) == 0:  # c * weight in the order of the weights, exactly
                        return docs[lo:hi].astype(np.int64), w[lo:hi] * np.float32(c)
                    return _top_k(docs[lo:hi].astype(np.int64), w[lo:hi] * np.float32(c), k)
                hi = lo + self._prefix(lo, hi, c, theta, rest[1])
            cand = docs[lo:hi].astype(np.intp)
            wt = w[lo:hi] if c == 1 else w[lo:hi] * np.float32(c)
            if m == 1:
                if theta > 0:  # at least k postings weigh theta or more
                    keep = np.flatnonzero(wt >= np.float32(theta))
                    cand, wt = cand.take(keep), wt.take(keep)
                return _top_k(cand, wt, k)
            j = 1
        else:
            j, cand, wt = done
        # Accumulate postings term by term into buf; stop when theta, a lower bound of the k-th
        # best score (at first the best k-th weight of a single term), beats the bound of the
        # remaining terms. theta is refined on the candidates when it could make a difference:
        # from their partial scores, or, when every remaining term has a dense row and the next
        # one has long postings, from their full scores (a "probe": if that theta beats the
        # remaining bound, the candidates hold the top k and their scores are final).
        first = wt  # the first terms' weights go into buf only once a later term needs them
        in_buf = False
        parts = [cand]
        n_cand = len(cand)
        all_dense = [True] * (m + 1)  # all_dense[i]: every plan term i.. has a dense row
        for i in range(m - 1, -1, -1):
            all_dense[i] = all_dense[i + 1] and dense[i] >= 0
        sample = max(4 * k, _SAMPLE)
        while j < m and not rest[j] * (1 + _EPS) < theta:
            if j + 1 == m and dense[j] >= 0:
                return self._last_term(
                    cnt[j], p_lo[j], p_hi[j], dense[j], first, parts, in_buf, theta, k, buf
                )
            # Raise theta from the candidates' partial scores (of more than one term) when that
            # could stop the loop here and this term's postings outnumber the candidates (else
            # accumulating it costs about as much as the partition).
            if (
                j > 1
                and n_cand >= k
                and p_hi[j] - p_lo[j] > n_cand
                and rest[j] * (1 + _EPS) < rest[0] - rest[j]
            ):
                if len(parts) > 1:
                    parts = [np.concatenate(parts)]
                partial = buf.take(parts[0]) if in_buf else first.copy()
                partial.partition(n_cand - k)
                theta = max(theta, float(partial[n_cand - k]))
                if rest[j] * (1 + _EPS) < theta:
                    break
            if all_dense[j] and _DENSE_PASS * sum(
                p_hi[i] - p_lo[i] for i in range(j, m) if not rest[i] * (1 + _EPS) < theta
            ) > self.n_items * (m - j + 2):
                if (
                    _PAIRS
                    and m - j == 2
                    and cnt[j] == cnt[j + 1] == 1
                    and 2 * k <= self._pair_head
                    and n_cand * _PAIR_CANDIDATES <= self.n_items
                ):
                    pair = int(self._pair_id[dense[j], dense[j + 1]])
                    if pair >= 0:
                        return self._pair_finish(
                            pair, dense[j], dense[j + 1], first, parts, in_buf, k, buf
                        )
                return self._dense_pass(cnt[j:], dense[j:], first, parts, in_buf, theta, k, buf)
            lo, hi, c = p_lo[j], p_hi[j], cnt[j]
            if dense[j] >= 0 and hi - lo > 2 * sample:
                # A sample: the rows of this term's heaviest postings (impact order), scored with
                # their partial scores, this term and every later term with a dense row. Scores
                # of real rows, some terms possibly missing: their k-th best is a lower bound of
                # the k-th best score, often far above theta.
                if not in_buf:
                    buf[parts[0]] = first
                    in_buf = True
                d = docs[lo : lo + sample].astype(np.intp)
                est = w[lo : lo + sample] * np.float32(c)
                est += buf.take(d)
                for i in range(j + 1, m):
                    if dense[i] >= 0:
                        add = self._dense[dense[i]].take(d)
                        est += add if cnt[i] == 1 else add * np.float32(cnt[i])
                est.partition(sample - k)  # est is ours: partitioned in place
                theta = max(theta, float(est[sample - k]))
                if rest[j] * (1 + _EPS) < theta:
                    break
            if all_dense[j] and n_cand >= k and hi - lo > n_cand * _PROBE_RATIO:
                cand = np.concatenate(parts) if len(parts) > 1 else parts[0]
                parts = [cand]
                s = buf.take(cand) if in_buf else first.copy()
                for i in range(j, m):
                    add = self._dense[dense[i]].take(cand)
                    s += add if cnt[i] == 1 else add * np.float32(cnt[i])
                probe = float(np.partition(s, n_cand - k)[n_cand - k])
                if rest[j] * (1 + _EPS) < probe:
                    if in_buf:
                        buf[cand] = 0
                    keep = np.flatnonzero(s >= np.float32(probe))
                    return _top_k(cand.take(keep), s.take(keep), k)
                theta = max(theta, probe)
            if not in_buf:
                buf[parts[0]] = first
                in_buf = True
            # A term in impact order (not the last: see _last_term): only its first p postings
            # can bring new candidates, the candidates get its weight from its dense row.
            p = -1
            if dense[j] >= 0:
                p = self._prefix(lo, hi, c, theta, rest[j + 1])
            if p >= 0 and n_cand + p < hi - lo:
                cand = np.concatenate(parts) if len(parts) > 1 else parts[0]
                parts = [cand]
                add = self._dense[dense[j]].take(cand)
                got = buf.take(cand)
                got += add if c == 1 else add * np.float32(c)
                buf[cand] = got
                d = docs[lo : lo + p].astype(np.intp)
                new = np.flatnonzero(buf.take(d) == 0)
                parts.append(d.take(new))
                n_cand += len(parts[-1])
                wt = w[lo : lo + p].take(new)
                buf[parts[-1]] = wt if c == 1 else wt * np.float32(c)
            else:
                d = docs[lo:hi].astype(np.intp)
                got = buf.take(d)
                # Weights are > 0: zero marks a row not seen yet.
                parts.append(d.take(np.flatnonzero(got == 0)))
                n_cand += len(parts[-1])
                got += w[lo:hi] if c == 1 else w[lo:hi] * np.float32(c)
                buf[d] = got
            j += 1
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
            if not in_buf:
                buf[parts[0]] = first
                in_buf = True
            d = docs[lo:hi].astype(np.intp)
            got = buf.take(d)
            hit = np.flatnonzero(got)
            wt = w[lo:hi].take(hit)
            buf[d.take(hit)] = got.take(hit) + (wt if c == 1 else wt * np.float32(c))
        cand = np.concatenate(parts) if len(parts) > 1 else parts[0]
        if in_buf:
            s = buf.take(cand)
            buf[cand] = 0
        else:
            s = first.copy()
        if j < m:
            # Drop the candidates that cannot reach theta even with every term still to look up
            # (when there are enough of them to pay for the copies), look up the next term in the
            # others, repeat; finally drop those below theta (a lower bound of the k-th best
            # final score).
            for r, c, u in lookups:
                keep = np.flatnonzero(s >= np.float32(theta / (1 + _EPS) - bound))
                if len(keep) < _KEEP_RATIO * len(s):
                    cand, s = cand.take(keep), s.take(keep)
                add = self._dense[r].take(cand)
                s += add if c == 1 else add * np.float32(c)
                bound -= u
            keep = np.flatnonzero(s >= np.float32(theta))
            cand, s = cand.take(keep), s.take(keep)
        return _top_k(cand, s, k)

    def _last_term(
        self,
        c: int,
        lo: int,
        hi: int,
        r: int,
        first: np.ndarray,
        parts: list[np.ndarray],
        in_buf: bool,
        theta: float,
        k: int,
        buf: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The end of MaxScore when one term is left and it has a dense row (``r``; its postings
        ``lo:hi`` in impact order: weight descending, then row ascending). The candidates get
        its weight from the dense row. Any other row that can make the top k scores this term's
        weight alone (a row with weight from the terms done that is no candidate cannot reach
        ``theta``), so the others come from the head of its postings (:meth:`_head`): the rows
        there, candidates or not, score at least their weight and beat every later row, so no
        later row makes the top k. Leaves the buffer all zero."""
        cand = np.concatenate(parts) if len(parts) > 1 else parts[0]
        s = buf.take(cand) if in_buf else first.copy()
        add = self._dense[r].take(cand)
        s += add if c == 1 else add * np.float32(c)
        head = min(self._prefix(lo, hi, c, theta, 0.0), self._head(lo, hi, c, k))
        d = self._docs[lo : lo + head].astype(np.intp)
        if not in_buf:
            buf[cand] = 1.0  # marks the candidates (in the buffer they hold weights > 0)
        new = np.flatnonzero(buf.take(d) == 0)
        buf[cand] = 0
        wt = self._w[lo : lo + head].take(new)
        rows = np.concatenate((cand, d.take(new)))
        return _top_k(rows, np.concatenate((s, wt if c == 1 else wt * np.float32(c))), k)

    def _dense_pass(
        self,
        cnt: list[int],
        dense: list[int],
        first: np.ndarray,
        parts: list[np.ndarray],
        in_buf: bool,
        theta: float,
        k: int,
        buf: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The end of MaxScore when the terms left (``cnt``, ``dense``: all with a dense row)
        have many postings to accumulate: their dense rows are added to the whole buffer, in
        plan order, and every row reaching ``theta`` is then a candidate with its exact score.
        (A row that is no candidate yet and scores ``theta`` or more has no weight from the
        terms done, else MaxScore would have made it a candidate: the buffer holds 0 for it.)
        Leaves the buffer all zero."""
        if not in_buf:
            buf[parts[0]] = first
        for r, c in zip(dense, cnt):
            buf += self._dense[r] if c == 1 else self._dense[r] * np.float32(c)
        # Rows without a single term hold 0; weights are at least float32's tiny.
        mask = buf >= max(np.float32(theta), _TINY)
        # Listing the rows of a mask costs about 15 ns per row in it (a branch mispredicted), so
        # when many rows reach theta, a higher threshold is guessed from a strided sample of the
        # buffer: when at least k rows reach it (counting them is cheap), it is a lower bound of
        # the k-th best score too.
        if np.count_nonzero(mask) > _GUESS_ABOVE * k:
            stride = max(1, len(buf) // _GUESS_SAMPLE)
            rank = int(k * _GUESS_MARGIN / stride) + 4  # the guess's rank in the sample
            if rank < len(buf) // stride:
                sample = buf[::stride].copy()
                sample.partition(len(sample) - rank)
                guess = sample[len(sample) - rank]
                if guess > theta:
                    higher = buf >= guess
                    if np.count_nonzero(higher) >= k:
                        mask = higher
        cand = np.flatnonzero(mask)
        s = buf.take(cand)
        buf.fill(0)
        return _top_k(cand, s, k)

    def _pair_finish(
        self,
        pair: int,
        ra: int,
        rb: int,
        first: np.ndarray,
        parts: list[np.ndarray],
        in_buf: bool,
        k: int,
        buf: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The end of MaxScore when the two terms left, each counted once, have the dense rows
        ``ra`` and ``rb`` of the pair ``pair`` (see ``bm25._pair_heads``), whose head holds more
        than k rows or all of its rows (the caller asks for ``2 * k``, so that candidates rarely
        fill it). The candidates get both weights from the dense rows. Any other row scores the
        pair's sum alone, as in :meth:`_dense_pass` (a row with weight from the terms done that
        is no candidate cannot reach ``theta``, a lower bound of the k-th best score), and is
        ranked by (sum, row) as the top k is, so the best k of them are the first k rows of the
        head that are no candidates: the first ``k + len(candidates)`` rows of the head hold them.
        When the head has fewer than k such rows, it is complete, or more than k candidates fill
        it: each of those scores at least its sum (float32 sums of weights >= 0 do not decrease)
        and comes before every row after the head, which then cannot make the top k. Leaves the
        buffer all zero."""
        lo, hi = self._pair_ptr[pair : pair + 2].tolist()
        cand = np.concatenate(parts) if len(parts) > 1 else parts[0]
        end = min(hi, lo + k + len(cand))
        head = self._pair_rows[lo:end]
        if not in_buf:
            buf[cand] = 1.0  # marks the candidates (in the buffer they hold weights > 0)
        new = np.flatnonzero(buf.take(head) == 0)[:k]
        s = buf.take(cand) if in_buf else first.copy()
        buf[cand] = 0
        s += self._dense[ra].take(cand)
        s += self._dense[rb].take(cand)
        rows = np.concatenate((cand, head.take(new)))
        return _top_k(rows, np.concatenate((s, self._pair_scores[lo:end].take(new))), k)

    def _head(self, lo: int, hi: int, c: int, k: int) -> int:
        """How many leading postings (impact order) of a term counted ``c`` times hold its top
        k rows, by ``c * weight`` in float32 then row: the first k, and when ``c`` is not a power
        of two (its products may round two weights to one value, whose lower row then wins
        whatever its weight) every later one whose product equals the k-th's."""
        head = min(k, hi - lo)
        if c & (c - 1) == 0 or head == hi - lo:
            return head
        w, f = self._w, np.float32(c)
        cut = f * w[lo + head - 1]
        return bisect.bisect_left(range(lo, hi), True, key=lambda i: f * w[i] < cut)

    def _prefix(self, lo: int, hi: int, c: int, theta: float, rest: float) -> int:
        """How many leading postings (impact order) of a term can bring in a row that reaches
        ``theta``: those whose weight times ``c``, plus ``rest``, the bound of the terms after it,
        reaches ``theta``. A row only in later postings scores less than ``theta``."""
        floor = theta / (1 + _EPS) - rest
        if floor <= 0:
            return hi - lo
        w = self._w
        return bisect.bisect_left(range(lo, hi), True, key=lambda i: c * float(w[i]) < floor)


def _top_k(rows: np.ndarray, scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best ``(row, score)`` by score descending then row ascending (scores > 0)."""
    # A non-negative float32 orders like its bit pattern, so ``~bits << 32 | row`` is one uint64
    # key whose ascending order is (score descending, row ascending).
    if _LITTLE:  # write the halves of each key, [row, ~bits], in place
        key = np.empty(len(rows), dtype=np.uint64)
        half = key.view(np.uint32)
        half[0::2] = rows
        np.invert(scores.view(np.uint32), out=half[1::2])
    else:
        key = np.invert(scores.view(np.uint32)).astype(np.uint64)
        key <<= np.uint64(32)
        key |= rows.astype(np.uint64)
    if len(key) > k:
        key.partition(k - 1)  # key is ours: partitioned in place
        key = key[:k]
    key.sort()
    if _LITTLE:
        half = key.view(np.uint32)  # the halves of each key: [row, ~bits]
        return half[0::2].astype(np.int64), np.invert(half[1::2]).view(np.float32)
    low = (key & np.uint64(0xFFFFFFFF)).astype(np.int64)
    return low, np.invert((key >> np.uint64(32)).astype(np.uint32)).view(np.float32)


def _sparse_product(
    indptr: np.ndarray,
    terms: np.ndarray,
    counts: np.ndarray,
    indptr_w: np.ndarray,
    docs: np.ndarray,
    w: np.ndarray,
    n_items: int,
    max_nnz: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The CSR product (queries x terms) @ (terms x items): ``(indptr, rows, scores)``, each
    query's rows in no particular order, each score the float32 sum of its terms' weights in the
    order of ``terms``. All index arrays share one dtype; ``max_nnz`` is at least the number of
    entries of the product (the postings of the terms, say).

    scipy's ``A @ B`` costs about 150 µs of Python-level checks per call, ten times the product
    of a few queries; its compiled kernels are called directly when scipy has them where they have
    been since scipy 1.1 (``scipy.sparse._sparsetools``), else through ``@``. The output is sized
    by ``max_nnz`` rather than by scipy's symbolic pass (``csr_matmat_maxnnz``), which costs a
    sixth of the product."""
    n = len(indptr) - 1
    if _csr_matmat is None:
        shape = (n, len(indptr_w) - 1)
        product = sparse.csr_matrix((counts, terms, indptr), shape=shape) @ sparse.csr_matrix(
            (w, docs, indptr_w), shape=(len(indptr_w) - 1, n_items)
        )
        product = sparse.csr_matrix(product)  # a query set without postings gives an empty one
        return product.indptr, product.indices, product.data
    out_indptr = np.empty(n + 1, dtype=indptr.dtype)
    out_rows = np.empty(max_nnz, dtype=indptr.dtype)
    out_scores = np.empty(max_nnz, dtype=np.float32)
    _csr_matmat(
        n, n_items, indptr, terms, counts, indptr_w, docs, w, out_indptr, out_rows, out_scores
    )
    return out_indptr, out_rows[: out_indptr[-1]], out_scores[: out_indptr[-1]]
