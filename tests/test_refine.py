"""Multi-turn refinement: feedback, stop action, per-turn rewards, truncation."""

import gymnasium as gym
import numpy as np
import pytest
from conftest import SMALL

from recgym.env import RecQueryEnv

REFINE = SMALL | {"turns": 3, "feedback_top_n": 5}


@pytest.fixture
def env():
    return RecQueryEnv(**REFINE)


def test_feedback_shows_only_titles_of_what_the_query_retrieved(env):
    obs0, info = env.reset(seed=0)
    assert obs0 == info["task"]["request"]
    obs1, _, terminated, truncated, step = env.step("black cotton")
    assert not terminated and not truncated and step["turn"] == 1
    catalog = env.catalog
    shown = [catalog.titles[r] for r in catalog.rows(step["retrieved"][:5])]
    assert obs1.startswith(obs0) and all(title in obs1 for title in shown)
    # No other catalog title appears anywhere in what the agent reads.
    others = set(catalog.titles) - set(shown)
    assert not any(title in obs1 for title in others if len(title) > 12)
    assert "Your query: black cotton" in obs1 and "STOP" in obs1


def test_improvement_rewards_sum_to_the_best_score(env):
    for seed in range(5):
        obs, info = env.reset(seed=seed)
        queries = [obs, "cheap", info["task"]["request"] + " premium"]
        rewards, scores = [], []
        for q in queries:
            _, r, terminated, truncated, step = env.step(q)
            rewards.append(r)
            scores.append(step["metrics"]["ndcg@100"])
        assert truncated and not terminated
        assert sum(rewards) == pytest.approx(max(scores))
        assert all(r >= 0 for r in rewards)


def test_final_turn_reward_and_stop(env):
    final = RecQueryEnv(**REFINE | {"turn_reward": "final"})
    obs, _ = final.reset(seed=1)
    assert final.step(obs)[1] == 0.0
    _, _, terminated, _, info = final.step("STOP")
    assert terminated and info["turn"] == 2
    final.reset(seed=1)
    _, first, *_ = final.step(obs)
    assert first == 0.0


def test_stop_on_the_first_turn_is_defined(env):
    env.reset(seed=0)
    _, reward, terminated, truncated, info = env.step("  STOP ")
    assert reward == 0.0 and terminated and not truncated
    assert info["invalid_reason"] == "stop_before_any_query"
    with pytest.raises(gym.error.ResetNeeded):
        env.step("more")


def test_empty_query_mid_episode_is_an_invalid_turn(env):
    env.reset(seed=0)
    env.step("black")
    obs, reward, terminated, truncated, info = env.step("   ")
    assert (
        reward == 0.0 and info["invalid_reason"] == "empty_query" and not (terminated or truncated)
    )
    assert "(invalid: empty_query)" in obs
    *_, truncated, _ = env.step("cotton")
    assert truncated


def test_registered_refine_env_truncates_through_time_limit():
    env = gym.make("RecQueryRefine-v0", **SMALL)
    env.reset(seed=0)
    flags = [env.step(f"query {t}")[2:4] for t in range(3)]
    assert flags == [(False, False), (False, False), (False, True)]


def test_observation_fits_the_space(env):
    obs, _ = env.reset(seed=0)
    for _ in range(3):
        assert env.observation_space.contains(obs)
        obs, *_ = env.step("x" * 1000)
    assert np.isfinite(len(obs))
