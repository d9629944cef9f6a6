"""A tiny retriever with the IndexState protocol, for the cache tests (importable by subprocesses).

Its index is one float32 vector per item (text length, vowel count, word count) and the search is
an exact dot product; each ``index`` call appends a line to ``$FAKE_INDEX_LOG`` when it is set, so
a test can count builds across processes.
"""

from __future__ import annotations

import mmap
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from recgym.catalog import Catalog
from recgym.retrievers.base import empty_results


def is_mapped(array: np.ndarray) -> bool:
    """Whether ``array`` lies in a memory-mapped file (an ``np.memmap`` or a view of one)."""
    base = array
    while base is not None and not isinstance(base, mmap.mmap):
        base = getattr(base, "base", None)
    return base is not None


def features(texts: Sequence[str]) -> np.ndarray:
    return np.array([[len(t), sum(c in "aeiou" for c in t), len(t.split())] for t in texts],
                    dtype=np.float32).reshape(-1, 3)


class FakeRetriever:
    name = "fake"

    def __init__(self, scale: float = 1.0, build_seconds: float = 0.0) -> None:
        self.scale = scale
        self.build_seconds = build_seconds
        self.n_index_calls = 0
        self.vectors: np.ndarray | None = None

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "scale": self.scale}

    def index(self, catalog: Catalog) -> None:
        self.n_index_calls += 1
        log = os.environ.get("FAKE_INDEX_LOG")
        if log:
            with open(log, "a") as f:
                f.write(f"{os.getpid()}\n")
        time.sleep(self.build_seconds)
        self.vectors = features(catalog.texts()) * np.float32(self.scale)

    def search(self, queries: Sequence[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        rows, scores = empty_results(len(queries), k)
        s = features(queries) @ self.vectors.T
        order = np.lexsort((np.broadcast_to(np.arange(s.shape[1]), s.shape), -s), axis=-1)[:, :k]
        rows[:, : order.shape[1]] = order
        scores[:, : order.shape[1]] = np.take_along_axis(s, order, -1)
        return rows, scores

    def index_state(self) -> dict[str, np.ndarray]:
        return {"vectors": self.vectors}

    def load_index_state(self, arrays: dict[str, np.ndarray]) -> None:
        vectors = arrays["vectors"]
        if vectors.ndim != 2 or vectors.shape[1] != 3:
            raise ValueError(f"fake index vectors must be (n, 3), got {vectors.shape}")
        self.vectors = vectors


def catalog(n: int = 50, salt: str = "") -> Catalog:
    titles = [f"item {i} {salt} " + "word " * (i % 7) + "aeiou"[: i % 5] for i in range(n)]
    return Catalog(ids=[f"i{i}" for i in range(n)], titles=titles)


if __name__ == "__main__":  # python cache_fakes.py CACHE_DIR: build or load, print the status
    from recgym.cache import build_index

    fake = FakeRetriever(build_seconds=1.0)
    print(build_index(fake, catalog(), sys.argv[1]))
