"""Shared fixtures: a small shop world keeps env tests fast; the default one is built once."""

from __future__ import annotations

import gymnasium as gym
import pytest

import recgym  # noqa: F401  (registers the ids)
from recgym.registration import load_specs

SMALL = {"world_kwargs": {"n_items": 3000, "n_tasks": 600, "seed": 1}}
# Ids over generated worlds run anywhere; ids over real datasets need a data_dir (tested with
# fixture files in tests/test_datasets*.py).
GENERATED_WORLDS = ("shop", "shop_seq")
GENERATED_IDS = [s.id for s in load_specs() if s.kwargs.get("world") in GENERATED_WORLDS]
_SMALL_WORLDS = {
    "shop": SMALL["world_kwargs"],
    "shop_seq": {"n_items": 3000, "n_users": 300, "seed": 1},
}


def small(env_id: str) -> dict:
    """gym.make keyword arguments that shrink a registered id's generated world for tests."""
    return {"world_kwargs": _SMALL_WORLDS[gym.spec(env_id).kwargs["world"]]}


@pytest.fixture
def small_env():
    env = gym.make("RecQuery-v0", **SMALL)
    yield env
    env.close()


@pytest.fixture
def small_r1_env():
    env = gym.make("RecQuery-R1-v0", **SMALL)
    yield env
    env.close()
