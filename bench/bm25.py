"""Benchmark recgym's BM25 against rank_bm25 and bm25s (numpy and numba backends), in one run.

    python bench/bm25.py                        # 10k, 100k, 1M items; 1,000 queries
    python bench/bm25.py --quick                # 10k and 100k, fewer repeats: about a minute
    python bench/bm25.py --sizes 100000 --queries 2000
    python bench/bm25.py --corpus mypkg.mod:make_corpus   # another corpus generator

Every system gets the same corpus, the same analysis and the same formula: recgym's default
:class:`~recgym.text.Tokenizer` (lowercase, Unicode folding, Lucene's English stopwords, Snowball
English stemmer) and Lucene BM25 with ``k1=0.9, b=0.4`` (bm25s: ``method="lucene"``; rank_bm25:
recgym's :class:`~recgym.retrievers.rank_bm25.RankBM25`, i.e. ``BM25Okapi`` with Lucene's idf).

What is timed (wall clock; recgym and bm25s are built in ``--build-rounds`` alternating rounds,
each in a process forked before any build, after ``--build-warmup`` untimed builds; rank_bm25
once; searches run in ``--repeats`` rounds of every system back to back, in alternating order.
A system's speed is its best round; a ratio between recgym and bm25s, or a search ratio, is the
median over rounds of the ratio within a round, since the machine's speed drifts between rounds):

* **build, text -> index**: tokenisation included for everyone. recgym: ``BM25.index`` (its two
  stages, ``Vocabulary.encode_batch`` and the array build, timed apart); bm25s:
  ``Tokenizer.tokenize_batch`` (the same analysis) + ``bm25s.BM25.index`` on the token lists, which
  maps tokens to ids itself; rank_bm25: ``RankBM25.index`` (``tokenize_batch`` + ``BM25Okapi``).
  bm25s's own pipeline is timed too, as its users run it (the "own analyzer" column):
  ``bm25s.tokenize`` with English stopwords and the same PyStemmer stemmer, then ``index``.
* **build, ids -> index**: tokenisation excluded. recgym: the array build from the token ids of
  ``encode_batch``; bm25s: ``index((ids, vocab))`` on those same ids (the bm25s-numpy instance);
  rank_bm25: ``BM25Okapi`` on token lists.
* **memory**: bytes of the index arrays (recgym: postings, weights, dense rows of frequent terms,
  per-term bounds, heads of pairs of frequent terms; bm25s: its CSC ``data``/``indices``/
  ``indptr``). Vocabulary dicts are left out of both. rank_bm25 keeps one Python dict per item:
  its size is ``sys.getsizeof`` of those dicts.
* **search**: a batch of queries at top-100 and top-1000. recgym gets the raw query strings (its
  time includes query tokenisation); bm25s gets the query token lists already made (tokenisation
  excluded, in its favour). bm25s-numba is compiled by a warm-up call before timing, and run with
  its default single thread and with all cores (``n_threads=-1``). rank_bm25 scores every item in
  Python for every query term: it is timed on ``--rank-bm25-queries`` queries (default 20) and only
  up to ``--rank-bm25-max-items`` (default 100k); bm25s-numpy likewise on as many queries as fit in
  ``--budget`` seconds. Throughput is queries per second of wall time. ``--threads`` adds recgym
  with all cores.

Results are checked too: recgym's top-100 must equal rank_bm25's (rows and scores), and its scores
bm25s-numba's (bm25s breaks ties differently, so rows are compared only up to ties).
"""

from __future__ import annotations

import argparse
import gc
import importlib
import os
import pickle
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import numpy as np
from _rounds import alternate, median_ratio

from recgym.retrievers.bm25 import BM25
from recgym.retrievers.rank_bm25 import RankBM25
from recgym.text import Tokenizer, Vocabulary

K1, B = 0.9, 0.4


# -- the corpus --------------------------------------------------------------------------------


@dataclass
class Corpus:
    titles: list[str]
    queries: list[str]


