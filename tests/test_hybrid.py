"""Hybrid retrieval: fusion arithmetic by hand, then BM25 + the real dense model, small catalogs."""

import numpy as np
import pytest
from conftest import needs_dense

from recgym.cache import build_index
from recgym.catalog import Catalog

TITLES = ["red ceramic coffee mug", "stainless travel mug", "wireless mouse", "garden hose",
          "coffee beans dark roast", "mouse pad", "blue kettle", "tea cup and saucer"]
QUERIES = ["coffee mug", "mouse", "something to water plants", "", "mug for tea"]


def fuse(*args):
    from recgym.retrievers.hybrid import fuse

    return fuse(*args)


def rrf(rows, k=60):
    rows = np.asarray(rows)
    rank = np.arange(1, rows.shape[1] + 1)
    return np.where(rows >= 0, 1.0 / (k + rank), 0.0)


def test_reciprocal_rank_fusion_by_hand():
    sparse = np.array([[3, 1, 2]])
    dense = np.array([[1, 4, -1]])
    rows, scores = fuse([sparse, dense], [rrf(sparse), rrf(dense)], 5)
    # row 1: 1/62 + 1/61; row 3: 1/61; row 4: 1/62; row 2: 1/63
    assert rows.tolist() == [[1, 3, 4, 2, -1]]
    expected = np.float32([1 / 62 + 1 / 61, 1 / 61, 1 / 62, 1 / 63])
    assert np.array_equal(scores[0, :4], expected) and np.isneginf(scores[0, 4])


def test_equal_fused_scores_rank_the_lower_row_first():
    sparse = np.array([[7, 5], [-1, -1]])
    dense = np.array([[5, 7], [-1, -1]])
    rows, scores = fuse([sparse, dense], [rrf(sparse), rrf(dense)], 2)
    assert rows.tolist() == [[5, 7], [-1, -1]] and scores[0, 0] == scores[0, 1]
    assert np.isneginf(scores[1]).all()


def test_weighted_fusion_by_hand():
    from recgym.retrievers.hybrid import minmax_gains

    sparse_rows, sparse_scores = np.array([[0, 1, 2]]), np.array([[9.0, 5.0, 1.0]], np.float32)
    dense_rows, dense_scores = np.array([[2, 3, -1]]), np.array([[0.8, 0.4, -np.inf]], np.float32)
    gs = minmax_gains(sparse_rows, sparse_scores, 0.75)  # min-max: 1, 0.5, 0
    gd = minmax_gains(dense_rows, dense_scores, 0.25)  # min-max: 1, 0
    assert gs.tolist() == [[0.75, 0.375, 0.0]] and gd.tolist() == [[0.25, 0.0, 0.0]]
    rows, scores = fuse([sparse_rows, dense_rows], [gs, gd], 4)
    # row 0: 0.75; row 1: 0.375; row 2: 0 + 0.25; row 3: 0
    assert rows.tolist() == [[0, 1, 2, 3]]
    assert np.array_equal(scores[0], np.float32([0.75, 0.375, 0.25, 0.0]))
    one = minmax_gains(np.array([[4, -1]]), np.array([[3.0, -np.inf]], np.float32), 1.0)
    assert one.tolist() == [[1.0, 0.0]]  # a single item normalises to 1


def test_rrf_gains_by_hand():
    from recgym.retrievers.hybrid import rrf_gains

    assert rrf_gains(np.array([[5, 2, -1]]), 60).tolist() == [[1 / 61, 1 / 62, 0.0]]


@pytest.fixture(scope="module")
def hybrid_and_parts():
    from recgym.retrievers.hybrid import Hybrid

    catalog = Catalog(ids=[f"i{i}" for i in range(len(TITLES))], titles=TITLES)
    hybrid = Hybrid(dense={"progress": False})
    hybrid.index(catalog)
    return hybrid, catalog


@needs_dense
def test_hybrid_fuses_its_parts(hybrid_and_parts):
    hybrid, _ = hybrid_and_parts
    rows, scores = hybrid.search(QUERIES, 4)
    assert rows.shape == (5, 4) and scores.dtype == np.float32
    assert (rows[3] == -1).all() and np.isneginf(scores[3]).all()
    assert rows[1, 0] in (2, 5) and rows[0, 0] == 0
    lists = [part.search(QUERIES, 100) for part in hybrid.parts]
    expected = fuse([r for r, _ in lists], [rrf(r) for r, _ in lists], 4)
    assert np.array_equal(rows, expected[0]) and np.array_equal(scores, expected[1])
    assert hybrid.config()["dense"] == hybrid.dense.config()
    assert hybrid.config()["sparse"] == hybrid.sparse.config()


@needs_dense
def test_weighted_fusion_with_all_weight_on_dense_follows_dense(hybrid_and_parts):
    from recgym.retrievers.hybrid import Hybrid

    hybrid, catalog = hybrid_and_parts
    weighted = Hybrid(fusion="weighted", weight=1.0, dense={"progress": False})
    weighted.index(catalog)
    got = weighted.search(QUERIES, 5)[0]
    want = hybrid.dense.search(QUERIES, 5)[0]
    assert np.array_equal(got[:, :4], want[:, :4])


@needs_dense
def test_hybrid_is_cached_part_by_part(tmp_path, hybrid_and_parts):
    from recgym.retrievers.dense import Dense
    from recgym.retrievers.hybrid import Hybrid

    _, catalog = hybrid_and_parts
    cold = Hybrid(dense={"progress": False})
    first = build_index(cold, catalog, tmp_path).split("+")
    assert len(first) == 2 and first[1] == "built"
    warm = Hybrid(dense={"progress": False})
    assert build_index(warm, catalog, tmp_path).split("+")[1] == "loaded"
    assert build_index(Dense(progress=False), catalog, tmp_path) == "loaded"  # shared with dense
    for got, want in zip(warm.search(QUERIES, 5), cold.search(QUERIES, 5)):
        assert np.array_equal(got, want)


@needs_dense
@pytest.mark.parametrize("kwargs, match", [
    ({"fusion": "rff"}, "Did you mean 'rrf'"),
    ({"rrf_k": 0}, "rrf_k must be a finite number > 0"),
    ({"weight": 1.5}, r"weight must be a number in \[0, 1\]"),
    ({"candidates": 0}, "candidates must be a positive integer"),
])
def test_invalid_arguments(kwargs, match):
    from recgym.retrievers.hybrid import Hybrid

    with pytest.raises(ValueError, match=match):
        Hybrid(**kwargs)
