"""The sequential shop: histories, splits (inductive, OOD), judgments, reference policies."""

import gymnasium as gym
import numpy as np
import pytest

from recgym.worlds import load_world
from recgym.worlds.shop_seq import HEADER, SEQ_GAINS, build_seq_world

KW = {"n_items": 3000, "n_users": 300, "seed": 1}


@pytest.fixture(scope="module")
def world():
    return load_world("shop_seq", **KW)


def test_same_catalog_as_the_search_shop(world):
    shop = load_world("shop", n_items=3000, n_tasks=600, seed=1)
    assert world.catalog.content_hash() == shop.catalog.content_hash()


def test_histories_are_rendered_newest_last_and_capped(world):
    for task in world.tasks.tasks[:50]:
        assert task.request.startswith(HEADER)
        lines = task.request[len(HEADER) :].split("\n")
        shown = task.fields["history"]
        assert 1 <= len(shown) <= 20 and len(lines) == len(shown)
        assert 5 <= task.fields["n_history"] <= 30
        titles = [world.catalog.titles[r] for r in world.catalog.rows(shown)]
        assert lines == titles
    capped = build_seq_world(**KW | {"max_history": 3})
    assert all(len(t.fields["history"]) <= 3 for t in capped.tasks.tasks)


def test_splits_inductive_and_ood(world):
    sizes = world.tasks.sizes()
    assert sizes == {
        "train": 180,
        "val": 30,
        "test": 30,
        "test_inductive": 30,
        "test_ood_category": 30,
    }
    index, tasks = world.hidden, world.tasks.tasks
    target = {t.id: int(index.target[n]) for n, t in enumerate(tasks)}
    seen = {r for t in tasks if t.split == "train" for r in world.catalog.rows(t.fields["history"])}
    seen |= {target[t.id] for t in tasks if t.split == "train"}
    inductive = [target[t.id] for t in tasks if t.split == "test_inductive"]
    assert inductive and not set(inductive) & seen
    held = {t.fields["department"] for t in tasks if t.split == "test_ood_category"}
    assert held and not held & {t.fields["department"] for t in tasks if t.split == "train"}


def test_judgments(world):
    index = world.hidden
    for n, task in enumerate(world.tasks.tasks[:60]):
        target = int(index.target[n])
        judged = dict(task.judgments)
        assert judged[world.catalog.ids[target]] == SEQ_GAINS["target"]
        assert set(judged.values()) <= set(SEQ_GAINS.values())
        assert sum(g == 1.0 for g in judged.values()) == 1


def test_reference_policies_have_headroom():
    from recgym.policies import evaluate, make_policy

    env = gym.make("RecQuerySeq-v0", world_kwargs={"n_items": 5000, "n_users": 600, "seed": 2})
    scores = {
        p: evaluate(env, make_policy(p, env), "test")["metrics"]["ndcg@100"]
        for p in ("identity", "oracle", "random")
    }
    assert scores["oracle"] > 3 * scores["identity"] > 0
    assert scores["random"] < scores["oracle"] / 10


def test_bad_arguments():
    with pytest.raises(ValueError, match="n_users"):
        build_seq_world(n_items=1000, n_users=2)
    with pytest.raises(ValueError, match="max_history"):
        build_seq_world(n_items=1000, n_users=20, max_history=0)
    assert np.isfinite(len(build_seq_world(n_items=1000, n_users=20).tasks))
