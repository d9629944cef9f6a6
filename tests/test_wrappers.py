"""recgym.wrappers: term actions from non-catalog vocabularies, hashed bag-of-words observations,
gymnasium's check_env on the wrapped env, and a stable-baselines3 smoke run."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from conftest import SMALL
from gymnasium.utils.env_checker import check_env

from recgym.wrappers import HashedBagOfWords, TermActions, request_words


def wrapped(env_id="RecQuery-v0", vocabulary="train", size=64, max_terms=3, dim=128):
    env = gym.make(env_id, **SMALL)
    return HashedBagOfWords(TermActions(env, vocabulary, size=size, max_terms=max_terms), dim=dim)


def test_request_words_drop_stopwords_and_repeats():
    assert request_words("A mug for the Mug lover, 16-oz and wi-fi!") == [
        "mug", "lover", "16-oz", "wi-fi"
    ]


def test_train_vocabulary_comes_from_training_requests_only():
    env = gym.make("RecQuery-v0", **SMALL)
    wrapper = TermActions(env, "train", size=200)
    base = env.unwrapped
    train_words = {
        w for r in base.tasks.split("train") for w in request_words(base.tasks[r].request)
    }
    assert len(wrapper.vocabulary) == 200
    assert set(wrapper.vocabulary) <= train_words
    # Every word is in a training request; none is taken from catalog text it does not share.
    catalog_only = {w for t in base.catalog.titles for w in request_words(t)} - train_words
    assert catalog_only and not catalog_only & set(wrapper.vocabulary)


def test_train_vocabulary_is_ranked_by_frequency():
    env = gym.make("RecQuery-v0", **SMALL)
    vocab = TermActions(env, "train", size=20).vocabulary
    base = env.unwrapped
    counts = {w: 0 for w in vocab}
    for r in base.tasks.split("train"):
        for w in request_words(base.tasks[r].request):
            if w in counts:
                counts[w] += 1
    freq = [counts[w] for w in vocab]
    assert freq == sorted(freq, reverse=True)


def test_request_vocabulary_picks_the_requests_own_words():
    env = TermActions(gym.make("RecQuery-v0", **SMALL), "request", size=8, max_terms=3)
    _obs, info = env.reset(seed=0)
    words = request_words(info["task"]["request"])
    assert env.action_space == gym.spaces.MultiDiscrete([9, 9, 9])
    assert env.query([2, 1, 2]) == f"{words[1]} {words[0]}"
    assert env.query([0, 0, 0]) == ""
    _, _reward, terminated, _, step_info = env.step(np.array([1, 2, 0]))
    assert terminated and step_info["query"] == f"{words[0]} {words[1]}"


def test_choosing_no_word_is_the_empty_query_step():
    env = TermActions(gym.make("RecQuery-v0", **SMALL), "train", size=16, max_terms=2)
    env.reset(seed=0)
    _, reward, _, _, info = env.step(np.zeros(2, dtype=np.int64))
    assert reward == 0.0 and info["invalid_reason"] == "empty_query"


def test_rec_r1_env_gets_the_answer_format():
    env = TermActions(gym.make("RecQuery-R1-v0", **SMALL), "train", size=16, max_terms=2)
    env.reset(seed=0)
    _, _, _, _, info = env.step(np.array([1, 2]))
    assert info["format_valid"] and info["query"] == " ".join(env.vocabulary[:2])


def test_hashed_bag_of_words_is_stable_and_normalised():
    env = wrapped(dim=64)
    vec = env.observation("Mug mug travel")
    expected = np.zeros(64)
    for word, count in (("mug", 2), ("travel", 1)):
        digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
        expected[int.from_bytes(digest, "little") % 64] += np.log1p(count)
    np.testing.assert_allclose(vec, expected / np.linalg.norm(expected), rtol=1e-6)
    assert vec.dtype == np.float32 and env.observation_space.contains(vec)
    assert not env.observation("the of and").any()


@pytest.mark.parametrize("env_id", ["RecQuery-v0", "RecQuery-R1-v0"])
@pytest.mark.parametrize("vocabulary", ["train", "request"])
def test_check_env_passes_on_the_wrapped_env(env_id, vocabulary):
    env = wrapped(env_id, vocabulary)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # check_env always notes that a wrapped env is not the unwrapped one; nothing else.
        warnings.filterwarnings("ignore", message=".*different from the unwrapped version")
        check_env(env, skip_render_check=True)


def test_bad_arguments_have_clear_errors():
    env = gym.make("RecQuery-v0", **SMALL)
    with pytest.raises(ValueError, match="Did you mean 'train'"):
        TermActions(env, "trian")
    with pytest.raises(ValueError, match="max_terms must be a positive integer"):
        TermActions(env, "train", max_terms=0)
    with pytest.raises(ValueError, match="dim must be a positive integer"):
        HashedBagOfWords(env, dim=0)


@pytest.mark.skipif(
    importlib.util.find_spec("stable_baselines3") is None,
    reason="stable-baselines3 is not installed (pip install -e '.[baselines]')",
)
def test_sb3_ppo_runs_on_the_wrapped_env(tmp_path):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # baselines/ is not installed
    from baselines import sb3_ppo

    result = sb3_ppo.main([
        "--env-kwargs", json.dumps(SMALL), "--total-timesteps", "64", "--n-envs", "2",
        "--n-steps", "32", "--batch-size", "32", "--vocab-size", "32", "--obs-dim", "64",
        "--eval-limit", "20", "--runs-dir", str(tmp_path),
    ])
    assert 0.0 <= result["trained"] <= 1.0 and 0.0 <= result["random"] <= 1.0
    run_dir = tmp_path / next(p.name for p in tmp_path.iterdir())
    for name in ("eval.json", "progress.csv", "learning_curve.png", "model.zip"):
        assert (run_dir / name).exists(), name


def test_module_example_runs():
    import doctest

    import recgym.wrappers

    assert doctest.testmod(recgym.wrappers).failed == 0
