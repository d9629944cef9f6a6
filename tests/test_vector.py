"""The native vector env against Gymnasium's sync and async vector envs."""

import gymnasium as gym
import numpy as np
import pytest
from conftest import GENERATED_IDS, SMALL, small
from gymnasium.vector import AutoresetMode


def make(env_id, mode, n, **extra):
    kwargs = (
        {"vector_kwargs": {"autoreset_mode": AutoresetMode.SAME_STEP}}
        if mode != "vector_entry_point"
        else {}
    )
    if mode == "async":
        kwargs["vector_kwargs"]["shared_memory"] = False
    return gym.make_vec(
        env_id, num_envs=n, vectorization_mode=mode, **small(env_id), **extra, **kwargs
    )


def rollout(envs, steps=4, seed=3):
    obs, infos = envs.reset(seed=seed)
    out = [(tuple(obs), tuple(infos["task"]["id"]))]
    for t in range(steps):
        actions = [f"{o.split()[0] if o.split() else 'x'} {t}" for o in obs]
        obs, rewards, terminated, truncated, infos = envs.step(actions)
        out.append((tuple(obs), tuple(np.round(rewards, 12)), tuple(terminated), tuple(truncated)))
    envs.close()
    return out


@pytest.mark.parametrize("env_id", GENERATED_IDS)
def test_native_matches_sync(env_id):
    assert rollout(make(env_id, "vector_entry_point", 4)) == rollout(make(env_id, "sync", 4))


def test_native_matches_async():
    assert rollout(make("RecQuery-v0", "vector_entry_point", 3), steps=2) == rollout(
        make("RecQuery-v0", "async", 3), steps=2
    )


def test_sub_env_i_is_seeded_with_seed_plus_i():
    envs = make("RecQuery-v0", "vector_entry_point", 3)
    _, infos = envs.reset(seed=10)
    single = gym.make("RecQuery-v0", **SMALL)
    expected = [single.reset(seed=10 + i)[1]["task"]["id"] for i in range(3)]
    assert list(infos["task"]["id"]) == expected


def test_infos_layout_and_final_info():
    envs = make("RecQuery-v0", "vector_entry_point", 4)
    obs, _ = envs.reset(seed=0)
    obs2, rewards, terminated, _, infos = envs.step(list(obs))
    assert terminated.all() and rewards.shape == (4,)
    assert infos["_final_info"].all() and "ndcg@100" in infos["final_info"]["metrics"]
    assert np.allclose(infos["final_info"]["metrics"]["ndcg@100"], rewards)
    assert infos["_task"].all() and obs2 != obs


def test_vector_env_errors():
    envs = make("RecQuery-v0", "vector_entry_point", 2)
    with pytest.raises(RuntimeError, match="reset"):
        envs.step(["a", "b"])
    envs.reset(seed=0)
    with pytest.raises(ValueError, match="2 sub-environments"):
        envs.step(["a"])
    with pytest.raises(TypeError, match="expected a str"):
        envs.step(["a", 3])


SOME_KEYS = [
    {"a": 1.0, "b": {"c": True, "d": "x"}, "final_obs": "o"},
    None,
    {"a": 2.0, "e": [1, 2]},
]
# The common case: every sub-environment reports the same keys (values of every kind, lists of
# different lengths that must stay one element each, keys in different orders).
ALL_KEYS = [
    {"a": 1.0, "n": 3, "b": {"c": True, "d": "x"}, "e": [1, 2], "f": None, "final_obs": "o"},
    {"n": 4, "a": 2.0, "b": {"d": "y", "c": False}, "e": [], "f": "s", "final_obs": "p"},
    {"a": 0.5, "n": 5, "b": {"c": True, "d": "z"}, "e": [3], "f": (1,), "final_obs": "q"},
]


@pytest.mark.parametrize("infos", [SOME_KEYS, ALL_KEYS], ids=["some-keys", "all-keys"])
def test_stack_infos_matches_gymnasium_add_info(infos):
    from gymnasium.vector import VectorEnv

    from recgym.vector import stack_infos

    expected: dict = {}
    adder = VectorEnv()
    adder.num_envs = 3
    for i, info in enumerate(infos):
        if info:
            expected = adder._add_info(expected, info, i)
    got = stack_infos(infos, 3)

    def same(x, y):
        if isinstance(x, dict):
            return x.keys() == y.keys() and all(same(x[k], y[k]) for k in x)
        return x.dtype == y.dtype and list(x) == list(y)

    assert same(got, expected)
