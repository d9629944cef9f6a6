"""BM25 (fast, MaxScore) against RankBM25 (rank_bm25, exhaustive) and against hand arithmetic."""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from bm25_corpora import PLAIN, make_corpus, make_texts, make_words

from recgym.catalog import Catalog
from recgym.retrievers import Retriever, make_retriever
from recgym.retrievers import bm25 as bm25_module
from recgym.retrievers import bm25_search as search_module
from recgym.retrievers.bm25 import BM25
from recgym.retrievers.rank_bm25 import RankBM25
from recgym.text import Tokenizer

# -- hand-checked --------------------------------------------------------------------------------

# Three items, no stopwords, no stemming; k1 = 0.9, b = 0.4:
#   row 0 "apple banana"        dl = 2
#   row 1 "apple apple cherry"  dl = 3
#   row 2 "banana"              dl = 1            N = 3, avgdl = 6 / 3 = 2
# df(apple) = df(banana) = 2, so idf = ln(1 + (3 - 2 + 0.5) / (2 + 0.5)) = ln(1.6) = 0.4700036
# apple, row 0: tf 1, norm = 0.9 * (1 - 0.4 + 0.4 * 2/2) = 0.90 -> 0.4700036 * 1/1.90 = 0.2473703
# apple, row 1: tf 2, norm = 0.9 * (0.6 + 0.4 * 3/2)   = 1.08 -> 0.4700036 * 2/3.08 = 0.3051972
# banana, row 0: as apple in row 0                                             = 0.2473703
# banana, row 2: tf 1, norm = 0.9 * (0.6 + 0.4 * 1/2)  = 0.72 -> 0.4700036 * 1/1.72 = 0.2732579
# "apple banana": row 0 = 0.2473703 + 0.2473703 = 0.4947406, row 1 = 0.3051972, row 2 = 0.2732579
TINY = ["apple banana", "apple apple cherry", "banana"]
IDF = math.log(1.6)


@pytest.mark.parametrize("cls", [BM25, RankBM25])
def test_hand_checked_scores(cls):
    r = cls(tokenizer=PLAIN)
    r.index(TINY)
    rows, scores = r.search(["apple", "apple banana", "apple apple", "durian"], 4)
    assert rows.dtype == np.int64 and scores.dtype == np.float32
    assert rows.tolist() == [[1, 0, -1, -1], [0, 1, 2, -1], [1, 0, -1, -1], [-1, -1, -1, -1]]
    w_apple_0, w_apple_1, w_banana_2 = IDF / 1.9, IDF * 2 / 3.08, IDF / 1.72
    assert abs(IDF - 0.4700036) < 1e-7 and abs(w_apple_0 - 0.2473703) < 1e-7
    expect = [
        [w_apple_1, w_apple_0],
        [2 * w_apple_0, w_apple_1, w_banana_2],
        [2 * w_apple_1, 2 * w_apple_0],  # a repeated query term counts twice
    ]
    for got, want in zip(scores, expect):
        np.testing.assert_allclose(got[: len(want)], want, rtol=1e-6)
        assert np.all(np.isneginf(got[len(want) :]))
    assert np.all(np.isneginf(scores[3]))


# -- randomised corpora: BM25 == RankBM25 --------------------------------------------------------


def _assert_same(fast, ref, queries):
    rows, scores = fast
    ref_rows, ref_scores = ref
    assert rows.shape == ref_rows.shape and scores.shape == ref_scores.shape
    np.testing.assert_array_equal(rows == -1, ref_rows == -1)
    np.testing.assert_array_equal(np.isneginf(scores), rows == -1)
    found = rows >= 0
    np.testing.assert_allclose(scores[found], ref_scores[found], rtol=2e-6, atol=1e-7)
    for q, (r, rr, s) in enumerate(zip(rows, ref_rows, ref_scores)):
        # Rows must agree exactly, except where the reference holds two scores that differ by
        # less than float32 summation noise (none ever met so far, but they would be legitimate).
        for i in np.flatnonzero(r != rr):
            near = np.abs(s - s[i]) <= 2e-6 * abs(s[i])
            assert r[i] in rr[near], (queries[q], i, r, rr)


