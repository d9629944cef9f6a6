"""A/B of BM25's search code: this checkout's against another git revision's, on one index.

    python bench/ab_search.py --rev 766ff3a                  # 100k items, top-100 and top-1000
    python bench/ab_search.py --rev HEAD~3 --items 1000000 --rounds 5

The other revision's ``recgym/retrievers/bm25_search.py`` is loaded as a module of its own, and
its search methods are bound to a second ``BM25`` that shares this checkout's index arrays (so
only the search code differs; the revision's search must read the same index fields). Both give
their results for the corpus of ``bench/bm25.py``; they must be equal to the bit. Then the two
searches run in alternating rounds (``_rounds.alternate``): the figure is the median over rounds
of the per-round ratio, old time / new time, with its range.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from _rounds import alternate, median_ratio, seconds
from bm25 import K1, B, make_corpus

from recgym.retrievers import bm25_search
from recgym.retrievers.bm25 import BM25

_SEARCH = "recgym/retrievers/bm25_search.py"


def load_revision(rev: str) -> object:
    """``bm25_search`` as it is at git revision ``rev``, as a module named ``bm25_search_<rev>``."""
    root = Path(__file__).resolve().parent.parent
    source = subprocess.run(
        ["git", "-C", str(root), "show", f"{rev}:{_SEARCH}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    name = f"bm25_search_{rev}".replace("~", "_").replace("^", "_")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"{name}.py"
        path.write_text(source)
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up
        spec.loader.exec_module(module)
    return module


def with_search_of(module: object, index: BM25) -> BM25:
    """A BM25 on ``index``'s arrays whose search methods are ``module.BM25Search``'s."""
    other = BM25(k1=index.k1, b=index.b)
    other.load_index_state(index.index_state())
    for name, value in vars(module.BM25Search).items():
        if callable(value) and name.startswith("_") and not name.startswith("__"):
            setattr(other, name, value.__get__(other))
    return other


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rev", required=True, help="the git revision to compare against")
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--k", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args(argv)

    corpus = make_corpus(args.items, args.queries)
    new = BM25(k1=K1, b=B)
    new.index(corpus.titles)
    old = with_search_of(load_revision(args.rev), new)
    print(f"{args.items:,} items, {args.queries:,} queries; {bm25_search.__file__} vs {args.rev}")
    for k in args.k:
        a, b = old.search(corpus.queries, k), new.search(corpus.queries, k)
        if not (np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])):
            raise SystemExit(f"top-{k}: the two revisions give different results")
        rounds = alternate(
            {
                "old": seconds(lambda k=k: old.search(corpus.queries, k)),
                "new": seconds(lambda k=k: new.search(corpus.queries, k)),
            },
            args.rounds,
        )
        ratios = [x / y for x, y in zip(rounds["old"], rounds["new"])]
        best_old, best_new = min(rounds["old"]) * 1e3, min(rounds["new"]) * 1e3
        print(
            f"top-{k}: old/new {median_ratio(rounds['old'], rounds['new']):.3f} "
            f"(median of {args.rounds} rounds; range {min(ratios):.3f} to {max(ratios):.3f}); "
            f"best rounds old {best_old:.1f} ms, new {best_new:.1f} ms"
        )


if __name__ == "__main__":
    main()
