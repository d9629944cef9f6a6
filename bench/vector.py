"""Steps per second of the native vector env against Gymnasium's SyncVectorEnv, same run.

    python bench/vector.py [--env RecQuery-v0] [--sizes 1 16 64 256] [--seconds 1] [--rounds 7]

Both step the same registered env with the same actions (each sub-env's own request as its
query, i.e. the identity policy), with SAME_STEP autoreset. The native env scores all N queries
with one batched retrieval; SyncVectorEnv calls N single-query steps. The two alternate round by
round (see ``_rounds.py``): the table shows each one's best round and the median over rounds of
the per-round ratio.
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
from _rounds import alternate, median_ratio
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
    parser.add_argument("--seconds", type=float, default=1.0, help="time per round and env")
    parser.add_argument("--rounds", type=int, default=7, help="alternating rounds")
    args = parser.parse_args()
    gym.make(args.env)  # build the world and index once, outside the timings
    print(f"env {args.env}; steps/s (sub-env steps per second)\n")
    print("| N | native, best round | sync, best round | native / sync, median | range |")
    print("|---|---|---|---|---|")
    for n in args.sizes:
        native = gym.make_vec(args.env, num_envs=n, vectorization_mode="vector_entry_point")
        sync = gym.make_vec(
            args.env,
            num_envs=n,
            vectorization_mode="sync",
            vector_kwargs={"autoreset_mode": AutoresetMode.SAME_STEP},
        )
        rates = alternate(
            {
                "native": lambda e=native: steps_per_second(e, args.seconds),
                "sync": lambda e=sync: steps_per_second(e, args.seconds),
            },
            args.rounds,
        )
        ratios = sorted(a / b for a, b in zip(rates["native"], rates["sync"]))
        print(
            f"| {n} | {max(rates['native']):,.0f} | {max(rates['sync']):,.0f} | "
            f"{median_ratio(rates['native'], rates['sync']):.1f}x | "
            f"{ratios[0]:.1f}x to {ratios[-1]:.1f}x |",
            flush=True,
        )


if __name__ == "__main__":
    main()
