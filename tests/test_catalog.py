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
    got = cat.ids_of(np.array([[3, 0], [1, 1]]))
    assert got == [["d", "a"], ["b", "b"]] == cat.ids[[[3, 0], [1, 1]]].tolist()
    assert got[1][0] is got[1][1] is cat.ids_of(np.array([1]))[0]  # one str per id, shared
    assert cat.ids_of(np.array([], dtype=np.int64)) == []


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


def test_task_to_dict_is_a_fresh_copy_each_time():
    fields = {"type": "mug", "attributes": {"color": ["red", "blue"]}, "n": 3}
    task = Task("t", "a red mug", {"a": 1.0}, "train", fields)
    first = task.to_dict()
    assert first == {"id": "t", "request": "a red mug", "split": "train", **fields}
    first["attributes"]["color"].append("green")  # callers may mutate what they got
    first["type"] = "cup"
    second = task.to_dict(with_judgments=True)
    assert second["attributes"] == {"color": ["red", "blue"]} and second["type"] == "mug"
    assert second["judgments"] == {"a": 1.0} and "judgments" not in task.to_dict()
    assert task.fields == fields and task == Task("t", "a red mug", {"a": 1.0}, "train", fields)
    assert pickle.loads(pickle.dumps(task)).to_dict() == task.to_dict()
    # Nested values without containers inside (copied shallowly) are fresh copies too.
    flat = Task("f", "a mug", {"a": 1.0}, "train", {"attributes": {"color": "red"}, "tags": ["x"]})
    got = flat.to_dict()
    got["attributes"]["color"] = "blue"
    got["tags"].append("y")
    assert flat.to_dict()["attributes"] == {"color": "red"} and flat.to_dict()["tags"] == ["x"]


def test_taskset_rows_of_ids_and_of_rows():
    tasks = TaskSet([Task(f"t{i}", "q", {}, "train") for i in range(5)])
    assert tasks.rows(["t3", 1, np.int64(4)]).tolist() == [3, 1, 4]
    assert tasks.rows([4, 0]).tolist() == [4, 0] and tasks.rows([]).tolist() == []
    assert tasks.rows(np.array([2, 2], dtype=np.int32)).dtype == np.int64
    for rows in ([0, 5], np.array([-1, 0]), [0, "t1", 7]):
        with pytest.raises(IndexError, match=r"out of range \[0, 5\)"):
            tasks.rows(rows)
    for rows in ([0, True], np.array([True]), [1.0]):  # not rows, and no such ids
        with pytest.raises(KeyError, match="unknown task id"):
            tasks.rows(rows)
    with pytest.raises(KeyError, match="did you mean 't1'"):
        tasks.rows(["t1x"])


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


LAYOUTS = {
    # (bytes per judgment below which the dense layout is used, scratch cells of the sparse one)
    "dense": (1 << 40, Qrels.SCRATCH_CELLS),
    "sparse-one-group": (0, 1 << 18),
    "sparse-groups": (0, 60),
    "sparse-one-each": (0, 1),
}


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("n_levels", [3, 12, 200])
def test_qrels_lookup_matches_dict_lookups(seed, layout, n_levels, monkeypatch):
    # Random judgments (some tasks with none, zero gains, items at both ends of the catalog),
    # batches that repeat tasks, and -1 rows next to judged items: each gain equals a plain dict
    # look-up, in the dense layout (2-, 4- and 8-bit codes) and in the sparse one (whether the
    # tasks fit one group of the scratch table, several, or one task each).
    dense_bytes, scratch = LAYOUTS[layout]
    monkeypatch.setattr(Qrels, "DENSE_BYTES_PER_JUDGMENT", dense_bytes)
    monkeypatch.setattr(Qrels, "SCRATCH_CELLS", scratch)
    rng = np.random.default_rng(seed)
    n_items = int(rng.integers(1, 30))
    ids = [f"i{j}" for j in range(n_items)]
    cat = Catalog(ids=ids, titles=ids)
    levels = np.linspace(0.0, 3.0, n_levels + 1)  # 0 and n_levels positive gains
    tasks = []
    for t in range(int(rng.integers(1, 8))):
        judged = rng.choice(n_items, size=int(rng.integers(0, n_items + 1)), replace=False)
        gains = {ids[j]: float(rng.choice(levels)) for j in judged}
        tasks.append(Task(f"t{t}", "q", gains, "test"))
    qrels = Qrels(TaskSet(tasks), cat)
    assert (qrels._codes is not None) == (layout == "dense")
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


def test_qrels_with_more_gain_levels_than_codes_use_the_sparse_layout(monkeypatch):
    monkeypatch.setattr(Qrels, "DENSE_BYTES_PER_JUDGMENT", 1 << 40)
    ids = [f"i{j}" for j in range(300)]
    gains = {item: 1.0 + j for j, item in enumerate(ids)}  # 300 levels: more than 8 bits hold
    qrels = Qrels(TaskSet([Task("t", "q", gains, "test")]), Catalog(ids=ids, titles=ids))
    assert qrels._codes is None
    assert qrels.lookup(np.array([0]), np.array([[299, 0, -1]])).tolist() == [[300.0, 1.0, 0.0]]


def test_generated_worlds_use_the_dense_layout():
    # 20,000 items, about 400 judgments a task: the code matrix is smaller than the sparse keys.
    from recgym.env import _qrels

    qrels = _qrels("shop", "{}")
    assert qrels._codes is not None and qrels._codes.nbytes < 16 * qrels.n_judgments


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
