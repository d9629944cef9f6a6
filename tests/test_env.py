"""RecQueryEnv against the contract of DESIGN.md, on a small shop world."""

import math
import pickle
import time

import gymnasium as gym
import numpy as np
import pytest
from conftest import GENERATED_IDS, SMALL, small
from gymnasium.utils.env_checker import check_env
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recgym.env import RecQueryEnv
from recgym.metrics import ndcg


def test_reset_and_step_follow_the_contract(small_env):
    obs, info = small_env.reset(seed=0)
    assert isinstance(obs, str) and obs == info["task"]["request"]
    assert info["task"]["split"] == "train" and "judgments" not in info["task"]
    obs2, reward, terminated, truncated, info = small_env.step(obs)
    assert obs2 == obs and terminated and not truncated
    assert set(info["metrics"]) >= {"ndcg@10", "ndcg@100", "recall@10", "recall@100", "mrr@100"}
    assert reward == pytest.approx(info["metrics"]["ndcg@100"])
    assert info["query"] == obs and info["format_valid"] and info["invalid_reason"] is None
    assert len(info["retrieved"]) == 10 and all(isinstance(i, str) for i in info["retrieved"])


def test_reward_matches_an_independent_recomputation(small_env):
    """The reward is nDCG@100 of the retrieved ids against the task's judgments, by hand."""
    base = small_env.unwrapped
    obs, info = small_env.reset(seed=3)
    task = base.tasks[base.tasks.row(info["task"]["id"])]
    rows, _ = base.retriever.search([obs], 100)
    ids = base.catalog.ids[rows[0][rows[0] >= 0]]
    gains = np.array([[task.judgments.get(i, 0.0) for i in ids] + [0.0] * (100 - len(ids))])
    ideal = np.array([sorted(task.judgments.values(), reverse=True)[:100]])
    dcg = sum(g / np.log2(r + 2) for r, g in enumerate(gains[0]))
    idcg = sum(g / np.log2(r + 2) for r, g in enumerate(ideal[0]))
    _, reward, *_ = small_env.step(obs)
    assert reward == pytest.approx(dcg / idcg if idcg else 0.0, abs=1e-9)
    assert reward == pytest.approx(ndcg(gains, ideal, 100)[0], abs=1e-9)


def test_score_batches_equal_single_steps(small_env):
    base = small_env.unwrapped
    rows = base.tasks.split("test")[:20]
    queries = [base.tasks[r].request for r in rows]
    rewards, infos = base.score(rows.tolist(), queries)
    assert rewards.shape == (20,) and rewards.dtype == np.float64 and len(infos) == 20
    for r, q, reward in zip(rows, queries, rewards):
        small_env.reset(options={"task_id": base.tasks[r].id})
        assert small_env.step(q)[1] == pytest.approx(reward)
    ids = [base.tasks[r].id for r in rows]
    assert np.array_equal(base.score(ids, queries)[0], rewards)


def test_reset_options(small_env):
    base = small_env.unwrapped
    task_id = base.tasks[base.tasks.split("val")[5]].id
    _, info = small_env.reset(options={"task_id": task_id})
    assert info["task"]["id"] == task_id
    _, info = small_env.reset(seed=1, options={"split": "test_ood_category"})
    assert info["task"]["split"] == "test_ood_category"
    with pytest.raises(ValueError, match=r"valid splits: .*test_ood_phrasing"):
        small_env.reset(options={"split": "tset"})
    with pytest.raises(KeyError, match="unknown task id"):
        small_env.reset(options={"task_id": "nope"})
    with pytest.raises(ValueError, match="reset option"):
        small_env.reset(options={"taskid": task_id})


def test_seeded_resets_are_reproducible(small_env):
    first = [small_env.reset(seed=s)[1]["task"]["id"] for s in range(5)]
    again = [small_env.reset(seed=s)[1]["task"]["id"] for s in range(5)]
    assert first == again and len(set(first)) > 1


