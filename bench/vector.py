"""Steps per second of the native vector env against Gymnasium's SyncVectorEnv, same run.

    python bench/vector.py [--env RecQuery-v0] [--sizes 1 16 64 256] [--seconds 1] [--rounds 5]

Both step the same registered env with the same actions (each sub-env's own request as its
query, i.e. the identity policy), with SAME_STEP autoreset. The native env scores all N queries
with one batched retrieval; SyncVectorEnv calls N single-query steps. The two are timed in
alternating rounds and each keeps its best round, so that a slow spell of a shared machine does
not fall on one of them only.
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
from gymnasium.vector import AutoresetMode

import recgym  # noqa: F401


def steps_per_second(envs, seconds: float) -> float:
    obs, _ = envs.reset(seed=0)
    n_steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        obs, *_ = envs.step(list(obs))
        n_steps += envs.num_envs
    return n_steps / (time.perf_counter() - start)


def best_of_rounds(envs: dict, seconds: float, rounds: int) -> dict:
    """Each env's best steps/s over ``rounds`` rounds, the envs alternating within a round."""
    best = dict.fromkeys(envs, 0.0)
    for _ in range(rounds):
        for name, env in envs.items():
            best[name] = max(best[name], steps_per_second(env, seconds))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="RecQuery-v0")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 16, 64, 256])
    parser.add_argument("--seconds", type=float, default=1.0, help="time per round and env")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds (best kept)")
    args = parser.parse_args()
    gym.make(args.env)  # build the world and index once, outside the timings
    print(f"env {args.env}; steps/s (sub-env steps per second)\n")
    print("| N | native | SyncVectorEnv | native / sync |")
    print("|---|---|---|---|")
    for n in args.sizes:
        native = gym.make_vec(args.env, num_envs=n, vectorization_mode="vector_entry_point")
        sync = gym.make_vec(
            args.env,
            num_envs=n,
            vectorization_mode="sync",
            vector_kwargs={"autoreset_mode": AutoresetMode.SAME_STEP},
        )
        best = best_of_rounds({"native": native, "sync": sync}, args.seconds, args.rounds)
        a, b = best["native"], best["sync"]
        print(f"| {n} | {a:,.0f} | {b:,.0f} | {a / b:.1f}x |")


if __name__ == "__main__":
    main()
