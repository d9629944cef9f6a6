"""Dense retrieval figures, all measured in one run on this machine (docs/retrieval.md).

    python bench/dense.py [--sections cache encode faiss score] [--cache-dir DIR]

- ``cache``: cold build (embed + index + write) of the RecQuery-Dense-v0 catalog (20k items) against
  a warm load of the same index from the on-disk cache (checksums verified, memory-mapped).
- ``encode``: embedding throughput, batched (``Dense.encode`` on a list) and one text at a time,
  for catalog items and shopper requests, in float64 (the default) and float32.
- ``faiss``: exact ``IndexFlatIP`` against ``IndexHNSWFlat`` (Dense's defaults) on random unit
  vectors at 100k and 1M items: build time, search throughput, recall@100 of HNSW against flat;
  and the same recall on the real embeddings of the 20k-item catalog.
- ``score``: ``env.score`` on 1,024 requests for RecQuery-v0 (bm25), RecQuery-Dense-v0 and
  RecQuery-Hybrid-v0 (20k items, indexes loaded from the cache).

The cache folder (default: ``$RECGYM_CACHE_DIR`` or ``~/.cache/recgym``) is used by every section;
``cache`` removes its entry first so that the build is cold, and leaves it for the others.
Memory of vector-env workers sharing one index: ``bench/cache_memory.py``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import time

import gymnasium as gym
import numpy as np

import recgym  # noqa: F401
from recgym import cache
from recgym.retrievers.dense import Dense, _load_encoder
from recgym.worlds import load_world

DENSE_ENV = "RecQuery-Dense-v0"


def timed(fn, *args):
    """``(seconds, fn(*args))``."""
    start = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - start, out


def seconds(fn, *args) -> float:
    return timed(fn, *args)[0]


def world_kwargs(env_id: str, args) -> dict:
    """The registered world, or a smaller one with ``--n-items`` (a quick try of this script)."""
    kwargs = dict(gym.spec(env_id).kwargs["world_kwargs"])
    if args.n_items:
        kwargs.update(n_items=args.n_items, n_tasks=max(10, args.n_items // 2))
    return kwargs


def catalog_of(env_id: str, args):
    return load_world(gym.spec(env_id).kwargs["world"], **world_kwargs(env_id, args))


def section_cache(args) -> None:
    catalog = catalog_of(DENSE_ENV, args).catalog
    dense = Dense()
    load_model = seconds(lambda: dense.encoder)
    entry = cache.cache_dir() / f"dense-{cache.cache_key(dense, catalog)}"
    shutil.rmtree(entry, ignore_errors=True)
    status = []
    cold = seconds(lambda: status.append(cache.build_index(dense, catalog)))
    warm_dense = Dense()
    warm = seconds(lambda: status.append(cache.build_index(warm_dense, catalog)))
    same = np.array_equal(dense.search(["insulated travel mug"], 100)[0],
                          warm_dense.search(["insulated travel mug"], 100)[0])
    size = sum(f.stat().st_size for f in entry.iterdir())
    print(f"## Index cache ({len(catalog):,} items, entry {size / 2**20:.1f} MiB)\n")
    print("| step | seconds |\n|---|---|")
    print(f"| load the encoder (once per process) | {load_model:.2f} |")
    print(f"| cold build: embed, index, write ({status[0]}) | {cold:.1f} |")
    print(f"| warm load: verify checksums, memory-map ({status[1]}) | {warm:.3f} |")
    print(f"\nwarm load is {cold / warm:,.0f}x faster than a cold build; same ranking: {same}\n")


def section_encode(args) -> None:
    world = catalog_of(DENSE_ENV, args)
    items = world.catalog.texts()[: args.encode_items]
    requests = [t.request for t in world.tasks.tasks[: args.encode_items]]
    print(f"## Encoding throughput (texts/s; {len(items)} items, {len(requests)} requests, "
          f"{args.encode_single} one at a time)\n")
    print("| precision | texts | batched | one at a time | batched / one |\n|---|---|---|---|---|")
    for precision in ("float64", "float32"):
        dense = Dense(precision=precision, progress=False)
        dense.encode(items[:8])  # load the model, warm up
        for name, texts in (("items", items), ("requests", requests)):
            batched = len(texts) / seconds(dense.encode, texts)
            few = [[t] for t in texts[: args.encode_single]]
            single = len(few) / seconds(lambda bs, d=dense: [d.encode(b) for b in bs], few)
            print(f"| {precision} | {name} | {batched:.1f} | {single:.1f} | "
                  f"{batched / single:.1f}x |")
    print()


def _faiss_row(faiss, name, vectors, queries, flat_rows, k, threads):
    dense = Dense(index_type="hnsw", progress=False)
    index = faiss.IndexHNSWFlat(vectors.shape[1], dense.hnsw_m, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = dense.ef_construction
    build = seconds(index.add, vectors)
    out = []
    for ef in (dense.ef_search, 4 * dense.ef_search):
        params = faiss.SearchParametersHNSW(efSearch=ef)
        t, (_, got) = timed(lambda p: index.search(queries, k, params=p), params)
        recall = np.mean([len(np.intersect1d(a, b)) / k for a, b in zip(got, flat_rows)])
        out.append(f"| {name} | HNSW M={dense.hnsw_m} efC={dense.ef_construction} efS={ef} | "
                   f"{build:.1f} | {len(queries) / t:,.0f} | {recall:.3f} |")
    return out


def section_faiss(args) -> None:
    import faiss

    faiss.omp_set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    dim = 384
    print(f"## faiss: flat against HNSW ({args.threads} threads, k=100)\n")
    print("| vectors | index | build s | queries/s | recall@100 vs flat |\n|---|---|---|---|---|")
    for n in args.faiss_sizes:
        vectors = rng.standard_normal((n, dim), dtype=np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        queries = rng.standard_normal((args.faiss_queries, dim), dtype=np.float32)
        queries /= np.linalg.norm(queries, axis=1, keepdims=True)
        flat = faiss.IndexFlatIP(dim)
        build = seconds(flat.add, vectors)
        t, (_, got) = timed(flat.search, queries, 100)
        print(f"| {n:,} random | flat | {build:.1f} | {len(queries) / t:,.0f} | 1 |", flush=True)
        for line in _faiss_row(faiss, f"{n:,} random", vectors, queries, got, 100, args.threads):
            print(line, flush=True)
        del vectors, flat
    # Real embeddings: the cached flat index of the 20k-item catalog, and embedded requests.
    world = catalog_of(DENSE_ENV, args)
    dense = Dense(progress=False)
    cache.build_index(dense, world.catalog)
    vectors = dense._index.reconstruct_n(0, dense._index.ntotal)
    queries = dense.encode([t.request for t in world.tasks.tasks[: args.faiss_queries]])
    got = [dense._index.search(queries, 100)[1]]
    for line in _faiss_row(faiss, f"{len(vectors):,} shop items", vectors, queries, got[0], 100,
                           args.threads):
        print(line)
    print()


def section_score(args) -> None:
    print(f"## env.score on {args.batch} requests (identity policy, train split)\n")
    print("new queries: none of them embedded before; repeated: the same call again, every query "
          "embedding found in the dense retriever's query cache\n")
    print("| env | retriever | new queries s | queries/s | repeated s | queries/s |\n"
          "|---|---|---|---|---|---|")
    for env_id in ("RecQuery-v0", DENSE_ENV, "RecQuery-Hybrid-v0"):
        env = gym.make(env_id, world_kwargs=world_kwargs(env_id, args)).unwrapped
        rows = env.tasks.split("train")[: args.batch].tolist()
        queries = [env.tasks[r].request for r in rows]
        env.score(rows[-8:], ["warm up"] * 8)  # load the index and the encoder
        new = seconds(env.score, rows, queries)
        again = min(seconds(env.score, rows, queries) for _ in range(args.repeats))
        print(f"| {env_id} | {env.config.retriever} | {new:.2f} | {len(rows) / new:,.0f} | "
              f"{again:.2f} | {len(rows) / again:,.0f} |", flush=True)
    print()


SECTIONS = {"cache": section_cache, "encode": section_encode, "faiss": section_faiss,
            "score": section_score}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sections", nargs="+", default=list(SECTIONS), choices=list(SECTIONS))
    parser.add_argument("--cache-dir", help="index cache folder (sets RECGYM_CACHE_DIR)")
    parser.add_argument("--n-items", type=int, help="shrink the 20k-item world (a quick try)")
    parser.add_argument("--encode-items", type=int, default=512)
    parser.add_argument("--encode-single", type=int, default=64)
    parser.add_argument("--faiss-sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--faiss-queries", type=int, default=256)
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    args = parser.parse_args()
    if args.cache_dir:
        os.environ[cache.CACHE_DIR_ENV] = args.cache_dir
    load = os.getloadavg()[0]
    print(f"# bench/dense.py: {os.cpu_count()} CPUs, load average {load:.1f} at start, "
          f"cache {cache.cache_dir()}\n")
    _load_encoder.cache_clear()
    for name in args.sections:
        SECTIONS[name](args)


if __name__ == "__main__":
    main()
