"""The Retriever protocol every backend implements."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from recgym.catalog import Catalog

__all__ = ["Retriever", "empty_results"]


@runtime_checkable
class Retriever(Protocol):
    """Index a catalog once, then answer batches of text queries.

    ``search`` returns ``(item_rows, scores)``, both shaped ``(len(queries), k)``: catalog rows
    in rank order (best first; ties broken by the lower row) and their scores. Slots with no item
    (a query that matches fewer than ``k`` items, or an empty query) hold row ``-1`` and score
    ``-inf``.
    """

    name: str

    def index(self, catalog: Catalog) -> None: ...

    def search(self, queries: Sequence[str], k: int) -> tuple[np.ndarray, np.ndarray]: ...

    def config(self) -> dict[str, Any]:
        """Everything that changes the index or the ranking (the index cache key)."""
        ...


def empty_results(n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``(rows, scores)`` of ``n`` queries that retrieved nothing."""
    return np.full((n, k), -1, dtype=np.int64), np.full((n, k), -np.inf, dtype=np.float32)
