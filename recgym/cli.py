"""The ``recgym`` command: list, evaluate, export and demo the registered environments; manage the
index cache."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from typing import Any

import gymnasium as gym

import recgym
from recgym.catalog import choice_error
from recgym.export import TrecRunWriter, export_world
from recgym.policies import POLICIES, evaluate, make_policy

REPORT_METRICS = ("ndcg@10", "ndcg@100", "recall@10", "recall@100", "mrr@100")
DEMO_SPLITS = ("test", "test_ood_category", "test_ood_phrasing")


def _make(env_id: str, kwargs: dict[str, Any] | None = None) -> gym.Env:
    if env_id not in gym.registry:
        raise choice_error("environment id", env_id, recgym.ENV_IDS)
    return gym.make(env_id, **(kwargs or {}))


def _parse_kwargs(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"--kwargs must be a JSON object: {exc}") from None
    if not isinstance(value, dict):
        raise ValueError(f"--kwargs must be a JSON object, got {type(value).__name__}")
    return value


def _table(rows: list[dict[str, Any]], columns: Sequence[str]) -> str:
    head = "| policy | split | n | " + " | ".join(columns) + " |"
    sep = "|" + "---|" * (3 + len(columns))
    body = [
        f"| {r['policy']} | {r['split']} | {r['n_tasks']} | "
        + " | ".join(f"{r['metrics'][c]:.3f}" for c in columns)
        + " |"
        for r in rows
    ]
    return "\n".join([head, sep, *body])


def cmd_list(args: argparse.Namespace) -> int:
    from recgym.registration import load_specs

    for spec in load_specs():
        print(f"{spec.id:24s} {spec.summary}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    env = _make(args.env_id, _parse_kwargs(args.kwargs))
    policy = make_policy(args.policy, env, seed=args.seed)
    if args.run_file:
        with TrecRunWriter(args.run_file, tag=args.run_tag) as writer:
            result = evaluate(
                env,
                policy,
                args.split,
                batch_size=args.batch_size,
                limit=args.limit,
                on_rankings=writer,
            )
    else:
        result = evaluate(env, policy, args.split, batch_size=args.batch_size, limit=args.limit)
    result = {"env": args.env_id, "policy": args.policy, **result}
    if args.json:
        print(json.dumps(result))
    else:
        print(_table([result], [*REPORT_METRICS, "popularity@10"]))
        print(f"reward {result['reward']:.4f}  invalid rate {result['invalid_rate']:.3f}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from recgym.env import EnvConfig
    from recgym.worlds import load_world

    if args.env_id not in gym.registry:
        raise choice_error("environment id", args.env_id, recgym.ENV_IDS)
    given = _parse_kwargs(args.kwargs)
    config = EnvConfig(**{**gym.spec(args.env_id).kwargs, **given})
    world = load_world(config.world, **config.world_kwargs)
    info = export_world(
        world,
        args.out_dir,
        splits=args.split or None,
        meta={"env_id": args.env_id, "kwargs": given},
    )
    sizes = ", ".join(f"{n} {s}" for s, n in info["splits"].items())
    print(
        f"wrote {args.out_dir}: {info['n_items']} items, requests {sizes}; qrels relevance = "
        f"gain x {info['gain_scale']} (relevance level {info['relevance_level']:g})"
    )
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    env = _make(args.env_id, _parse_kwargs(args.kwargs) | {"render_mode": "ansi"})
    base = env.unwrapped
    cfg = base.config
    print(f"# {args.env_id}  (built in {time.perf_counter() - start:.1f} s)\n")
    print(base.world.description)
    print(f"\nretriever: {cfg.retriever} {dict(base.retriever.config())}")
    print(
        f"reward: {cfg.reward} (format reward {cfg.format_reward}, "
        f"format penalty {cfg.format_penalty}); parser: {cfg.parser}; depth: {cfg.depth}"
    )
    print(f"observation space: {env.observation_space}; action space: {env.action_space}\n")
    # Real datasets have no oracle and only some of the generated worlds' splits.
    names = [n for n in POLICIES if n != "oracle" or base.world.oracle is not None]
    names = [n for n in names if n != "refine" or base.multi_turn]  # refine needs feedback
    splits = [s for s in DEMO_SPLITS if s in base.tasks.split_names] or [cfg.split]
    shown = {n: make_policy(n, env) for n in ("identity", "oracle") if n in names}
    print(f"## A few episodes ({' then '.join(shown)} policy)\n")
    for episode in range(args.episodes):
        obs, info = env.reset(seed=args.seed + episode, options={"split": splits[0]})
        for name, policy in shown.items():
            env.reset(options={"task_id": info["task"]["id"]})
            _, reward, *_ = env.step(policy([obs], [info])[0])
            print(f"[{name}] reward {reward:.3f}")
            print(env.render())
    print("## Reference policies (means over each split)\n")
    rows = []
    for split in splits:
        for name in names:
            result = evaluate(env, make_policy(name, env, seed=args.seed), split, limit=args.limit)
            rows.append({"policy": name, **result})
    print(_table(rows, REPORT_METRICS))
    print(f"\n(done in {time.perf_counter() - start:.1f} s)")
    return 0


def cmd_cache(args: argparse.Namespace) -> int:
    from recgym import cache

    directory = args.dir or cache.cache_dir()
    if args.action == "clear":
        print(f"removed {cache.clear(directory)} index cache entries from {directory}")
        return 0
    entries = cache.list_entries(directory)
    print(f"index cache: {directory} (set {cache.CACHE_DIR_ENV} to move it)")
    if not entries:
        print("no entries")
        return 0
    print("\n| entry | retriever | items | size | created |\n|---|---|---|---|---|")
    for e in entries:
        items = "?" if e.n_items is None else f"{e.n_items:,}"
        created = time.strftime("%Y-%m-%d %H:%M", time.localtime(e.created))
        note = "" if e.complete else " (incomplete)"
        print(f"| {e.path.name}{note} | {e.retriever} | {items} | {_size(e.n_bytes)} | {created} |")
    total = sum(e.n_bytes for e in entries)
    print(f"\n{len(entries)} entries, {_size(total)}")
    return 0


def _size(n_bytes: int) -> str:
    return f"{n_bytes / 2**20:,.1f} MiB"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="recgym", description=__doc__)
    parser.add_argument("--version", action="version", version=f"recgym {recgym.__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="print the registered environment ids").set_defaults(func=cmd_list)

    ev = sub.add_parser("evaluate", help="mean metrics of a policy over a split")
    ev.add_argument("env_id")
    ev.add_argument(
        "--policy",
        default="identity",
        help=f"{', '.join(POLICIES)}, or module:callable (batch of observations and "
        "infos -> list of actions)",
    )
    ev.add_argument("--split", default="test")
    ev.add_argument("--kwargs", help="JSON object of gym.make keyword arguments")
    ev.add_argument("--json", action="store_true", help="print one JSON object")
    ev.add_argument("--limit", type=int, help="evaluate only the first N tasks of the split")
    ev.add_argument("--batch-size", type=int, default=1024)
    ev.add_argument("--seed", type=int, default=0)
    ev.add_argument(
        "--run-file",
        metavar="PATH",
        help="also write the scored rankings as a TREC run file (rank-based scores)",
    )
    ev.add_argument("--run-tag", default="recgym", help="the run file's tag column")
    ev.set_defaults(func=cmd_evaluate)

    ex = sub.add_parser(
        "export",
        help="write an environment's catalog, requests and judgments "
        "as a BEIR folder plus TREC qrels",
    )
    ex.add_argument("env_id")
    ex.add_argument("out_dir", metavar="DIR")
    ex.add_argument("--kwargs", help="JSON object of gym.make keyword arguments")
    ex.add_argument(
        "--split", action="append", help="a split to write (repeatable; default: every split)"
    )
    ex.set_defaults(func=cmd_export)

    demo = sub.add_parser("demo", help="env card, a few episodes, and the reference policies")
    demo.add_argument("env_id", nargs="?", default="RecQuery-v0")
    demo.add_argument("--kwargs", help="JSON object of gym.make keyword arguments")
    demo.add_argument("--episodes", type=int, default=2)
    demo.add_argument("--limit", type=int, help="evaluate only the first N tasks of each split")
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(func=cmd_demo)

    ca = sub.add_parser("cache", help="list or remove the on-disk index cache entries")
    ca.add_argument("action", choices=["info", "clear"],
                    help="info: list entries with size and date; clear: remove them all")
    ca.add_argument("--dir",
                    help="the cache folder (default: $RECGYM_CACHE_DIR, else ~/.cache/recgym)")
    ca.set_defaults(func=cmd_cache)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, KeyError, TypeError, FileNotFoundError, ImportError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"recgym: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
