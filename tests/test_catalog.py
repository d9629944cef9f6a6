import pickle

import numpy as np
import pytest

from recgym.catalog import (
    ArrayJudgments,
    Catalog,
    Qrels,
    Task,
    TaskSet,
    assign_splits,
    stable_fraction,
)


def small_catalog():
    return Catalog(
        ids=["a", "b", "c", "d"],
        titles=["red mug", "blue mug", "tea", "pot"],
        fields={"brand": ["X", "Y", "", "Z"]},
        categories=["k", "k", "g", "k"],
        popularity=[4, 3, 2, 1],
    )


def test_catalog_texts_and_rows():
    cat = small_catalog()
    assert cat.texts() == ["red mug X", "blue mug Y", "tea", "pot Z"]
    assert cat.texts(["brand"]) == ["X", "Y", "", "Z"]
    assert cat.rows(["c", "zz", "a"]).tolist() == [2, -1, 0]
    with pytest.raises(ValueError, match="Did you mean 'brand'"):
        cat.texts(["brnd"])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"ids": ["a", "a"], "titles": ["x", "y"]}, "'a' appears more than once"),
        ({"ids": ["a"], "titles": ["x", "y"]}, "1 ids but 2 titles"),
        ({"ids": ["a"], "titles": ["x"], "popularity": [-1.0]}, "non-negative"),
        ({"ids": ["a"], "titles": ["x"], "fields": {"f": []}}, "field 'f'"),
    ],
)
def test_catalog_rejects_bad_data(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Catalog(**kwargs)


def test_content_hash_changes_with_text_only():
    a, b = small_catalog(), small_catalog()
    assert a.content_hash() == b.content_hash()
    c = Catalog(ids=a.ids, titles=["red mug", "blue mug", "tea", "pots"], fields=a.fields)
    assert c.content_hash() != a.content_hash()


def test_taskset_splits_are_disjoint_and_named():
    tasks = TaskSet([Task(f"t{i}", "q", {}, "train" if i % 3 else "test") for i in range(9)])
    train, test = tasks.split("train"), tasks.split("test")
    assert set(train) & set(test) == set() and len(train) + len(test) == 9
    with pytest.raises(ValueError, match="valid splits: test, train"):
        tasks.split("dev")
    with pytest.raises(ValueError, match="unique"):
        TaskSet([Task("x", "q", {}, "train"), Task("x", "q", {}, "test")])
    with pytest.raises(ValueError, match=">= 0"):
        Task("x", "q", {"a": -1.0}, "train")


def test_qrels_lookup_ideal_and_unknown_items():
    cat = small_catalog()
    tasks = TaskSet(
        [
            Task("t0", "mug", {"a": 2.0, "b": 1.0, "ghost": 3.0}, "test"),
            Task("t1", "tea", {"c": 1.0}, "test"),
            Task("t2", "none", {}, "test"),
        ]
    )
    with pytest.warns(UserWarning, match="1 judgments name items that are not in the catalog"):
        qrels = Qrels(tasks, cat)
    assert qrels.n_unknown == 1
    gains = qrels.lookup(np.array([0, 1, 2]), np.array([[1, 0, -1], [2, 0, 3], [0, 1, 2]]))
    assert gains.tolist() == [[1.0, 2.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]]
    assert qrels.ideal_gains(np.array([0, 1, 2]), 3).tolist() == [[2, 1, 0], [1, 0, 0], [0, 0, 0]]
    assert qrels.n_relevant.tolist() == [2, 1, 0]


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("scratch", [1 << 18, 60, 1], ids=["one-group", "groups", "one-each"])
def test_qrels_lookup_matches_dict_lookups(seed, scratch, monkeypatch):
    # Random judgments (some tasks with none, items at both ends of the catalog), batches that
    # repeat tasks, and -1 rows next to judged items: each gain equals a plain dict look-up,
    # whether the tasks fit one group of the scratch table, several, or one task each.
    monkeypatch.setattr(Qrels, "SCRATCH_CELLS", scratch)
    rng = np.random.default_rng(seed)
    n_items = int(rng.integers(1, 30))
    ids = [f"i{j}" for j in range(n_items)]
    cat = Catalog(ids=ids, titles=ids)
    tasks = []
    for t in range(int(rng.integers(1, 8))):
        judged = rng.choice(n_items, size=int(rng.integers(0, n_items + 1)), replace=False)
        gains = {ids[j]: float(rng.integers(0, 4)) for j in judged}
        tasks.append(Task(f"t{t}", "q", gains, "test"))
    qrels = Qrels(TaskSet(tasks), cat)
    task_rows = rng.integers(len(tasks), size=int(rng.integers(0, 12)))
    item_rows = rng.integers(-1, n_items, size=(len(task_rows), 6))
    want = [
        [tasks[t].judgments.get(ids[j], 0.0) if j >= 0 else 0.0 for j in row]
        for t, row in zip(task_rows, item_rows)
    ]
    assert qrels.lookup(task_rows, item_rows).tolist() == want
    assert qrels.lookup(task_rows, item_rows).tolist() == want  # the table was left all zero
    copy = pickle.loads(pickle.dumps(qrels))  # its per-thread scratch table is not pickled
    assert copy.lookup(task_rows, item_rows).tolist() == want


def test_array_judgments_is_a_mapping_equal_to_its_dict():
    cat = small_catalog()
    judged = ArrayJudgments(cat.ids, np.array([3, 0]), np.array([0.1, 1.0]))
    assert dict(judged) == {"d": 0.1, "a": 1.0} and len(judged) == 2 and judged["a"] == 1.0
    with pytest.raises(KeyError):
        judged["b"]
    tasks = TaskSet([Task("t", "q", judged, "test")])
    assert Qrels(tasks, cat).lookup(np.array([0]), np.array([[0, 3, 1]])).tolist() == [
        [1.0, 0.1, 0.0]
    ]


def test_stable_fraction_is_reproducible_and_uniform():
    keys = [f"user{i}" for i in range(20000)]
    a = stable_fraction(keys, seed=1)
    assert np.array_equal(a, stable_fraction(keys, seed=1))
    assert not np.array_equal(a, stable_fraction(keys, seed=2))
    assert a.min() >= 0.0 and a.max() < 1.0 and abs(a.mean() - 0.5) < 0.01


def test_assign_splits_is_reproducible_and_proportional():
    keys = [f"user{i}" for i in range(20_000)]
    fractions = {"train": 0.8, "val": 0.1, "test": 0.1}
    splits = assign_splits(keys, fractions, seed=0)
    assert splits.tolist() == assign_splits(keys, fractions, seed=0).tolist()
    for name, share in fractions.items():
        assert abs((splits == name).mean() - share) < 0.01
    # a key's split does not depend on the other keys
    assert assign_splits(keys[:10], fractions, 0).tolist() == splits[:10].tolist()
    assert assign_splits(keys, fractions, seed=1).tolist() != splits.tolist()
    with pytest.raises(ValueError, match="sum to 1"):
        assign_splits(keys, {"train": 0.8, "test": 0.1}, 0)
    with pytest.raises(ValueError, match="positive"):
        assign_splits(keys, {"train": 1.1, "test": -0.1}, 0)
