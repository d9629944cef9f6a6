"""What env.score adds over the retriever alone, on batches of queries, same run.

    python bench/env_score.py [--env RecQuery-v0] [--batch 1024] [--repeats 15]

Times `retriever.search(queries, depth)` and `env.unwrapped.score(task_ids, queries)` on the same
batch of requests (the identity policy) and reports the overhead: parsing, capping, judgment
lookup, metrics, reward and info dicts. The two alternate round by round (see ``_rounds.py``):
the table shows each one's best round, and the overhead is the median over rounds of the
per-round ratio, with its range.
"""

from __future__ import annotations

import argparse

import gymnasium as gym
from _rounds import alternate, median_ratio, seconds

import recgym  # noqa: F401


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="RecQuery-v0")
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--split", default="train")
    args = parser.parse_args()
    env = gym.make(args.env).unwrapped
    rows = env.tasks.split(args.split)[: args.batch].tolist()
    queries = [env.tasks[r].request for r in rows]
    depth = env.config.depth
    times = alternate(
        {
            "search": seconds(lambda: env.retriever.search(queries, depth)),
            "score": seconds(lambda: env.score(rows, queries)),
        },
        args.repeats,
    )
    search, score = min(times["search"]), min(times["score"])
    ratios = sorted(b / a - 1 for a, b in zip(times["search"], times["score"]))
    print(f"env {args.env}, {len(rows)} queries, depth {depth}, {args.repeats} rounds\n")
    print("| | seconds | queries/s |")
    print("|---|---|---|")
    print(f"| retriever.search | {search:.4f} | {len(rows) / search:,.0f} |")
    print(f"| env.score | {score:.4f} | {len(rows) / score:,.0f} |")
    print(
        f"\nenv.score overhead over the retriever alone: "
        f"{100 * (median_ratio(times['score'], times['search']) - 1):.1f}% (median of the rounds; "
        f"range {100 * ratios[0]:.1f}% to {100 * ratios[-1]:.1f}%)"
    )


if __name__ == "__main__":
    main()
