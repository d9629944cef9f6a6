"""Registration from the packaged specs, including from a non-editable install outside the repo."""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import gymnasium as gym
import pytest

import recgym
from recgym.cli import main
from recgym.registration import load_specs

REPO = Path(__file__).resolve().parents[1]


def test_every_spec_file_is_registered():
    files = sorted(p.stem for p in (REPO / "envs").glob("*.toml"))
    assert files == [s.id for s in load_specs()] == recgym.ENV_IDS
    assert "RecQuery-v0" in files
    for env_id in files:
        assert gym.spec(env_id).entry_point == "recgym.env:RecQueryEnv"


def test_recgym_list_prints_ids(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert all(env_id in out for env_id in recgym.ENV_IDS)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(REPO),
        ],
        check=True,
        capture_output=True,
    )
    return next(out.glob("recgym-*.whl"))


def test_wheel_ships_specs_and_lexicon(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert "recgym/specs/RecQuery-v0.toml" in names
    assert "recgym/worlds/shop_lexicon/attributes.toml" in names


def test_non_editable_install_registers_outside_the_repo(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "-q",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    code = (
        "import gymnasium as gym, recgym.env as e, sys\n"
        "assert 'site' in e.__file__, e.__file__\n"
        "env = gym.make('recgym:RecQuery-v0', world_kwargs={'n_items': 500, 'n_tasks': 50})\n"
        "obs, info = env.reset(seed=0)\n"
        "print(env.step(obs)[2])\n"
    )
    env = dict(os.environ, PYTHONPATH=str(target))
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"