CASES = [(seed, "default") for seed in range(20)] + [(seed, "dense") for seed in range(0, 20, 3)]
# The search paths, each forced: MaxScore query by query; MaxScore after the rare terms of a few
# queries at a time were accumulated at once; MaxScore ending with a pass over the dense rows of
# its frequent terms whenever it can, taking the rows above theta, or above a guessed higher
# threshold (the guess of rank k * margin + 4 in a sample: with margin 0 it is too high whenever
# k > 4, and the pass must fall back on theta); the same, except that two frequent terms left
# take the rows that are no candidates from their pair's head; every posting of many queries at
# once.
_MAXSCORE = {"_EXHAUSTIVE_POSTINGS": -1, "_RARE_MIN_BATCH": 1 << 62, "_DENSE_PASS": 0}
_DENSE = {**_MAXSCORE, "_DENSE_PASS": 1 << 62, "_GUESS_ABOVE": 1 << 62, "_PAIRS": False}
PATHS = {
    "maxscore": _MAXSCORE,
    "rare-product": {**_MAXSCORE, "_RARE_MIN_BATCH": 1, "_RARE_BATCH": 3},
    "dense-pass": _DENSE,
    "dense-pass-guess": {**_DENSE, "_GUESS_ABOVE": 0},
    "dense-pass-guess-too-high": {**_DENSE, "_GUESS_ABOVE": 0, "_GUESS_MARGIN": 0.0},
    "pair-head": {**_DENSE, "_PAIRS": True, "_PAIR_CANDIDATES": 0},
    "exhaustive": {"_EXHAUSTIVE_POSTINGS": 1 << 62},
}


def _use_path(monkeypatch, name):
    for setting, value in PATHS[name].items():
        monkeypatch.setattr(search_module, setting, value)


@pytest.fixture(params=sorted(PATHS))
def path(request, monkeypatch):
    _use_path(monkeypatch, request.param)
    return request.param


@pytest.mark.parametrize(("seed", "mode"), CASES)
def test_matches_rank_bm25_on_random_corpora(seed, mode, path, monkeypatch):
    if mode == "dense":
        # Dense rows (and impact order) for small corpora and frequent terms, probing always on,
        # small samples: every MaxScore path (accumulate, cut, sample, probe, scan, lookup) runs.
        monkeypatch.setattr(bm25_module, "_DENSE_MIN_ITEMS", 1)
        monkeypatch.setattr(bm25_module, "_DENSE_FRACTION", 4)
        monkeypatch.setattr(search_module, "_PROBE_RATIO", 0.0)
        monkeypatch.setattr(search_module, "_SAMPLE", 8)
    titles, queries = make_corpus(seed)
    rng = np.random.default_rng(seed)
    k1, b = (0.9, 0.4) if seed % 3 else (float(rng.uniform(0.5, 2)), float(rng.uniform(0, 1)))
    fast, ref = BM25(k1=k1, b=b), RankBM25(k1=k1, b=b)
    fast.index(titles)
    ref.index(titles)
    ks = (1, 10, int(rng.choice([20, 100, 700, 3000, 15000])))
    ref_rows, ref_scores = ref.search(queries, max(ks))  # a ranking's prefix is the smaller k's
    for k in ks:
        _assert_same(fast.search(queries, k), (ref_rows[:, :k], ref_scores[:, :k]), queries)