def make_corpus(n_items: int, n_queries: int, seed: int = 0) -> Corpus:
    """E-commerce-like titles and queries: swap this function to benchmark another catalog.

    A vocabulary of 30,000 invented words drawn with Zipf frequencies (exponent 1, like words in
    product titles) plus 300 categories of 3 words each (category sizes Zipf 0.8). A title has 6
    to 15 words, one of them a word of its category; a query has 2 to 6 words from the same
    distribution, and half the queries name a category word.
    """
    rng = np.random.default_rng(seed)
    n_words, n_categories = 30_000, 300
    onsets = np.array([*"bcdfghjklmnprstvwz", "ch", "sh", "th", "tr", "st", "br", "cl"])
    nuclei = np.array(["a", "e", "i", "o", "u", "ai", "ea", "oo", "y"])
    words: list[str] = []
    seen: set[str] = set()
    while len(words) < n_words + 3 * n_categories:
        m = 200_000
        syllables = rng.integers(1, 4, size=m)
        parts = [
            np.char.add(onsets[rng.integers(len(onsets), size=m)], nuclei[rng.integers(9, size=m)])
            for _ in range(3)
        ]
        coda = np.where(rng.random(m) < 0.3, onsets[rng.integers(len(onsets), size=m)], "")
        w = np.where(syllables >= 2, np.char.add(parts[0], parts[1]), parts[0])
        w = np.where(syllables == 3, np.char.add(w, parts[2]), w)
        for x in np.char.add(w, coda).tolist():
            if x not in seen:
                seen.add(x)
                words.append(x)
    vocab = np.array(words[:n_words])
    category_words = np.array(words[n_words : n_words + 3 * n_categories]).reshape(n_categories, 3)
    p_word = 1.0 / np.arange(1, n_words + 1)
    p_word /= p_word.sum()
    p_cat = 1.0 / np.arange(1, n_categories + 1) ** 0.8
    p_cat /= p_cat.sum()

    def texts(n: int, lo: int, hi: int, category_share: float) -> list[str]:
        lens = rng.integers(lo, hi + 1, size=n)
        starts = np.concatenate(([0], np.cumsum(lens)[:-1]))
        flat = vocab[rng.choice(n_words, size=int(lens.sum()), p=p_word)]
        named = np.flatnonzero(rng.random(n) < category_share)
        cats = rng.choice(n_categories, size=len(named), p=p_cat)
        where = starts[named] + rng.integers(0, lens[named])
        flat[where] = category_words[cats, rng.integers(0, 3, size=len(named))]
        flat_list = flat.tolist()
        return [" ".join(flat_list[s : s + n]) for s, n in zip(starts.tolist(), lens.tolist())]

    return Corpus(titles=texts(n_items, 6, 15, 1.0), queries=texts(n_queries, 2, 6, 0.5))


# -- the systems -------------------------------------------------------------------------------


@dataclass
class Build:
    """Build measurements of one library (seconds; bytes)."""

    library: str
    total_s: float  # raw texts -> searchable index
    tokenize_s: float  # of which the analysis of the texts
    from_ids_s: float  # token ids (or token lists) -> index, tokenization excluded
    from_ids_what: str
    memory: float
    own_s: float = float("nan")  # bm25s only: text -> index with bm25s.tokenize (its analyzer)
    rounds: list[float] = field(default_factory=list)  # total_s of each alternating build round
    own_rounds: list[float] = field(default_factory=list)  # bm25s only: own_s of each round


@dataclass
class Search:
    system: str
    qps: dict[int, float] = field(default_factory=dict)  # the best round's
    n_queries: dict[int, int] = field(default_factory=dict)
    # Seconds per query in each round: the rounds run every system back to back.
    rounds: dict[int, list[float]] = field(default_factory=dict)


