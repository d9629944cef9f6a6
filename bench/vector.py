"""Steps per second of the native vector env against Gymnasium's SyncVectorEnv, same run.

    python bench/vector.py [--env RecQuery-v0] [--sizes 1 16 64 256] [--seconds 3]

Both step the same registered env with the same actions (each sub-env's own request as its
query, i.e. the identity policy), with SAME_STEP autoreset. The native env scores all N queries
with one batched retrieval; SyncVectorEnv calls N single-query steps.
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="RecQuery-v0")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 16, 64, 256])
    parser.add_argument("--seconds", type=float, default=3.0, help="time per measurement")
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
        a, b = steps_per_second(native, args.seconds), steps_per_second(sync, args.seconds)
        print(f"| {n} | {a:,.0f} | {b:,.0f} | {a / b:.1f}x |")


if __name__ == "__main__":
    main()