@pytest.mark.parametrize("seed", range(3))
def test_frequent_terms_only(seed, path, monkeypatch):
    # A dozen words in every title: every term is frequent, half have dense rows (impact order),
    # samples are small. Long queries of such terms exercise theta from samples and probes.
    monkeypatch.setattr(bm25_module, "_DENSE_MIN_ITEMS", 1)
    monkeypatch.setattr(bm25_module, "_DENSE_FRACTION", 2)
    monkeypatch.setattr(search_module, "_SAMPLE", 8)
    rng = np.random.default_rng(seed)
    words = make_words(rng, 12)
    titles = make_texts(rng, words, 1500, (1, 12), p=np.linspace(3, 1, len(words)))
    queries = make_texts(rng, words, 40, (2, 9))
    fast, ref = BM25(tokenizer=PLAIN), RankBM25(tokenizer=PLAIN)
    fast.index(titles)
    ref.index(titles)
    ref_rows, ref_scores = ref.search(queries, 300)
    for k in (1, 5, 30, 300):
        _assert_same(fast.search(queries, k), (ref_rows[:, :k], ref_scores[:, :k]), queries)


@pytest.mark.parametrize("seed", range(6))
def test_all_paths_give_bit_identical_results(seed, monkeypatch):
    # All add a candidate's term weights in the same order, in float32: same scores to the bit,
    # so the same ranking whatever path a query takes (the path depends on its postings and its
    # batch, never its result). Many frequent terms with dense rows and long queries mixing them
    # with rarer terms make MaxScore finish with both kinds of term; with the rare-first order
    # of an earlier version, seeds 2, 3 and 4 of this corpus gave scores one float32 step apart.
    monkeypatch.setattr(bm25_module, "_DENSE_MIN_ITEMS", 1)
    monkeypatch.setattr(bm25_module, "_DENSE_FRACTION", 4)
    monkeypatch.setattr(search_module, "_SAMPLE", 8)
    rng = np.random.default_rng(seed)
    words = make_words(rng, 60)
    p = 1 / np.arange(1, 61) ** 1.1
    titles = make_texts(rng, words, 1500, (1, 20), p=p)
    queries = make_texts(rng, words, 200, (3, 9), p=np.sqrt(p))
    r = BM25(tokenizer=PLAIN)
    r.index(titles)
    for k in (1, 10, 100):
        results = {}
        for name in PATHS:
            with monkeypatch.context() as m:
                _use_path(m, name)
                results[name] = r.search(queries, k)
        for name in sorted(set(PATHS) - {"maxscore"}):
            np.testing.assert_array_equal(results["maxscore"][0], results[name][0])
            np.testing.assert_array_equal(results["maxscore"][1], results[name][1])


def test_mixed_batch_and_small_exhaustive_chunks(monkeypatch):
    # A batch split between the paths, and exhaustive chunks of 3 queries, give what each query
    # alone gives.
    titles, queries = make_corpus(7)
    r = BM25()
    r.index(titles)
    alone = [r.search([q], 20) for q in queries]
    monkeypatch.setattr(search_module, "_EXHAUSTIVE_BATCH", 3)
    monkeypatch.setattr(search_module, "_EXHAUSTIVE_POSTINGS", 40)
    rows, scores = r.search(queries, 20)
    for i, (want_rows, want_scores) in enumerate(alone):
        np.testing.assert_array_equal(rows[i], want_rows[0])
        np.testing.assert_array_equal(scores[i], want_scores[0])


def test_exhaustive_path_without_scipy_kernels(monkeypatch):
    # Where scipy's compiled kernels are not importable, the public ``@`` does the product.
    titles, queries = make_corpus(3)
    r = BM25()
    r.index(titles)
    monkeypatch.setattr(search_module, "_EXHAUSTIVE_POSTINGS", 1 << 62)
    want = r.search(queries, 50)
    monkeypatch.setattr(search_module, "_csr_matmat", None)
    got = r.search(queries, 50)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])
    assert (got[0] >= 0).sum() > 100


def test_ties_broken_by_lower_row():
    titles = ["red shoe", "blue shoe", "red shoe", "shoe red", "red shoe"] * 3
    r = BM25(tokenizer=PLAIN)
    r.index(titles)
    rows, scores = r.search(["red shoe"], 20)
    identical = [i for i, t in enumerate(titles) if t in ("red shoe", "shoe red")]
    assert rows[0, : len(identical)].tolist() == identical
    assert len(set(scores[0, : len(identical)].tolist())) == 1
    assert rows[0, len(identical) :].tolist()[:3] == [1, 6, 11]


