"""Hybrid retrieval: BM25 and dense results fused into one ranking.

Both retrievers return their top ``candidates`` (at least ``k``) items per query, and each item's
fused score is, with ``r`` its 1-based rank and ``s`` its score in each list it appears in:

- ``fusion="rrf"`` (reciprocal-rank fusion, Cormack et al., SIGIR 2009; default)::

      score = sum over the lists of 1 / (rrf_k + r)          (rrf_k = 60, as in the paper)

- ``fusion="weighted"`` (score fusion)::

      score = (1 - weight) * norm(s_bm25) + weight * norm(s_dense)
      norm(s) = (s - min) / (max - min)   over that query's list (1 when max == min)

An item missing from a list gets nothing from it. Fused scores are rounded to float32 before
ranking, and ties are broken by the lower catalog row, so the ranking is deterministic and
matches the scores returned. Needs the ``dense`` extra (see :mod:`recgym.retrievers.dense`).

Hybrid keeps no index of its own: ``parts`` lists the two retrievers, and the on-disk cache
(:mod:`recgym.cache`) caches each one on its own, sharing entries with ``bm25`` and ``dense`` used
alone on the same catalog.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from recgym.catalog import Catalog, choice_error
from recgym.retrievers.base import check_search, empty_results
from recgym.retrievers.bm25 import BM25
from recgym.retrievers.dense import Dense

__all__ = ["Hybrid", "fuse", "minmax_gains", "rrf_gains"]

VERSION = "1"
FUSIONS = ("rrf", "weighted")


class Hybrid:
    """Reciprocal-rank or weighted score fusion of :class:`BM25` and :class:`Dense`.

    Args:
        fusion: ``"rrf"`` (reciprocal-rank fusion) or ``"weighted"`` (min-max normalised scores).
        rrf_k: the constant of reciprocal-rank fusion (> 0).
        weight: the dense share of a weighted fusion, in ``[0, 1]``.
        candidates: items taken from each retriever per query (at least ``k`` are).
        sparse: keyword arguments of :class:`BM25`.
        dense: keyword arguments of :class:`Dense`.
    """

    name = "hybrid"

    def __init__(
        self,
        fusion: str = "rrf",
        rrf_k: float = 60,
        weight: float = 0.5,
        candidates: int = 100,
        sparse: Mapping[str, Any] | None = None,
        dense: Mapping[str, Any] | None = None,
    ) -> None:
        if fusion not in FUSIONS:
            raise choice_error("fusion", fusion, FUSIONS)
        if isinstance(rrf_k, bool) or not isinstance(rrf_k, (int, float)) or not (
            math.isfinite(rrf_k) and rrf_k > 0
        ):
            raise ValueError(f"rrf_k must be a finite number > 0, got {rrf_k!r}")
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0 <= weight <= 1:
            raise ValueError(f"weight must be a number in [0, 1], got {weight!r}")
        if not isinstance(candidates, int) or isinstance(candidates, bool) or candidates < 1:
            raise ValueError(f"candidates must be a positive integer, got {candidates!r}")
        self.fusion = fusion
        self.rrf_k = float(rrf_k)
        self.weight = float(weight)
        self.candidates = candidates
        self.sparse = BM25(**dict(sparse or {}))
        self.dense = Dense(**dict(dense or {}))
        self.parts = (self.sparse, self.dense)

    def config(self) -> dict[str, Any]:
        """The fusion settings and both parts' configs."""
        out: dict[str, Any] = {"name": self.name, "version": VERSION, "fusion": self.fusion,
                               "candidates": self.candidates}
        if self.fusion == "rrf":
            out["rrf_k"] = self.rrf_k
        else:
            out["weight"] = self.weight
        out.update(sparse=self.sparse.config(), dense=self.dense.config())
        return out

    def index(self, catalog: Catalog | Sequence[str]) -> None:
        """Index the catalog with both retrievers."""
        for part in self.parts:
            part.index(catalog)

    def search(self, queries: Sequence[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` rows and fused scores of each query; ``-1`` / ``-inf`` padding."""
        k = check_search(queries, k)
        depth = max(k, self.candidates)
        lists = [part.search(queries, depth) for part in self.parts]
        if self.fusion == "rrf":
            gains = [rrf_gains(rows, self.rrf_k) for rows, _ in lists]
        else:
            shares = (1.0 - self.weight, self.weight)
            gains = [minmax_gains(r, s, share) for (r, s), share in zip(lists, shares)]
        return fuse([rows for rows, _ in lists], gains, k)


def rrf_gains(rows: np.ndarray, rrf_k: float) -> np.ndarray:
    """``1 / (rrf_k + rank)`` of each listed item (rank from 1), 0 where ``rows < 0``."""
    rank = np.arange(1, rows.shape[1] + 1, dtype=np.float64)
    return np.where(rows >= 0, 1.0 / (rrf_k + rank), 0.0)


def minmax_gains(rows: np.ndarray, scores: np.ndarray, share: float) -> np.ndarray:
    """``share * (s - min) / (max - min)`` over each query's listed items (``share`` when
    ``max == min``), 0 where ``rows < 0``."""
    found = rows >= 0
    s = np.where(found, scores, 0.0).astype(np.float64)
    lo = np.where(found, s, np.inf).min(axis=1, keepdims=True)
    hi = np.where(found, s, -np.inf).max(axis=1, keepdims=True)
    spread = hi > lo
    norm = np.where(spread, (s - np.where(spread, lo, 0.0)) / np.where(spread, hi - lo, 1.0), 1.0)
    return np.where(found, share * norm, 0.0)


def fuse(
    rows: Sequence[np.ndarray], gains: Sequence[np.ndarray], k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Sum each item's gains over ranked lists and keep the top ``k`` per query.

    Args:
        rows: one ``(n, depth)`` array of catalog rows per list (``-1`` for no item).
        gains: what each listed item adds to its fused score, shaped like ``rows``.
        k: items to keep per query.

    Returns:
        ``(rows, scores)`` shaped ``(n, k)``: by float32 fused score, ties broken by the lower row,
        ``-1`` / ``-inf`` padding. Gains are added in list order.
    """
    n = rows[0].shape[0]
    out_rows, out_scores = empty_results(n, k)
    every = np.concatenate(rows, axis=1)
    gain = np.concatenate(gains, axis=1)
    found = every >= 0
    if not found.any():
        return out_rows, out_scores
    width = int(every.max()) + 1
    query = np.broadcast_to(np.arange(n, dtype=np.int64)[:, None], every.shape)[found]
    keys, inverse = np.unique(query * width + every[found], return_inverse=True)
    total = np.bincount(inverse.ravel(), weights=gain[found], minlength=len(keys))
    q, r = keys // width, keys % width
    s = total.astype(np.float32)
    order = np.lexsort((r, -s, q))
    q, r, s = q[order], r[order], s[order]
    rank = np.arange(len(q)) - np.searchsorted(q, np.arange(n))[q]
    top = rank < k
    out_rows[q[top], rank[top]] = r[top]
    out_scores[q[top], rank[top]] = s[top]
    return out_rows, out_scores
