"""Retrievers: BM25 (fast, sparse) and rank_bm25 (reference); dense and hybrid come as extras."""

from __future__ import annotations

from typing import Any

from recgym.catalog import choice_error
from recgym.retrievers.base import Retriever, empty_results

__all__ = ["RETRIEVERS", "Retriever", "empty_results", "make_retriever"]


def _bm25(**kwargs: Any) -> Retriever:
    from recgym.retrievers.bm25 import BM25

    return BM25(**kwargs)


def _rank_bm25(**kwargs: Any) -> Retriever:
    from recgym.retrievers.rank_bm25 import RankBM25

    return RankBM25(**kwargs)


RETRIEVERS = {"bm25": _bm25, "rank_bm25": _rank_bm25}


def make_retriever(name: str, **kwargs: Any) -> Retriever:
    """Build a retriever by name (``bm25``, ``rank_bm25``, ...) with its keyword arguments."""
    if name not in RETRIEVERS:
        raise choice_error("retriever", name, RETRIEVERS)
    return RETRIEVERS[name](**kwargs)