def test_last_term_head_when_the_candidates_score_low(monkeypatch):
    # MaxScore ends with one frequent term (dense row, impact order) after a rare one whose only
    # row is a very long title: that candidate scores below the frequent term's best rows, so the
    # top k are k rows of the frequent term's postings alone, the k-th included.
    monkeypatch.setattr(bm25_module, "_DENSE_MIN_ITEMS", 1)
    monkeypatch.setattr(bm25_module, "_DENSE_FRACTION", 4)
    rng = np.random.default_rng(0)
    titles = ["zzz " + " ".join(f"pad{i}" for i in range(500))]
    for i in range(199):
        words = ["common"] * int(rng.integers(1, 6)) if i < 150 else []
        titles.append(" ".join(words + [f"w{j}" for j in rng.integers(0, 300, rng.integers(1, 8))]))
    fast, ref = BM25(k1=2.0, b=1.0, tokenizer=PLAIN), RankBM25(k1=2.0, b=1.0, tokenizer=PLAIN)
    fast.index(titles)
    ref.index(titles)
    queries = ["zzz common", "common zzz w1"]
    ref_rows, ref_scores = ref.search(queries, 200)
    assert 0 not in ref_rows[0, :20]  # the rare term's row is not in the top 20
    for k in (1, 2, 5, 10, 20, 200):
        _assert_same(fast.search(queries, k), (ref_rows[:, :k], ref_scores[:, :k]), queries)


def test_repeated_term_ties_made_by_rounding(monkeypatch):
    # A term counted 3 times: float32 rounds 3 * w of two weights 2 ulps apart to one value, and
    # the lower row (of the lower weight, later in impact order) must then win the tie, even past
    # the first k postings. b is chosen to make two rows' weights of "x" that close.
    monkeypatch.setattr(bm25_module, "_DENSE_MIN_ITEMS", 1)
    monkeypatch.setattr(bm25_module, "_DENSE_FRACTION", 4)
    docs = []
    for dl in range(1, 80):
        docs += [" ".join(["x"] + ["f"] * (dl - 1)), " ".join(["x"] * 2 + ["f"] * (148 + 2 * dl))]
    docs[1] = docs[1].replace(" f", " z", 1)  # a rare term: MaxScore ends on "x" (_last_term)
    r = BM25(k1=0.9, b=0.4736841788067292, tokenizer=PLAIN)
    r.index(docs)
    x, z = r._vocab.terms["x"], r._vocab.terms["z"]
    w = r._dense[r._dense_row[x]]
    assert w[111] > w[110] and w[111] * np.float32(3) == w[110] * np.float32(3)
    for query, counts in (("z x x x", ((z, 1), (x, 3))), ("x x x", ((x, 3),))):
        # every row's float32 score, terms added in the search's order, ties by the lower row
        s = np.zeros(r.n_items, np.float32)
        for term, c in counts:
            lo, hi = r._indptr[term], r._indptr[term + 1]
            s[r._docs[lo:hi]] += r._w[lo:hi] * np.float32(c)
        for k in (110, 111, 112, 150):
            expected = np.lexsort((np.arange(r.n_items), -s))[:k]
            rows, scores = r.search([query], k)
            np.testing.assert_array_equal(rows[0], expected, err_msg=f"{query} k={k}")
            np.testing.assert_array_equal(scores[0], s[expected])


