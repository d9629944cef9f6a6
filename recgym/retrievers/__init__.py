"""Retrievers: BM25 (fast, sparse), rank_bm25 (reference), dense and hybrid (``dense`` extra)."""

from __future__ import annotations

from typing import Any

from recgym.catalog import choice_error
from recgym.retrievers.base import IndexState, Retriever, empty_results

__all__ = ["RETRIEVERS", "IndexState", "Retriever", "empty_results", "make_retriever"]


def _bm25(**kwargs: Any) -> Retriever:
    from recgym.retrievers.bm25 import BM25

    return BM25(**kwargs)


def _rank_bm25(**kwargs: Any) -> Retriever:
    from recgym.retrievers.rank_bm25 import RankBM25

    return RankBM25(**kwargs)


def _dense(**kwargs: Any) -> Retriever:
    from recgym.retrievers.dense import Dense

    return Dense(**kwargs)


def _hybrid(**kwargs: Any) -> Retriever:
    from recgym.retrievers.hybrid import Hybrid

    return Hybrid(**kwargs)


RETRIEVERS = {"bm25": _bm25, "rank_bm25": _rank_bm25, "dense": _dense, "hybrid": _hybrid}


def make_retriever(name: str, **kwargs: Any) -> Retriever:
    """Build a retriever by name (``bm25``, ``rank_bm25``, ``dense``, ``hybrid``) and arguments.

    ``dense`` and ``hybrid`` raise ``ImportError`` naming the extra to install when it is missing.
    """
    if name not in RETRIEVERS:
        raise choice_error("retriever", name, RETRIEVERS)
    return RETRIEVERS[name](**kwargs)
