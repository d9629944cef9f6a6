"""stable-baselines3 PPO on RecQuery-v0 through recgym's classic-agent wrappers, against random.

The env is wrapped, not changed: :class:`recgym.wrappers.TermActions` (the action picks up to
``max_terms`` of the request's own words, by position; or, with ``--vocabulary train``, of the
training requests' most frequent words) and
:class:`recgym.wrappers.HashedBagOfWords` (the request as a hashed bag-of-words vector). sb3's
``PPO("MlpPolicy")`` trains on it as on any Gymnasium env; the trained (deterministic) policy and
a uniformly random one are then scored on the same test tasks. Docs: docs/baselines.md.

    python -m baselines.sb3_ppo --seed 1
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

import recgym  # noqa: F401  (registers the environment ids)
from recgym.wrappers import HashedBagOfWords, TermActions


@dataclass
class Args:
    exp_name: str = "sb3_ppo"
    """name of the experiment in the run name"""
    seed: int = 1
    """seed of sb3, the env and the random baseline"""
    env_id: str = "RecQuery-v0"
    """registered recgym id"""
    env_kwargs: str = "{}"
    """JSON keyword arguments of gym.make"""
    vocabulary: str = "request"
    """TermActions vocabulary: 'request' (the request's own words) or 'train' (the most frequent
    words of the training requests)"""
    vocab_size: int = 12
    """word slots ('request') or vocabulary size ('train') the action chooses from"""
    max_terms: int = 6
    """words per query"""
    obs_dim: int = 2048
    """hashed bag-of-words dimension"""
    total_timesteps: int = 20_000
    """environment steps (one query each) of PPO training"""
    n_envs: int = 8
    """parallel sub-environments (sb3 DummyVecEnv)"""
    n_steps: int = 256
    """rollout length per sub-environment per PPO update"""
    batch_size: int = 256
    """PPO minibatch size"""
    learning_rate: float = 3e-4
    """Adam learning rate"""
    ent_coef: float = 0.01
    """entropy bonus"""
    eval_split: str = "test"
    """split the trained and random policies are compared on"""
    eval_limit: int = 500
    """first N tasks of the evaluation split (0: all)"""
    runs_dir: str = "runs"
    """where run directories are created"""


def make_wrapped(args: Args) -> gym.Env:
    env = gym.make(args.env_id, **json.loads(args.env_kwargs))
    env = TermActions(env, vocabulary=args.vocabulary, size=args.vocab_size,
                      max_terms=args.max_terms)
    return HashedBagOfWords(env, dim=args.obs_dim)


def mean_reward(env: gym.Env, act: Callable[[np.ndarray], Any], split: str,
                limit: int) -> float:
    """Mean reward of ``act(observation) -> action`` over the first ``limit`` tasks of ``split``."""
    tasks = env.unwrapped.tasks
    rows = tasks.split(split)[: limit or None]
    total = 0.0
    for row in rows:
        obs, _ = env.reset(options={"task_id": tasks[row].id})
        total += env.step(act(obs))[1]
    return total / max(len(rows), 1)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.logger import configure

    from baselines.common import parse_args
    from baselines.runlog import plot_sb3_curve, start_run

    args = parse_args(Args, argv)
    torch.set_num_threads(1)  # a small MLP: more threads only add contention
    run_dir = start_run(args, "sb3_ppo")

    vec = make_vec_env(lambda: make_wrapped(args), n_envs=args.n_envs, seed=args.seed)
    # One query per episode: no bootstrapping (gamma = lambda = 1), the value is a baseline.
    model = PPO("MlpPolicy", vec, n_steps=args.n_steps, batch_size=args.batch_size, gamma=1.0,
                gae_lambda=1.0, learning_rate=args.learning_rate, ent_coef=args.ent_coef,
                seed=args.seed, verbose=0, device="cpu")
    model.set_logger(configure(str(run_dir), ["csv", "stdout"]))
    start = time.time()
    model.learn(total_timesteps=args.total_timesteps)
    train_s = time.time() - start

    env = make_wrapped(args)
    env.action_space.seed(args.seed)
    result = {
        "seed": args.seed,
        "split": args.eval_split,
        "trained": mean_reward(env, lambda o: model.predict(o, deterministic=True)[0],
                               args.eval_split, args.eval_limit),
        "random": mean_reward(env, lambda o: env.action_space.sample(), args.eval_split,
                              args.eval_limit),
        "train_seconds": train_s,
        "run_dir": str(run_dir),
    }
    (run_dir / "eval.json").write_text(json.dumps(result, indent=2))
    plot_sb3_curve(run_dir / "progress.csv", run_dir / "learning_curve.png",
                   f"sb3 PPO on {args.env_id} (seed {args.seed})")
    model.save(run_dir / "model.zip")
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