@pytest.mark.parametrize("head", [4, 12, 64, 4096])
def test_pair_heads_short_or_long_give_the_dense_pass_results(head, monkeypatch):
    # Heads of a few rows, or of every row: results equal to the dense pass's, to the bit.
    monkeypatch.setattr(bm25_module, "_DENSE_MIN_ITEMS", 1)
    monkeypatch.setattr(bm25_module, "_DENSE_FRACTION", 4)
    monkeypatch.setattr(bm25_module, "_PAIR_HEAD", head)
    monkeypatch.setattr(search_module, "_SAMPLE", 8)
    monkeypatch.setattr(search_module, "_PROBE_RATIO", np.inf)  # no probe ends MaxScore early
    rng = np.random.default_rng(head)
    words = make_words(rng, 30)
    titles = make_texts(rng, words, 800, (1, 12), p=1 / np.arange(1, 31) ** 0.8)
    queries = make_texts(rng, words, 150, (2, 6))
    r = BM25(tokenizer=PLAIN)
    r.index(titles)
    for k in (1, 2, 5, 20):  # pairs serve k up to half their head
        with monkeypatch.context() as m:
            _use_path(m, "dense-pass")
            want = r.search(queries, k)
        with monkeypatch.context() as m:
            _use_path(m, "pair-head")
            calls = _count_calls(m, search_module.BM25Search, "_pair_finish")
            got = r.search(queries, k)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])
        assert (calls[0] > 0) == (2 * k <= head)


def _count_calls(monkeypatch, cls, name) -> list[int]:
    """Count the calls of method ``name`` of ``cls`` (in a one-item list)."""
    calls = [0]
    method = getattr(cls, name)

    def counted(*args, **kwargs):
        calls[0] += 1
        return method(*args, **kwargs)

    monkeypatch.setattr(cls, name, counted)
    return calls


def test_pair_head_full_of_candidates(monkeypatch):
    # The rows of the pair (a, b) with the largest sums are the short titles, which the rare
    # term x makes candidates: a head of 4 holds no other row. Those candidates beat every row
    # after the head, so the top 2 is among them.
    monkeypatch.setattr(bm25_module, "_DENSE_MIN_ITEMS", 1)
    monkeypatch.setattr(bm25_module, "_DENSE_FRACTION", 4)  # x (6 of 56 items) is rare
    monkeypatch.setattr(bm25_module, "_PAIR_HEAD", 4)
    monkeypatch.setattr(search_module, "_PROBE_RATIO", np.inf)  # no probe ends MaxScore early
    titles = ["a b x"] * 6 + ["a b y z w"] * 20 + ["a y", "b z", "y z w v"] * 10
    r, ref = BM25(tokenizer=PLAIN), RankBM25(tokenizer=PLAIN)
    r.index(titles)
    ref.index(titles)
    _use_path(monkeypatch, "pair-head")
    calls = _count_calls(monkeypatch, search_module.BM25Search, "_pair_finish")
    for k in (1, 2):
        _assert_same(r.search(["x a b"], k), ref.search(["x a b"], k), ["x a b"])
    assert calls == [2]


def test_dense_pass_guess_never_lets_unmatched_rows_in(monkeypatch):
    # With the guess always tried, a sample of mostly zeros guesses 0: it must not be taken.
    monkeypatch.setattr(bm25_module, "_DENSE_MIN_ITEMS", 1)
    monkeypatch.setattr(bm25_module, "_DENSE_FRACTION", 4)
    _use_path(monkeypatch, "dense-pass-guess")
    r = BM25(tokenizer=PLAIN)
    r.index(["a b d"] * 10 + ["c"] * 30)
    rows, scores = r.search(["a b d"], 20)
    assert rows[0, :10].tolist() == list(range(10)) and np.all(scores[0, :10] > 0)
    assert np.all(rows[0, 10:] == -1) and np.all(np.isneginf(scores[0, 10:]))


def test_k_larger_than_matches_and_catalog():
    r = BM25(tokenizer=PLAIN)
    r.index(TINY)
    rows, scores = r.search(["cherry", "banana"], 50)
    assert rows.shape == (2, 50)
    assert rows[0, :2].tolist() == [1, -1] and rows[1, :3].tolist() == [2, 0, -1]
    assert np.all(rows[:, 3:] == -1) and np.all(np.isneginf(scores[:, 3:]))


