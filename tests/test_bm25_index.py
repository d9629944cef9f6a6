"""BM25's index: pair heads of frequent terms, impact order, and the saved index state."""

from __future__ import annotations

import numpy as np
import pytest
from bm25_corpora import PLAIN, make_corpus, make_texts, make_words

from recgym.retrievers import bm25 as bm25_module
from recgym.retrievers.bm25 import BM25


def test_pair_heads_are_the_top_rows_of_each_pair():
    rng = np.random.default_rng(0)
    n_dense, n = 7, 500
    # few distinct weights and many zeros: ties everywhere
    dense = (rng.integers(0, 4, size=(n_dense, n)) * rng.integers(0, 2, size=(n_dense, n))).astype(
        np.float32
    ) / np.float32(3)
    dense[3] = 0  # a row without a single weight
    for head in (1, 5, 64, 1000):
        pair_id, ptr, rows, sums = bm25_module._pair_heads(dense, head)
        assert np.array_equal(pair_id, pair_id.T) and np.all(np.diag(pair_id) == -1)
        assert sorted(pair_id[pair_id >= 0].tolist()) == sorted(list(range(21)) * 2)
        for a in range(n_dense):
            for b in range(a + 1, n_dense):
                p = pair_id[a, b]
                total = dense[a] + dense[b]
                nonzero = np.flatnonzero(total)
                want = nonzero[np.lexsort((nonzero, -total[nonzero]))][:head]
                np.testing.assert_array_equal(rows[ptr[p] : ptr[p + 1]], want)
                np.testing.assert_array_equal(sums[ptr[p] : ptr[p + 1]], total[want])


def test_pair_heads_only_among_the_densest_terms(monkeypatch):
    monkeypatch.setattr(bm25_module, "_PAIR_TERMS", 3)
    dense = np.zeros((5, 10), dtype=np.float32)
    for i, count in enumerate([2, 9, 4, 7, 1]):
        dense[i, :count] = 1.0
    pair_id = bm25_module._pair_heads(dense, 4)[0]
    assert np.flatnonzero(pair_id.max(axis=1) >= 0).tolist() == [1, 2, 3]


@pytest.mark.parametrize("seed", range(20))
def test_rows_reaching_holds_the_top_k(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 30_000))
    values = rng.integers(0, int(rng.choice([2, 5, 1000])), size=n).astype(np.float32)
    values *= rng.random(n) < rng.choice([0.01, 0.5, 1.0])
    k = int(rng.integers(1, n + 1))
    got = bm25_module._rows_reaching(values, k)
    nonzero = np.flatnonzero(values)
    top = nonzero[np.argsort(-values[nonzero], kind="stable")][:k]
    assert set(top.tolist()) <= set(got.tolist())
    assert np.all(values[got] > 0) and np.all(np.diff(got) > 0)


def test_index_state_round_trip(tmp_path):
    titles, queries = make_corpus(3)
    r = BM25()
    r.index(titles)
    state = r.index_state()
    for name, array in state.items():
        np.save(tmp_path / f"{name}.npy", array)
    loaded = {name: np.load(tmp_path / f"{name}.npy", mmap_mode="r") for name in state}
    again = BM25()
    again.load_index_state(loaded)
    for a, b in zip(r.search(queries, 10), again.search(queries, 10)):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError):
        BM25().load_index_state({**loaded, "weights": loaded["weights"][:-1]})
    with pytest.raises(ValueError):
        BM25().load_index_state({"meta": loaded["meta"]})
    with pytest.raises(ValueError):
        BM25().load_index_state({**loaded, "pair_rows": loaded["pair_rows"][:-1]})


def test_index_state_with_bad_pair_heads_is_refused(monkeypatch):
    # Shapes and dtypes right, values wrong: each would crash the search or, worse, give wrong
    # results (heads of 16 rows read as heads of 4,096 serve k up to 2,048).
    monkeypatch.setattr(bm25_module, "_DENSE_MIN_ITEMS", 1)
    monkeypatch.setattr(bm25_module, "_DENSE_FRACTION", 4)
    monkeypatch.setattr(bm25_module, "_PAIR_HEAD", 16)
    rng = np.random.default_rng(1)
    words = make_words(rng, 12)
    r = BM25(tokenizer=PLAIN)
    r.index(make_texts(rng, words, 500, (1, 8)))
    state = r.index_state()
    assert len(state["pair_ptr"]) > 2 and int(state["pair_head"][0]) == 16
    BM25(tokenizer=PLAIN).load_index_state(state)  # as saved: fine
    rows, sums, ptr = state["pair_rows"], state["pair_scores"], state["pair_ptr"]
    swapped = rows.copy()
    swapped[[0, 1]] = swapped[[1, 0]]
    pair_id = state["pair_id"].copy()
    pair_id[0, 1] = -1  # no longer symmetric
    bad = {
        "rows out of range": {"pair_rows": rows + np.int32(1000)},
        "head size claimed larger": {"pair_head": np.array([4096])},
        "rows out of ranking order": {"pair_rows": swapped},
        "sums not those of the rows": {"pair_scores": sums * np.float32(2)},
        "pointers not from 0": {"pair_ptr": ptr + 1},
        "pair ids not symmetric": {"pair_id": pair_id},
        "pair ids of another dtype": {"pair_id": state["pair_id"].astype(np.int32)},
    }
    for name, change in bad.items():
        with pytest.raises(ValueError):
            BM25(tokenizer=PLAIN).load_index_state({**state, **change})
            pytest.fail(name)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("packed", [True, False])
def test_impact_order_matches_lexsort(seed, packed):
    # Postings term-major with rows ascending, as the index has them; weights with many ties.
    rng = np.random.default_rng(seed)
    n_terms, n_items = int(rng.integers(1, 50)), int(rng.integers(1, 3000))
    df = rng.integers(0, min(n_items, 200) + 1, size=n_terms)
    term = np.repeat(np.arange(n_terms), df)
    docs = np.concatenate(
        [np.sort(rng.choice(n_items, size=d, replace=False)) for d in df] or [np.zeros(0)]
    ).astype(np.int32)
    levels = rng.choice([2, 50, 10**6])
    w = (rng.integers(1, levels + 1, size=len(term)) * rng.choice([1e-3, 1.0, 7.5])).astype(
        np.float32
    )
    # Far too many items for packed keys: the argsort path.
    items = n_items if packed else 1 << 40
    rows, weights = bm25_module._impact_order(term, docs, w, n_terms, items)
    order = np.lexsort((docs, -w, term))  # term, then weight descending, then row
    np.testing.assert_array_equal(rows, docs[order])
    np.testing.assert_array_equal(weights, w[order])
    assert rows.dtype == np.int32 and weights.dtype == np.float32


def test_index_is_the_same_without_packed_keys(monkeypatch):
    titles, _ = make_corpus(5)
    monkeypatch.setattr(bm25_module, "_DENSE_MIN_ITEMS", 1)
    monkeypatch.setattr(bm25_module, "_DENSE_FRACTION", 4)
    packed = BM25()
    packed.index(titles)
    monkeypatch.setattr(bm25_module, "_PACKED_KEY_BITS", 0)
    sorted_ = BM25()
    sorted_.index(titles)
    for name, array in packed.index_state().items():
        np.testing.assert_array_equal(array, sorted_.index_state()[name], err_msg=name)
