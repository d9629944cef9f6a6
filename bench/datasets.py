"""Loading real datasets at full size: ESCI-sized parquet files, loaded and BM25-indexed.

    python bench/datasets.py [--products 1800000] [--queries 130000] [--dir /tmp/esci-bench]

Writes synthetic files in the official Amazon ESCI format (the two parquet files, every column,
product text of ESCI-like length, about 800 characters: a 12-word title and a model number,
brand, color, bullet points on 70% of the products, an HTML description on half of them; about 20
judged products per query, 40% of the queries in the small version) once, then times
``recgym.datasets.esci.load`` (small version, every product of the locale in the catalog) and
``BM25.index`` of the loaded catalog, with the peak memory of the process. Every product is in
locale ``us``, so the whole 1.8M are indexed (ESCI's own us catalog has about 1.2M). pyarrow, a
core dependency, writes and reads the parquet files.
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

import numpy as np

from recgym.datasets import esci
from recgym.retrievers import make_retriever

EXAMPLES, PRODUCTS = esci.EXAMPLES, esci.PRODUCTS


def _words(rng: np.random.Generator, n_vocab: int) -> np.ndarray:
    """A vocabulary of pronounceable made-up words (Zipf-sampled below, as real text is)."""
    syllables = np.array([c + v for c in "bcdfghklmnprstvz" for v in "aeiou"])
    parts = rng.integers(0, len(syllables), size=(n_vocab, 3))
    return np.array(["".join(syllables[p[: 1 + i % 3]]) for i, p in enumerate(parts)])


def _sentences(rng: np.random.Generator, words: np.ndarray, n: int, length: int) -> list[str]:
    ranks = np.minimum(rng.zipf(1.2, size=(n, length)) - 1, len(words) - 1)
    return [" ".join(row) for row in words[ranks]]


def _pick(rng: np.random.Generator, pool: list[str], n: int, k: int, p_empty: float) -> list[str]:
    idx = rng.integers(0, len(pool), size=(n, k))
    empty = rng.random(n) < p_empty
    return [None if e else " ".join(pool[i] for i in row)
            for row, e in zip(idx, empty, strict=True)]


def write_files(folder: Path, n_products: int, n_queries: int, seed: int = 0) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    words = _words(rng, 200_000)
    pool = _sentences(rng, words, 100_000, 12)
    ids = np.char.add("B", np.char.zfill(np.arange(n_products).astype(str), 9))
    locale = np.full(n_products, "us")
    titles = [f"{t} {m}" for t, m in zip(_pick(rng, pool, n_products, 1, 0.0),
                                         rng.integers(0, 10**6, n_products).astype(str),
                                         strict=True)]
    description = [None if d is None else f"<p>{d}</p><br>"
                   for d in _pick(rng, pool, n_products, 10, 0.5)]
    products = pa.table({
        "product_id": ids, "product_title": titles,
        "product_description": description,
        "product_bullet_point": _pick(rng, pool, n_products, 12, 0.3),
        "product_brand": words[rng.integers(0, 5000, n_products)],
        "product_color": rng.choice(["Black", "White", "Silver", "Blue", "Red", None], n_products),
        "product_locale": locale,
    })
    pq.write_table(products, folder / PRODUCTS)
    per_query = 20
    n = n_queries * per_query
    qid = np.repeat(np.arange(n_queries), per_query)
    us = np.arange(n_products)
    examples = pa.table({
        "example_id": np.arange(n),
        "query": np.array(_sentences(rng, words, n_queries, 3))[qid],
        "query_id": qid,
        # distinct products within a query: a random start, then a fixed stride
        "product_id": ids[us[(rng.integers(0, len(us), n_queries)[qid]
                              + np.tile(np.arange(per_query) * 7919, n_queries)) % len(us)]],
        "product_locale": np.full(n, "us"),
        "esci_label": rng.choice(["E", "S", "C", "I"], n, p=[0.65, 0.22, 0.03, 0.10]),
        "small_version": (rng.random(n_queries) < 0.4).astype(np.int64)[qid],
        "large_version": np.ones(n, dtype=np.int64),
        "split": np.where(rng.random(n_queries) < 0.7, "train", "test")[qid],
    })
    pq.write_table(examples, folder / EXAMPLES)


def peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=1_800_000)
    parser.add_argument("--queries", type=int, default=130_000)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/recgym-bench-esci"))
    args = parser.parse_args()
    folder = args.dir / f"{args.products}-{args.queries}"
    if not (folder / EXAMPLES).exists():
        folder.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        write_files(folder, args.products, args.queries)
        print(f"wrote {folder} in {time.perf_counter() - start:.0f} s")
    sizes = {p.name: p.stat().st_size / 2**20 for p in folder.iterdir()}
    print(", ".join(f"{name}: {mib:,.0f} MiB" for name, mib in sizes.items()))

    start = time.perf_counter()
    world = esci.load(folder)
    load_s = time.perf_counter() - start
    catalog = world.catalog
    chars = sum(map(len, catalog.texts())) / len(catalog)
    start = time.perf_counter()
    bm25 = make_retriever("bm25")
    bm25.index(catalog)
    index_s = time.perf_counter() - start
    queries = [t.request for t in world.tasks.tasks[:1024]]
    start = time.perf_counter()
    bm25.search(queries, 100)
    search_s = time.perf_counter() - start

    print(f"\nESCI-sized files: {len(catalog):,} products ({chars:,.0f} characters of text each on "
          f"average), {len(world.tasks):,} small-version queries\n")
    print("| step | seconds |")
    print("|---|---|")
    print(f"| esci.load (parquet -> Catalog + TaskSet) | {load_s:.1f} |")
    print(f"| BM25.index | {index_s:.1f} |")
    print(f"| load + index | {load_s + index_s:.1f} |")
    print(f"| BM25.search, 1,024 queries, top 100 | {search_s:.2f} |")
    print(f"\npeak memory (max RSS): {peak_gib():.1f} GiB")


if __name__ == "__main__":
    main()