def _timed(fn: Callable[[], object]) -> tuple[float, object]:
    """Seconds of one call of ``fn``, and its result. As ``timeit`` does, the garbage collector
    is off meanwhile: a full collection walks every object of the process (rank_bm25's index
    alone is 100,000 dicts), whoever happened to trigger it."""
    gc.collect()
    enabled = gc.isenabled()
    gc.disable()
    try:
        start = time.perf_counter()
        out = fn()
        return time.perf_counter() - start, out
    finally:
        if enabled:
            gc.enable()


def _forked(build: Callable[[], Build]) -> Build:
    """``build()`` run in a child process forked from this one (its result sent back pickled),
    so that builds do not see the state earlier ones left in the process. Where ``os.fork`` is
    missing, in this process."""
    if not hasattr(os, "fork"):
        return build()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        status = 0
        try:
            with os.fdopen(write, "wb") as out:
                pickle.dump(build(), out)
        except BaseException:
            traceback.print_exc()
            status = 1
        finally:
            os._exit(status)
    os.close(write)
    with os.fdopen(read, "rb") as inp:
        data = inp.read()
    os.waitpid(pid, 0)
    if not data:
        raise RuntimeError("a forked build failed (see its traceback above)")
    return pickle.loads(data)


def _per_query(
    search: Callable[[list[int], int], Any], queries: list[int], k: int, outputs: dict, name: str
) -> Callable[[], float]:
    """A measure for ``_rounds.alternate``: seconds per query of one ``search(queries, k)``, its
    result kept in ``outputs[name]``."""

    def measure() -> float:
        elapsed, outputs[name] = _timed(lambda: search(queries, k))
        return elapsed / len(queries)

    return measure


def build_recgym(corpus: Corpus) -> tuple[Build, BM25]:
    # Exactly what BM25.index does, its two stages timed apart.
    r = BM25(k1=K1, b=B)
    vocab = Vocabulary(Tokenizer())
    tok_s, (ids, rows) = _timed(lambda: vocab.encode_batch(corpus.titles, grow=True))
    ids_s, _ = _timed(lambda: r._build(len(corpus.titles), vocab, ids, rows))
    return Build("recgym", tok_s + ids_s, tok_s, ids_s, "ids", r.memory_bytes()), r


def build_bm25s(
    corpus: Corpus, encoded: tuple[np.ndarray, np.ndarray, dict], own: bool = True
) -> tuple[Build, Any]:
    import bm25s

    # text -> index: recgym's tokenizer (the same analysis), then bm25s maps tokens to ids.
    tok_s, tokens = _timed(lambda: Tokenizer().tokenize_batch(corpus.titles))
    numba = bm25s.BM25(k1=K1, b=B, method="lucene", backend="numba")
    index_s, _ = _timed(lambda: numba.index(tokens, show_progress=False))
    # ids -> index: the token ids recgym made, as bm25s's (ids, vocab) input.
    ids, rows, terms = encoded
    bounds = np.searchsorted(rows, np.arange(len(corpus.titles) + 1))
    id_lists = [ids[a:z].tolist() for a, z in pairwise(bounds.tolist())]
    numpy_ = bm25s.BM25(k1=K1, b=B, method="lucene", backend="numpy")
    ids_s, _ = _timed(lambda: numpy_.index((id_lists, dict(terms)), show_progress=False))
    memory = sum(numba.scores[x].nbytes for x in ("data", "indices", "indptr"))
    # For information: bm25s's own pipeline (its tokenizer: regex split, English stopwords, the
    # same PyStemmer stemmer; not used for the search comparisons).
    import Stemmer

    def own_pipeline() -> None:
        stemmer = Stemmer.Stemmer("english")
        tokens = bm25s.tokenize(corpus.titles, stopwords="en", stemmer=stemmer, show_progress=False)
        bm25s.BM25(k1=K1, b=B, method="lucene").index(tokens, show_progress=False)

    own_s = _timed(own_pipeline)[0] if own else float("nan")
    build = Build("bm25s", tok_s + index_s, tok_s, ids_s, "ids", memory, own_s)
    return build, (numba, numpy_)


