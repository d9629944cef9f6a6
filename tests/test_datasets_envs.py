"""The registered dataset environments over fixture data: check_env, determinism, pickling."""

import pickle

import gymnasium as gym
import pytest
from dataset_fixtures import DATASETS
from gymnasium.utils.env_checker import check_env

import recgym
from recgym.datasets import MissingDataError

pytestmark = pytest.mark.filterwarnings("ignore::recgym.datasets.DataWarning")


@pytest.fixture(scope="module")
def kwargs_of(tmp_path_factory):
    root = tmp_path_factory.mktemp("datasets")
    out = {}
    for env_id, (write, extra) in DATASETS.items():
        folder = write(root / env_id)
        out[env_id] = {"world_kwargs": {"data_dir": str(folder), **extra}}
    return out


def test_every_dataset_id_is_registered_and_covered():
    dataset_worlds = {"beir", "esci", "wands", "movielens", "recbole", "amazon2023"}
    ids = {i for i in recgym.ENV_IDS if gym.spec(i).kwargs.get("world") in dataset_worlds}
    assert ids == set(DATASETS)
    for env_id in ids:
        assert "data_dir" not in gym.spec(env_id).kwargs.get("world_kwargs", {})


@pytest.mark.parametrize("env_id", sorted(DATASETS))
def test_without_data_dir_the_error_says_what_and_where(env_id):
    with pytest.raises(MissingDataError, match=r"needs data_dir: a local folder with .*published "
                                               r"at https://"):
        gym.make(env_id)


@pytest.mark.parametrize("env_id", sorted(DATASETS))
def test_check_env_passes(env_id, kwargs_of, recwarn):
    env = gym.make(env_id, **kwargs_of[env_id])
    check_env(env.unwrapped, skip_render_check=False)
    assert not [w for w in recwarn if "gymnasium" in str(w.filename)]


@pytest.mark.parametrize("env_id", sorted(DATASETS))
def test_determinism_rollout(env_id, kwargs_of):
    def rollout():
        env = gym.make(env_id, **kwargs_of[env_id])
        env.action_space.seed(7)
        out = []
        for episode in range(6):
            obs, info = env.reset(seed=100 + episode)
            action = env.action_space.sample() if episode % 2 else obs
            out.append((obs, env.step(action)[1:4], info["task"]["id"]))
        return out

    first = rollout()
    assert first == rollout()
    assert all(isinstance(obs, str) and obs for obs, _, _ in first)


@pytest.mark.parametrize("env_id", sorted(DATASETS))
def test_envs_pickle(env_id, kwargs_of):
    env = gym.make(env_id, **kwargs_of[env_id])
    obs, _ = env.reset(seed=4)
    clone = pickle.loads(pickle.dumps(env))
    assert clone.step(obs)[1] == env.step(obs)[1]
    assert clone.reset(seed=9)[0] == env.reset(seed=9)[0]


def test_the_identity_query_finds_beir_documents(kwargs_of):
    env = gym.make("RecQuery-BEIR-v0", **kwargs_of["RecQuery-BEIR-v0"])
    _, info = env.reset(options={"task_id": "q3"})
    _, reward, *_, info = env.step(info["task"]["request"])
    assert info["retrieved"][0] == "d3" and reward == 1.0  # nDCG@10 of a perfect ranking
