"""Headroom tables: the reference policies on each split of the generated worlds.

    python bench/headroom.py [--envs RecQuery-v0 RecQuerySeq-v0 ...] [--kwargs JSON] [--limit N]

Prints one markdown table per env: identity (no rewriting), oracle (catalog terms from the hidden
lexicon), random, and for multi-turn envs the scripted refiner. For multi-turn envs `return` is
the mean episode return (the best nDCG@100 reached, with improvement rewards) and the metric
columns are those of the last query.
"""

from __future__ import annotations

import argparse
import json

import gymnasium as gym

import recgym  # noqa: F401
from recgym.policies import evaluate, make_policy

SPLITS = {
    "shop": ("test", "test_ood_category", "test_ood_phrasing"),
    "shop_seq": ("test", "test_inductive", "test_ood_category"),
}
COLUMNS = ("ndcg@10", "ndcg@100", "recall@100", "mrr@100")


def table(env_id: str, kwargs: dict, limit: int | None = None) -> str:
    env = gym.make(env_id, **kwargs)
    base = env.unwrapped
    policies = ["identity", "oracle", "random"] + (["refine"] if base.multi_turn else [])
    lines = [
        f"### {env_id}\n",
        "| split | policy | return | " + " | ".join(COLUMNS) + " |",
        "|---" * (3 + len(COLUMNS)) + "|",
    ]
    for split in SPLITS[base.config.world]:
        for name in policies:
            r = evaluate(env, make_policy(name, env), split, limit=limit)
            cells = " | ".join(f"{r['metrics'][c]:.3f}" for c in COLUMNS)
            lines.append(f"| {split} | {name} | {r['reward']:.3f} | {cells} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--envs",
        nargs="+",
        default=["RecQuery-v0", "RecQuerySeq-v0", "RecQueryRefine-v0", "RecQuerySeqRefine-v0"],
    )
    parser.add_argument("--kwargs", default="{}", help="JSON gym.make keyword arguments")
    parser.add_argument("--limit", type=int, help="only the first N tasks of each split")
    args = parser.parse_args()
    for env_id in args.envs:
        print(table(env_id, json.loads(args.kwargs), args.limit), end="\n\n", flush=True)


if __name__ == "__main__":
    main()