@pytest.mark.parametrize("env_id", GENERATED_IDS)
def test_check_env_passes_without_warnings(env_id, recwarn):
    env = gym.make(env_id, **small(env_id))
    check_env(env.unwrapped, skip_render_check=False)
    assert not [w for w in recwarn if "gymnasium" in str(w.filename) or "recgym" in str(w.message)]


@pytest.mark.parametrize("env_id", GENERATED_IDS)
def test_determinism_rollout(env_id):
    def rollout():
        env = gym.make(env_id, **small(env_id))
        env.action_space.seed(7)
        out = []
        for episode in range(10):
            obs, info = env.reset(seed=100 + episode)
            action = env.action_space.sample() if episode % 2 else obs
            out.append((obs, env.step(action)[1:4], info["task"]["id"]))
        return out

    assert rollout() == rollout()


@pytest.mark.parametrize("env_id", GENERATED_IDS)
def test_envs_pickle(env_id):
    env = gym.make(env_id, **small(env_id))
    obs, _ = env.reset(seed=4)
    clone = pickle.loads(pickle.dumps(env))
    assert clone.step(obs)[1] == env.step(obs)[1]
    assert clone.reset(seed=9)[0] == env.reset(seed=9)[0]


def test_step_errors(small_env):
    with pytest.raises(gym.error.ResetNeeded):
        RecQueryEnv(**SMALL).step("mug")
    small_env.reset(seed=0)
    with pytest.raises(TypeError, match="expected a str"):
        small_env.step(42)
    small_env.step("mug")
    with pytest.raises(gym.error.ResetNeeded, match="episode has ended"):
        small_env.unwrapped.step("mug")


@pytest.mark.parametrize("query", ["", "   ", "\n\t"])
def test_empty_query_scores_zero_with_a_reason(small_env, query):
    small_env.reset(seed=0)
    _, reward, terminated, _, info = small_env.step(query)
    assert reward == 0.0 and math.copysign(1.0, reward) == 1.0 and terminated  # not -0.0
    assert info["invalid_reason"] == "empty_query" and not info["format_valid"]
    assert info["retrieved"] == [] and all(v == 0.0 for v in info["metrics"].values())


def test_score_of_an_empty_batch_and_of_a_batch_with_invalid_queries(small_env):
    env = small_env.unwrapped
    rewards, infos = env.score([], [])
    assert rewards.shape == (0,) and infos == []
    rows = env.tasks.split("test")[:3].tolist()
    rewards, infos = env.score(rows, ["red mug", "  ", "blue mug"])
    valid_rewards, valid_infos = env.score(rows[::2], ["red mug", "blue mug"])
    # Equal up to float64 rounding: metrics reduce whole batch arrays, whose shapes differ.
    assert rewards[[0, 2]].tolist() == pytest.approx(valid_rewards.tolist(), rel=1e-12)
    for got, want in zip([infos[0], infos[2]], valid_infos):
        assert got["metrics"] == pytest.approx(want["metrics"], rel=1e-12)
        assert {**got, "metrics": None} == {**want, "metrics": None}
    assert infos[1]["invalid_reason"] == "empty_query" and infos[1]["retrieved"] == []


def test_huge_and_garbage_queries_are_capped_quickly(small_env):
    small_env.reset(seed=0)
    for query in [
        "mug " * 250_000,
        "\x00\x01\x7f" * 1000,
        "\ud800\udfff" * 500,
        "title:(a OR b)^3 *?~\\",
    ]:
        start = time.perf_counter()
        _, reward, *_, info = small_env.step(query)
        assert time.perf_counter() - start < 1.0
        assert np.isfinite(reward)
        if len(query) > 256:
            assert info["capped"]["chars"] == len(query) and len(info["query"]) <= 256
        small_env.reset(seed=0)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.text(max_size=400))
