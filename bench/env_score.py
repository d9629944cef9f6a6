"""What env.score adds over the retriever alone, on batches of queries, same run.

    python bench/env_score.py [--env RecQuery-v0] [--batch 1024] [--repeats 7]

Times `retriever.search(queries, depth)` and `env.unwrapped.score(task_ids, queries)` on the same
batch of requests (the identity policy) and reports the overhead: parsing, capping, judgment
lookup, metrics, reward and info dicts. The two alternate, and each keeps its best time, so that
a slow spell of a shared machine does not fall on one of them only.
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym

import recgym  # noqa: F401


def best_of(fns: dict, repeats: int) -> dict:
    """Each function's best time over ``repeats`` rounds, the functions alternating."""
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="RecQuery-v0")
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--split", default="train")
    args = parser.parse_args()
    env = gym.make(args.env).unwrapped
    rows = env.tasks.split(args.split)[: args.batch].tolist()
    queries = [env.tasks[r].request for r in rows]
    depth = env.config.depth
    best = best_of(
        {
            "search": lambda: env.retriever.search(queries, depth),
            "score": lambda: env.score(rows, queries),
        },
        args.repeats,
    )
    search, score = best["search"], best["score"]
    print(f"env {args.env}, {len(rows)} queries, depth {depth}, best of {args.repeats}\n")
    print("| | seconds | queries/s |")
    print("|---|---|---|")
    print(f"| retriever.search | {search:.4f} | {len(rows) / search:,.0f} |")
    print(f"| env.score | {score:.4f} | {len(rows) / score:,.0f} |")
    print(f"\nenv.score overhead over the retriever alone: {100 * (score / search - 1):.1f}%")


if __name__ == "__main__":
    main()
