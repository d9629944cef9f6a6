"""Corpora for the BM25 tests (tests/test_bm25*.py): made-up words, Zipf-distributed texts."""

from __future__ import annotations

import numpy as np

# No stopwords, no stemming: the tests' words are their own terms.
PLAIN = {"stopwords": None, "stemmer": None}


def make_words(rng: np.random.Generator, n: int) -> list[str]:
    """``n`` distinct made-up words of one to three syllables, sorted."""
    letters = np.array(list("bcdfghklmnprstvz"))
    vowels = np.array(list("aeiou"))
    out: set[str] = set()
    while len(out) < n:
        k = int(rng.integers(1, 4))
        out.add("".join(letters[rng.integers(16)] + vowels[rng.integers(5)] for _ in range(k)))
    return sorted(out)


def make_texts(
    rng: np.random.Generator,
    words: list[str],
    n: int,
    lengths: tuple[int, int],
    p: np.ndarray | None = None,
) -> list[str]:
    """``n`` texts of ``lengths[0]`` to ``lengths[1] - 1`` words drawn from ``words`` (with the
    probabilities ``p``, normalised here; uniform if ``None``)."""
    p = None if p is None else p / p.sum()
    return [" ".join(rng.choice(words, size=int(rng.integers(*lengths)), p=p)) for _ in range(n)]


def make_corpus(seed: int) -> tuple[list[str], list[str]]:
    """Zipf-distributed titles with duplicates and empty ones, and awkward queries."""
    rng = np.random.default_rng(seed)
    n_items = int(rng.choice([1, 7, 40, 200, 500, 1100, 1600]))
    vocab = make_words(rng, int(rng.integers(20, 400)))
    p = 1.0 / np.arange(1, len(vocab) + 1) ** rng.uniform(0.8, 1.3)
    p /= p.sum()

    def text(lo: int, hi: int) -> str:
        n = int(rng.integers(lo, hi + 1))
        return " ".join(vocab[i] for i in rng.choice(len(vocab), size=n, p=p))

    titles = [text(1, 14) for _ in range(n_items)]
    for i in rng.choice(n_items, size=n_items // 5, replace=True):  # duplicates -> exact ties
        titles[int(rng.integers(n_items))] = titles[i]
    for i in rng.choice(n_items, size=n_items // 20, replace=False):
        titles[i] = rng.choice(["", "the of and", "!!! ---"])  # empty after analysis
    queries = [text(1, 6) for _ in range(25)]
    queries += ["", "the and of", "zzzunknown qqqnothing", "zzzunknown " + vocab[0]]
    queries += [f"{vocab[1]} {vocab[1]} {vocab[1]} {vocab[-1]}", vocab[0], vocab[-1]]
    queries += ["Title:(x OR y)^3"]
    return titles, queries