def test_any_string_is_a_legal_step(small_env, text):
    small_env.reset(seed=0)
    _, reward, terminated, _, info = small_env.step(text)
    assert terminated and np.isfinite(reward) and 0.0 <= reward <= 1.0
    assert info["format_valid"] == bool(text[:256].strip())


def test_rec_r1_format(small_r1_env):
    obs, info = small_r1_env.reset(seed=0)
    assert "<answer>" in obs and info["task"]["request"] in obs
    _, reward, _, _, info = small_r1_env.step(info["task"]["request"])
    assert reward == pytest.approx(-0.1) and info["invalid_reason"] == "missing_tag:<think>"
    small_r1_env.reset(seed=0)
    answer = '<think>a mug</think><answer>{"query": "travel mug"}</answer>'
    _, reward, _, _, info = small_r1_env.step(answer)
    assert info["format_valid"] and info["query"] == "travel mug" and reward >= 0.0


def test_reward_specs_and_penalties():
    env = RecQueryEnv(reward="0.5*ndcg@10+0.5*recall@100", length_penalty=0.01, **SMALL)
    env.reset(seed=2)
    _, reward, _, _, info = env.step("black cotton t-shirt")
    m = info["metrics"]
    assert reward == pytest.approx(0.5 * m["ndcg@10"] + 0.5 * m["recall@100"] - 0.03)
    # the penalty counts the terms of the capped query
    env = RecQueryEnv(length_penalty=0.01, max_query_terms=4, **SMALL)
    env.reset(seed=2)
    _, reward, _, _, info = env.step("black cotton t-shirt " * 5)
    assert info["capped"] == {"chars": 105, "terms": 15} and info["query"].split() == [
        "black",
        "cotton",
        "t-shirt",
        "black",
    ]
    assert reward == pytest.approx(info["metrics"]["ndcg@100"] - 0.04)
    env = RecQueryEnv(popularity_penalty=1.0, **SMALL)
    env.reset(seed=2)
    _, reward, _, _, info = env.step("black cotton t-shirt")
    assert 0.0 < info["metrics"]["popularity@10"] <= 1.0
    assert reward == pytest.approx(info["metrics"]["ndcg@100"] - info["metrics"]["popularity@10"])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"reward": "ndgc@10"}, "Did you mean 'ndcg'"),
        ({"reward": "ndcg@1000"}, "depth >= 1000"),
        ({"reward": "ndcg"}, "cutoff|@"),
        ({"retriever": "bm52"}, "valid retrievers: bm25"),
        ({"world": "shops"}, "valid worlds: .*shop"),
        ({"split": "trian"}, "Did you mean 'train'"),
        ({"prompt": "chatty"}, "template containing"),
        ({"parser": "json"}, "valid parsers"),
        ({"depth": 0}, "positive integer"),
        ({"n_items": 10}, "unknown RecQueryEnv argument 'n_items'"),
        ({"turn_reward": "best"}, "valid turn_rewards: final, improvement"),
    ],
)
def test_bad_configuration_says_what_is_valid(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RecQueryEnv(**SMALL | kwargs)


def test_unknown_env_id_suggests():
    with pytest.raises(gym.error.Error, match="RecQuery"):
        gym.make("RecQuery-v9")


def test_render_ansi(small_env):
    env = RecQueryEnv(render_mode="ansi", **SMALL)
    assert "reset" in env.render()
    obs, _ = env.reset(seed=0)
    env.step(obs)
    text = env.render()
    assert obs in text and "ndcg@100=" in text and "1. [gain" in text


def test_agent_never_sees_catalog_text(small_env):
    """Observations and infos carry the request, ids and numbers; never an item's title or text."""
    base = small_env.unwrapped
    titles = set(base.catalog.titles)
    obs, info = small_env.reset(seed=0)
    _, _, _, _, step_info = small_env.step(obs)
    blob = repr((obs, info, step_info))
    assert not any(t in blob for t in titles)
    assert not any(d in blob for d in base.catalog.fields["description"][:2000])
