"""The Retriever protocol every backend implements, and the IndexState protocol of cached ones."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from recgym.catalog import Catalog

__all__ = ["IndexState", "Retriever", "check_search", "empty_results"]


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


@runtime_checkable
class IndexState(Protocol):
    """A retriever whose index can be saved as named arrays and loaded back (the on-disk cache).

    :func:`recgym.cache.build_index` uses it: on a cache miss it calls ``index(catalog)`` and
    saves ``index_state()``; on a hit it calls ``load_index_state`` with the saved arrays,
    memory-mapped read-only, instead of ``index``. So:

    - ``index_state()`` returns everything ``search`` needs as numpy arrays (numeric or bytes
      dtypes, no objects), keyed by names made of letters, digits, ``_``, ``-`` and ``.``. The
      cache key is the catalog's ``content_hash()``, ``config()`` and a hash of the source file
      of the retriever's class, so ``config()`` must name everything that changes these arrays
      (model identity included); a code change needs no version bump.
    - ``load_index_state(arrays)`` must leave the retriever answering ``search`` exactly as after
      ``index``, keep the arrays without copying them where it can (vector-env workers then share
      one copy of the index), and raise ``ValueError`` when the arrays do not fit (a wrong shape,
      dtype or embedding size): the cache then warns and rebuilds.

    A composite retriever that keeps no index of its own lists its sub-retrievers in a ``parts``
    attribute instead; the cache then handles each part on its own (a part that does not
    implement this protocol is indexed in memory), so the parts share cache entries with the same
    retrievers used alone.
    """

    def index_state(self) -> dict[str, np.ndarray]: ...

    def load_index_state(self, arrays: dict[str, np.ndarray]) -> None: ...


def empty_results(n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``(rows, scores)`` of ``n`` queries that retrieved nothing."""
    return np.full((n, k), -1, dtype=np.int64), np.full((n, k), -np.inf, dtype=np.float32)


def check_search(queries: Sequence[str], k: int) -> int:
    """Validate ``search(queries, k)`` arguments; return ``k`` as an ``int``."""
    if isinstance(queries, str):
        raise TypeError("search expects a sequence of query strings, not a single str")
    k = int(k)
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    return k