def build_rank_bm25(corpus: Corpus) -> tuple[Build, RankBM25]:
    r = RankBM25(k1=K1, b=B)
    total_s, _ = _timed(lambda: r.index(corpus.titles))
    tok_s, _ = _timed(lambda: Tokenizer().tokenize_batch(corpus.titles))
    model = r._model
    memory = sys.getsizeof(model.doc_freqs) + sum(map(sys.getsizeof, model.doc_freqs))
    return Build("rank_bm25", total_s, tok_s, total_s - tok_s, "token lists", memory), r


# -- the run -----------------------------------------------------------------------------------


def bench_size(
    n_items: int, args: argparse.Namespace, make: Callable[..., Corpus]
) -> tuple[list[Build], list[Search]]:
    print(f"\n## {n_items:,} items, {args.queries:,} queries", flush=True)
    t0 = time.perf_counter()
    corpus = make(n_items, args.queries, seed=args.seed)
    print(f"corpus generated in {time.perf_counter() - t0:.1f} s", flush=True)
    queries = corpus.queries
    query_tokens = Tokenizer().tokenize_batch(queries)
    builds: list[Build] = []
    # name -> search(query indices, k) -> (rows, scores)
    systems: dict[str, Callable[[list[int], int], tuple[np.ndarray, np.ndarray]]] = {}

    # recgym and bm25s are built in alternating rounds; each keeps its best round. Every timed
    # build runs in a process forked from this one before any build, so each starts from the
    # same state: in one process, recgym's 1M build ran 1.3 to 1.7 times slower (in system
    # time) after a bm25s build than before it, even with bm25s's instances freed.
    best: dict[str, Build] = {}
    totals: dict[str, list[float]] = {"recgym": [], "bm25s": []}
    own_totals: list[float] = []  # bm25s's own pipeline, each round
    libraries = ["recgym"] if args.no_bm25s else ["recgym", "bm25s"]
    # bm25s's ids -> index input: recgym's token ids of the titles.
    vocab = Vocabulary(Tokenizer())
    encoded = (*vocab.encode_batch(corpus.titles, grow=True), vocab.terms)
    gc.collect()
    # The first fork after the corpus is made builds 1.3 to 1.6 times slower than the next ones,
    # mostly in system time (seen with recgym's build alone, fork after fork): untimed builds of
    # recgym, the shorter, absorb that before the timed rounds.
    for _ in range(args.build_warmup):
        _forked(lambda: build_recgym(corpus)[0])
    for i in range(args.build_rounds):
        for library in libraries[:: 1 if i % 2 == 0 else -1]:
            if library == "recgym":
                result = _forked(lambda: build_recgym(corpus)[0])
            else:
                result = _forked(lambda: build_bm25s(corpus, encoded)[0])
            totals[library].append(result.total_s)
            if library == "bm25s":
                own_totals.append(result.own_s)
            if library not in best or result.total_s < best[library].total_s:
                best[library] = result
            best[library].rounds = totals[library]
            best[library].own_rounds = own_totals if library == "bm25s" else []
            print(f"built {library}: {result.total_s:.2f} s", flush=True)
    # The instances searched below (built again here, not timed).
    kept = {"recgym": build_recgym(corpus)[1]}
    if not args.no_bm25s:
        kept["bm25s"] = build_bm25s(corpus, encoded, own=False)[1]
    ours = kept["recgym"]
    numba, numpy_ = kept.get("bm25s", (None, None))
    builds.append(best["recgym"])
    systems["recgym BM25"] = lambda q, k: ours.search([queries[i] for i in q], k)
    cpus = os.cpu_count() or 1
    if args.threads and cpus > 1:
        threaded = BM25(k1=K1, b=B, n_threads=cpus)
        threaded.load_index_state(ours.index_state())
        systems[f"recgym BM25 ({cpus} threads)"] = lambda q, k: threaded.search(
            [queries[i] for i in q], k
        )
    if not args.no_bm25s:
        builds.append(best["bm25s"])

        def bm25s_search(r: Any, n_threads: int | None) -> Callable:
            def search(q: list[int], k: int) -> tuple[np.ndarray, np.ndarray]:
                kw = {} if n_threads is None else {"n_threads": n_threads}
                qt = [query_tokens[i] for i in q]
                docs, scores = r.retrieve(qt, k=k, show_progress=False, **kw)
                return docs.astype(np.int64), scores.astype(np.float32)

            return search

        systems["bm25s-numba"] = bm25s_search(numba, 1)
        systems["bm25s-numba (all cores)"] = bm25s_search(numba, -1)
        systems["bm25s-numpy"] = bm25s_search(numpy_, None)
        for n_threads in (1, -1):  # compile both numba variants before timing
            numba.retrieve(query_tokens[:5], k=5, show_progress=False, n_threads=n_threads)
    if n_items <= args.rank_bm25_max_items:
        build, ref = build_rank_bm25(corpus)
        builds.append(build)
        systems["rank_bm25"] = lambda q, k: ref.search([queries[i] for i in q], k)
        print(f"built rank_bm25: {build.total_s:.2f} s", flush=True)

    results = {name: Search(name) for name in systems}
    all_queries = list(range(len(queries)))
    for k in [k for k in (100, 1000) if k <= n_items]:
        # The queries each system gets: all, except for slow ones (a time budget per run).
        subsets: dict[str, list[int]] = {}
        for name, search in systems.items():
            if name == "rank_bm25":
                subsets[name] = all_queries[: args.rank_bm25_queries]
                continue
            elapsed, _ = _timed(lambda s=search, k=k: s(all_queries[:20], k))
            n = int(min(len(all_queries), max(20, 20 / max(elapsed, 1e-9) * args.budget)))
            subsets[name] = all_queries[:n]
        outputs: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        measures = {
            name: _per_query(search, subsets[name], k, outputs, name)
            for name, search in systems.items()
        }
        rounds = alternate(measures, args.repeats)
        for name in systems:
            results[name].rounds[k] = rounds[name]
            results[name].qps[k] = 1.0 / min(rounds[name])
            results[name].n_queries[k] = len(subsets[name])
        if k == 100:
            check(outputs)
    return builds, list(results.values())