@pytest.mark.parametrize("cls", [BM25, RankBM25])
def test_empty_catalog_returns_empty_results(cls):
    # Decision: an empty catalog (or one whose items hold no term) indexes fine and every search
    # returns only -1 / -inf, like a query that matches nothing.
    for texts in ([], ["", "the of", "!!!"]):
        r = cls()
        r.index(texts)
        rows, scores = r.search(["anything", ""], 3)
        assert rows.tolist() == [[-1] * 3] * 2 and np.all(np.isneginf(scores))
        assert r.search([], 3)[0].shape == (0, 3)


@pytest.mark.parametrize("cls", [BM25, RankBM25])
def test_errors(cls):
    r = cls()
    with pytest.raises(RuntimeError):
        r.search(["x"], 3)
    r.index(TINY)
    with pytest.raises(ValueError):
        r.search(["x"], 0)
    with pytest.raises(TypeError):
        r.search("apple", 3)
    with pytest.raises(ValueError):
        cls(k1=-1)
    with pytest.raises(ValueError):
        cls(b=2)


def test_protocol_registry_and_config():
    for name, cls in (("bm25", BM25), ("rank_bm25", RankBM25)):
        r = make_retriever(name, k1=1.2, b=0.75)
        assert isinstance(r, cls) and isinstance(r, Retriever) and r.name == name
        cfg = r.config()
        assert cfg["k1"] == 1.2 and cfg["b"] == 0.75 and cfg["fields"] is None
        assert cfg["tokenizer"] == Tokenizer().config() and cfg["version"]
    assert BM25().config() == {**RankBM25().config(), "name": "bm25"}
    assert BM25(tokenizer={"stemmer": None}).tokenizer == Tokenizer(stemmer=None)


def test_memory_bytes():
    r = BM25()
    assert r.memory_bytes() == 0
    r.index(TINY * 100)
    assert 0 < r.memory_bytes() < 100_000


def test_catalog_fields():
    catalog = Catalog(
        ids=np.array(["a", "b"]),
        titles=["red shoe", "blue hat"],
        fields={"brand": ["Acme", "Zenith"], "color": ["crimson", "navy"]},
    )
    everything, titles_only, brand = BM25(), BM25(fields=[]), BM25(fields=["brand"])
    for r in (everything, titles_only, brand):
        r.index(catalog)
    assert everything.search(["navy"], 2)[0].tolist() == [[1, -1]]
    assert titles_only.search(["navy", "hat"], 2)[0].tolist() == [[-1, -1], [1, -1]]
    assert brand.search(["acme crimson", "red"], 2)[0].tolist() == [[0, -1], [0, -1]]
    ref = RankBM25(fields=["brand"])
    ref.index(catalog)
    assert ref.search(["acme crimson", "red"], 2)[0].tolist() == [[0, -1], [0, -1]]


def test_threads_give_the_same_results():
    titles, queries = make_corpus(5)
    one, two = BM25(n_threads=1), BM25(n_threads=2)
    one.index(titles)
    two.index(titles)
    queries = queries * 10
    for a, b in zip(one.search(queries, 10), two.search(queries, 10)):
        np.testing.assert_array_equal(a, b)


def test_concurrent_searches_of_one_index():
    titles, queries = make_corpus(4)
    r = BM25()
    r.index(titles)
    queries = [f"{q} new{i}-word" for i, q in enumerate(queries)]  # unseen words, split in two
    expect = r.search(queries, 10)
    with ThreadPoolExecutor(4) as pool:
        for rows, scores in pool.map(lambda _: r.search(queries, 10), range(8)):
            np.testing.assert_array_equal(rows, expect[0])
            np.testing.assert_array_equal(scores, expect[1])


def test_unicode_and_garbage_queries():
    r = BM25()
    r.index(["Café au lait mug", "CAFE table", "\ud800 broken \x00 item"])
    rows, _ = r.search(["café", "\ud800\udfff", "title:(café OR table)^3", "🎉" * 1000], 3)
    assert sorted(rows[0, :2].tolist()) == [0, 1]
    assert rows[1].tolist() == [-1, -1, -1]
    assert rows[2, 0] == 1  # "cafe table" holds both terms
    assert rows[3].tolist() == [-1, -1, -1]
