"""recgym.history: rendering, chronological grouping, leave-last-out tasks."""

import numpy as np
import pytest

from recgym.catalog import Catalog, Task
from recgym.history import (
    History,
    group_histories,
    last_item_query,
    leave_last_out,
    next_item_task,
    next_item_tasks,
    render_history,
)


def test_render_history_one_line_per_item_newest_last():
    text = render_history(["A (1990)", "B\nwith a break", "  C  "], [4.0, float("nan"), 3.5])
    assert text.splitlines() == ["A (1990) (rated 4)", "B with a break", "C (rated 3.5)"]
    assert render_history(["A", "B", "C"], max_items=2) == "B\nC"
    assert render_history([]) == ""
    assert render_history([""]) == "(untitled)"


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_render_history_rejects_bad_caps(bad):
    with pytest.raises(ValueError, match="max_items"):
        render_history(["A"], max_items=bad)
    with pytest.raises(ValueError, match="2 titles but 1 ratings"):
        render_history(["A", "B"], [1.0])


def test_group_histories_is_chronological_with_ties_in_file_order():
    users = ["u2", "u1", "u2", "u1", "u2"]
    items = [0, 1, 2, 3, 4]
    times = [30, 5, 10, 5, 10]
    out = group_histories(users, np.array(items), np.array(times), np.array([1, 2, 3, 4, 5.0]))
    assert [h.user for h in out] == ["u2", "u1"]  # order of first interaction
    assert out[0].items.tolist() == [2, 4, 0] and out[0].ratings.tolist() == [3, 5, 1]
    assert out[1].items.tolist() == [1, 3]  # tie at t=5 keeps file order
    assert [h.user for h in group_histories([7, 3, 7], np.array([0, 1, 2]))] == ["7", "3"]
    assert group_histories([], np.array([])) == []
    with pytest.raises(ValueError, match="one user, item"):
        group_histories(["a"], np.array([1, 2]))


def test_leave_last_out_positions():
    assert leave_last_out(5, "by_user") == [(None, 4)]
    assert leave_last_out(5, "last_out") == [("test", 4), ("val", 3), ("train", 2)]
    assert leave_last_out(3, "last_out", min_history=2) == [("test", 2)]
    assert leave_last_out(1, "by_user") == []
    with pytest.raises(ValueError, match="Did you mean 'last_out'"):
        leave_last_out(5, "last-out")


def histories(n_users=40):
    rng = np.random.default_rng(0)
    return [History(f"u{u}", rng.permutation(20)[: rng.integers(2, 9)]) for u in range(n_users)]


def test_last_out_tasks_never_show_the_judged_item_or_what_follows():
    ids = np.array([f"i{k}" for k in range(20)])
    titles = [f"Title {k}" for k in range(20)]
    hs = histories()
    tasks = next_item_tasks(hs, ids, titles, scheme="last_out", max_history=3)
    by_id = {t.id: t for t in tasks}
    for h in hs:
        seq = ids[h.items].tolist()
        test = by_id[f"{h.user}/test"]
        assert list(test.judgments) == [seq[-1]] and test.split == "test"
        assert test.fields["history"] == seq[:-1][-3:] and test.fields["n_history"] == len(seq) - 1
        assert test.request.splitlines() == [f"Title {i[1:]}" for i in seq[:-1][-3:]]
        if len(seq) >= 3:
            val = by_id[f"{h.user}/val"]
            assert list(val.judgments) == [seq[-2]] and seq[-1] not in val.fields["history"]
    assert {t.split for t in tasks} == {"train", "val", "test"}


def test_by_user_tasks_split_users_reproducibly():
    ids = np.array([f"i{k}" for k in range(20)])
    titles = [f"T{k}" for k in range(20)]
    a = next_item_tasks(histories(), ids, titles, seed=3)
    b = next_item_tasks(histories(), ids, titles, seed=3)
    assert [(t.id, t.split, t.request) for t in a] == [(t.id, t.split, t.request) for t in b]
    assert len({t.id for t in a}) == len(a) == 40  # one task per user
    assert {t.split for t in a} <= {"train", "val", "test"}
    c = next_item_tasks(histories(), ids, titles, seed=4)
    assert [t.split for t in a] != [t.split for t in c]


def test_next_item_task_shows_ratings_only_when_asked():
    h = History("u", np.array([0, 1, 2]), np.array([5.0, 4.0, 1.0]))
    ids, titles = np.array(["a", "b", "c"]), ["A", "B", "C"]
    task = next_item_task(h, 2, "test", "u/test", ids, titles)
    assert task.request == "A (rated 5)\nB (rated 4)" and dict(task.judgments) == {"c": 1.0}
    assert next_item_task(h, 2, "test", "x", ids, titles, show_ratings=False).request == "A\nB"
    with pytest.raises(ValueError, match="max_history"):
        next_item_tasks([h], ids, titles, max_history=0)


def test_last_item_query_is_the_newest_title_shown():
    identity = last_item_query(Catalog(ids=["a", "b"], titles=["Alpha", "Beta"]))
    task = Task("t", "Beta\nAlpha", {"c": 1.0}, "test", {"history": ["b", "a"]})
    assert identity(task) == "Alpha"
    assert identity(Task("t", "", {"c": 1.0}, "test", {"history": []})) == ""