def check(outputs: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    rows, scores = outputs["recgym BM25"]
    for name, (r, s) in outputs.items():
        if name.startswith("recgym") or "all cores" in name:
            continue
        n = len(r)
        if name == "rank_bm25":
            same = np.array_equal(rows[:n], r) and np.allclose(scores[:n], s, rtol=1e-5)
            print(f"check vs {name} ({n} queries): same rows and scores: {same}")
        else:
            ours = np.where(np.isfinite(scores[:n]), scores[:n], 0)
            theirs = np.where(r >= 0, s, 0)  # bm25s pads with zero-score rows
            close = np.isclose(ours, theirs, rtol=1e-4, atol=1e-5).all(axis=1)
            print(f"check vs {name} ({n} queries): same top-100 scores: {close.mean():.1%}")


def tables(all_results: dict[int, tuple[list[Build], list[Search]]]) -> str:
    out = [
        "Build (wall seconds, each library's best round; index = bytes of its arrays):",
        "",
        "| items | library | text -> index | of which tokenize | ids -> index | index MB |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    own = []
    for n_items, (builds, _) in all_results.items():
        for b in builds:
            out.append(
                f"| {n_items:,} | {b.library} | {b.total_s:.2f} | {b.tokenize_s:.2f} | "
                f"{b.from_ids_s:.2f} ({b.from_ids_what}) | {b.memory / 1e6:.1f} |"
            )
            if b.own_s == b.own_s:
                own.append(f"{n_items:,} items: {b.own_s:.2f} s")
    if own:
        out += ["", "bm25s text -> index with bm25s.tokenize instead: " + "; ".join(own)]
    out += ["", "Search (queries per second, batch of all queries; (n q): timed on n queries):", ""]
    out += ["| items | system | q/s top-100 | q/s top-1000 |", "|---:|---|---:|---:|"]
    for n_items, (_, searches) in all_results.items():
        for s in searches:
            cells = []
            for k in (100, 1000):
                if k not in s.qps:
                    cells.append("-")
                    continue
                note = f" ({s.n_queries[k]} q)" if s.n_queries[k] < 1000 else ""
                cells.append(f"{s.qps[k]:,.0f}{note}")
            out.append(f"| {n_items:,} | {s.system} | {cells[0]} | {cells[1]} |")
    out += [
        "",
        "recgym BM25 (1 thread) against each peer: times faster (search, and builds against",
        "bm25s: the median over rounds of the ratio within a round); memory ours/peer. Build",
        "text->index: the peer with recgym's analysis; own analyzer: bm25s with bm25s.tokenize.",
    ]
    out += [
        "",
        "| items | peer | build text->index | build, own analyzer | build ids->index | memory "
        "| top-100 | top-1000 |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for n_items, (builds, searches) in all_results.items():
        ours_b = builds[0]
        by_lib = {b.library: b for b in builds}
        ours_s = searches[0]
        for s in searches[1:]:
            lib = "bm25s" if s.system.startswith("bm25s") else s.system
            b = None if s.system.startswith("recgym") else by_lib.get(lib)
            cells = ["", "", "", ""]
            if b is not None:
                alternated = len(b.rounds) > 1 and len(b.rounds) == len(ours_b.rounds)
                if alternated:
                    build_ratio = median_ratio(b.rounds, ours_b.rounds)
                else:
                    build_ratio = b.total_s / ours_b.total_s
                own = "-"
                if b.own_rounds and alternated:
                    own = f"{median_ratio(b.own_rounds, ours_b.rounds):.1f}x"
                cells = [
                    f"{build_ratio:.1f}x",
                    own,
                    f"{b.from_ids_s / ours_b.from_ids_s:.1f}x",
                    f"{ours_b.memory / b.memory:.2f}",
                ]
            for k in (100, 1000):
                # The median over rounds of the ratio within a round: both ran back to back.
                ratio = median_ratio(s.rounds[k], ours_s.rounds[k]) if k in s.qps else None
                cells.append("-" if ratio is None else f"{ratio:.2f}x")
            out.append(f"| {n_items:,} | {s.system} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--quick", action="store_true", help="10k and 100k items, 2 repeats")
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds of every system")
    parser.add_argument("--build-rounds", type=int, default=3, help="builds of recgym and bm25s")
    parser.add_argument("--build-warmup", type=int, default=1, help="untimed builds before them")
    parser.add_argument("--budget", type=float, default=5.0, help="seconds per timed search run")
    parser.add_argument("--rank-bm25-queries", type=int, default=20)
    parser.add_argument("--rank-bm25-max-items", type=int, default=100_000)
    parser.add_argument("--threads", action="store_true", help="also run recgym with all cores")
    parser.add_argument("--no-bm25s", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--corpus", default=None, help="module:function like make_corpus")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes = [s for s in args.sizes if s <= 100_000] or [10_000]
        args.repeats = min(args.repeats, 2)
        args.budget = min(args.budget, 2.0)
    make = make_corpus
    if args.corpus:
        module, _, name = args.corpus.partition(":")
        make = getattr(importlib.import_module(module), name)
    import numpy
    import scipy

    print(f"python {sys.version.split()[0]}, numpy {numpy.__version__}, scipy {scipy.__version__}")
    print(f"{os.cpu_count()} CPUs; timings are wall clock, {args.repeats} rounds")
    load_before = os.getloadavg()
    all_results = {n: bench_size(n, args, make) for n in args.sizes}
    print()
    print(tables(all_results))
    print(
        f"\nrank_bm25 is timed on {args.rank_bm25_queries} queries, and only up to "
        f"{args.rank_bm25_max_items:,} items. Load average (1 min) at start / end: "
        f"{load_before[0]:.1f} / {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs."
    )


if __name__ == "__main__":
    main()
