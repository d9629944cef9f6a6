"""Memory of workers sharing one memory-mapped dense index, from /proc/<pid>/smaps_rollup.

    python bench/cache_memory.py [--n-items 200000] [--workers 4]

Writes a flat dense index of random unit vectors (384 dimensions, the size of all-MiniLM-L6-v2's
embeddings; no text is embedded) to a fresh cache folder. Then 1 worker, and then ``--workers``
workers at once (as vector-env workers start), each load it with ``recgym.cache.build_index``
(memory-mapped), run a search that reads every vector, and wait until all are loaded; then each
reports how much its RSS and PSS grew since before the load. PSS (proportional set size) divides a
shared page among the processes that map it, so the PSS growth summed over the workers is what the
index costs the machine. For contrast, the same with a private copy per worker (the index read
into memory, as without the cache).
"""

from __future__ import annotations

import argparse
import gc
import multiprocessing as mp
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

DIM = 384


def memory_kib() -> dict[str, int]:
    """Rss and Pss of this process in KiB."""
    out = {}
    with open(f"/proc/{os.getpid()}/smaps_rollup") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("Rss", "Pss"):
                out[key] = int(rest.split()[0])
    return out


def random_dense(n_items: int):
    """A Dense retriever over random unit vectors, which never needs its encoder."""
    from recgym.retrievers.dense import Dense

    class RandomDense(Dense):
        name = "dense-random"

        @property
        def dimension(self) -> int:
            return DIM

        def index(self, catalog: Any) -> None:
            import faiss

            vectors = np.random.default_rng(0).standard_normal((len(catalog), DIM), np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            index = faiss.IndexFlatIP(DIM)
            index.add(vectors)
            self._index, self._rows, self._keep = index, np.arange(len(catalog)), ()

    return RandomDense(progress=False, threads=1)


def catalog(n_items: int):
    from recgym.catalog import Catalog

    return Catalog(ids=[str(i) for i in range(n_items)], titles=[""] * n_items)


def worker(directory: str, n_items: int, copy: bool, barrier: Any, results: Any) -> None:
    from recgym.cache import build_index

    retriever = random_dense(n_items)
    cat = catalog(n_items)
    gc.collect()
    before = memory_kib()
    status = build_index(retriever, cat, directory)
    if copy:  # a private copy of the index, as an in-memory build would have
        retriever.load_index_state({k: np.array(v) for k, v in retriever.index_state().items()})
        gc.collect()
    queries = np.random.default_rng(1).standard_normal((4, DIM), np.float32)
    retriever._search_block(queries, 10)  # reads every vector
    barrier.wait()  # all workers hold the index now: PSS splits the shared pages among them
    after = memory_kib()
    results.put((status, {k: after[k] - before[k] for k in after}))
    barrier.wait()


def run(directory: str, n_items: int, n_workers: int, copy: bool) -> list[dict[str, int]]:
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(n_workers), ctx.Queue()
    procs = [ctx.Process(target=worker, args=(directory, n_items, copy, barrier, results))
             for _ in range(n_workers)]
    for p in procs:
        p.start()
    out = [results.get(timeout=900) for _ in procs]
    for p in procs:
        p.join()
    assert all(status == "loaded" for status, _ in out), out
    return [growth for _, growth in out]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-items", type=int, default=200_000)
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()
    from recgym.cache import build_index

    with tempfile.TemporaryDirectory() as directory:
        retriever = random_dense(args.n_items)
        assert build_index(retriever, catalog(args.n_items), directory) == "built"
        entry = next(p for p in Path(directory).iterdir() if p.is_dir())
        size_mib = sum(f.stat().st_size for f in entry.iterdir()) / 2**20
        del retriever
        gc.collect()
        print(f"dense flat index of {args.n_items:,} random {DIM}-d vectors: {size_mib:.0f} MiB "
              f"on disk\n")
        print("| index | workers | RSS growth per worker, MiB | PSS growth summed, MiB | "
              "extra workers add, % of the index |")
        print("|---|---|---|---|---|")
        for copy in (False, True):
            one = run(directory, args.n_items, 1, copy)
            many = run(directory, args.n_items, args.workers, copy)
            pss_one = sum(g["Pss"] for g in one) / 1024
            for n, growth in ((1, one), (args.workers, many)):
                rss = np.mean([g["Rss"] for g in growth]) / 1024
                pss = sum(g["Pss"] for g in growth) / 1024
                extra = "" if n == 1 else f"{100 * (pss - pss_one) / size_mib:.1f}%"
                name = "private copy" if copy else "memory-mapped (recgym.cache)"
                print(f"| {name} | {n} | {rss:.0f} | {pss:.0f} | {extra} |", flush=True)


if __name__ == "__main__":
    main()
