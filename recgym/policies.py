"""Reference policies and batched evaluation.

A policy maps a batch of observations (and their ``reset`` infos) to actions:
``policy(observations: list[str], infos: list[dict]) -> list[str]``. The reference policies bracket
what a learned rewriter can do on a world:

* ``identity``: the shopper's request, unchanged, as the query (what no rewriting achieves); for
  histories, the title of the last item;
* ``oracle``: a query in the catalog's own terms, written from the world's hidden lexicon (what a
  perfect rewriter could achieve; not available on real datasets);
* ``random``: one to six words drawn from the training requests (the floor);
* ``refine`` (multi-turn envs): identity first, then each turn adds the most frequent new word of
  the titles the last query retrieved (a scripted use of the feedback).
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Callable
from typing import Any

import numpy as np

from recgym.catalog import choice_error
from recgym.text import ENGLISH_STOPWORDS

__all__ = ["POLICIES", "Policy", "evaluate", "format_action", "make_policy"]

Policy = Callable[[list[str], list[dict[str, Any]]], list[str]]


def format_action(query: str, parser: str) -> str:
    """Wrap a plain query in the answer format the env's parser expects."""
    if parser == "rec-r1":
        return f"<think>Reference policy.</think><answer>{json.dumps({'query': query})}</answer>"
    return query


def _identity(env: Any, seed: int) -> Policy:
    base = env.unwrapped
    tasks, parser, world = base.tasks, base.config.parser, base.world
    if world.identity is None:
        return lambda obs, infos: [format_action(i["task"]["request"], parser) for i in infos]
    return lambda obs, infos: [
        format_action(world.identity(tasks[tasks.row(i["task"]["id"])]), parser) for i in infos
    ]


def _oracle(env: Any, seed: int) -> Policy:
    base = env.unwrapped
    if base.world.oracle is None:
        raise ValueError(f"world {base.config.world!r} has no oracle (no hidden lexicon)")
    tasks, parser = base.tasks, base.config.parser

    def policy(obs: list[str], infos: list[dict[str, Any]]) -> list[str]:
        return [
            format_action(base.world.oracle(tasks[tasks.row(i["task"]["id"])]), parser)
            for i in infos
        ]

    return policy


_WORD = re.compile(r"[a-z][a-z-]{2,}")


def _refine(env: Any, seed: int) -> Policy:
    """A scripted refiner for multi-turn envs, reading only what the agent sees.

    Turn 1 is the identity query. Each later turn repeats the last query and adds the most frequent
    word of the feedback titles that the query does not contain yet (ties: the earlier word).
    """
    first = _identity(env, seed)
    parser = env.unwrapped.config.parser

    def refine(obs: str) -> str:
        query = obs.rsplit("Your query: ", 1)[1].split("\n", 1)[0]
        block = obs.rsplit("Top results:", 1)[1].split("\n\n", 1)[0]
        used = set(query.lower().split())
        counts: dict[str, int] = {}
        for word in _WORD.findall(block.lower()):
            if word not in used and word not in ENGLISH_STOPWORDS:
                counts[word] = counts.get(word, 0) + 1
        return f"{query} {max(counts, key=counts.get)}" if counts else query

    def policy(obs: list[str], infos: list[dict[str, Any]]) -> list[str]:
        fresh = [i for i, o in enumerate(obs) if "Your query: " not in o]
        actions = [format_action(refine(o), parser) if "Your query: " in o else "" for o in obs]
        for i, action in zip(fresh, first([obs[i] for i in fresh], [infos[i] for i in fresh])):
            actions[i] = action
        return actions

    return policy


def _random(env: Any, seed: int) -> Policy:
    base = env.unwrapped
    names = base.tasks.split_names
    train = base.tasks.split("train") if "train" in names else np.arange(len(base.tasks))
    words = sorted({w for r in train for w in base.tasks[r].request.lower().split()})
    rng = np.random.default_rng(seed)
    parser = base.config.parser

    def policy(obs: list[str], infos: list[dict[str, Any]]) -> list[str]:
        return [
            format_action(" ".join(rng.choice(words, size=int(rng.integers(1, 7)))), parser)
            for _ in obs
        ]

    return policy


POLICIES: dict[str, Callable[[Any, int], Policy]] = {
    "identity": _identity,
    "oracle": _oracle,
    "random": _random,
    "refine": _refine,
}


def make_policy(name: str, env: Any, seed: int = 0) -> Policy:
    """A reference policy by name, or ``"module:callable"`` naming a policy function."""
    if ":" in name:
        module, _, attr = name.partition(":")
        try:
            return getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as exc:
            raise ValueError(f"cannot load policy {name!r}: {exc}") from None
    if name not in POLICIES:
        raise choice_error("policy", name, [*POLICIES, "module:callable"])
    return POLICIES[name](env, seed)


def evaluate(
    env: Any,
    policy: Policy,
    split: str,
    batch_size: int = 1024,
    limit: int | None = None,
    on_rankings: Callable[[list[str], list[list[str]]], None] | None = None,
) -> dict[str, Any]:
    """Mean metrics and reward of ``policy`` over every task of ``split`` (batched ``score``).

    ``on_rankings(task_ids, rankings)``, when given, receives after each batch the full ranking
    (item ids, best first, up to the env's ``depth``) that each task was scored on, from the same
    retrieval call (``score(..., rankings=True)``); e.g. :class:`recgym.export.TrecRunWriter`.
    """
    base = env.unwrapped
    if base.multi_turn:
        if on_rankings is not None:
            raise ValueError("run files are written for one-turn envs only")
        return evaluate_episodes(env, policy, split, batch_size=batch_size, limit=limit)
    rows = base.tasks.split(split)[:limit]
    sums: dict[str, float] = {}
    n_invalid = 0
    for start in range(0, len(rows), batch_size):
        batch = rows[start : start + batch_size]
        tasks = [base.tasks[r] for r in batch]
        infos = [{"task": t.to_dict()} for t in tasks]
        actions = policy([base.render_prompt(t.request) for t in tasks], infos)
        rewards, step_infos = base.score(batch.tolist(), actions, rankings=on_rankings is not None)
        if on_rankings is not None:
            on_rankings([t.id for t in tasks], [info.pop("ranking") for info in step_infos])
        sums["reward"] = sums.get("reward", 0.0) + float(rewards.sum())
        for info in step_infos:
            n_invalid += not info["format_valid"]
            for name, value in info["metrics"].items():
                sums[name] = sums.get(name, 0.0) + value
    n = max(len(rows), 1)
    metrics = {name: total / n for name, total in sums.items() if name != "reward"}
    return {
        "split": split,
        "n_tasks": len(rows),
        "reward": sums.get("reward", 0.0) / n,
        "invalid_rate": n_invalid / n,
        "metrics": metrics,
    }


def evaluate_episodes(
    env: Any, policy: Policy, split: str, batch_size: int = 1024, limit: int | None = None
) -> dict[str, Any]:
    """Mean return and final-turn metrics of ``policy`` over whole episodes (multi-turn envs).

    Episodes of a batch advance together through ``step_batch``; each turn the policy gets the
    observations and reset infos of the episodes still running. ``reward`` is the mean episode
    return and ``metrics`` those of each episode's last query.
    """
    from recgym.env import Episode

    base = env.unwrapped
    rows = base.tasks.split(split)[:limit]
    returns = np.zeros(len(rows))
    final: list[dict[str, float]] = [{} for _ in rows]
    n_turns = 0
    for start in range(0, len(rows), batch_size):
        episodes = [Episode(int(r)) for r in rows[start : start + batch_size]]
        infos = [{"task": base.tasks[ep.task_row].to_dict()} for ep in episodes]
        live = list(range(len(episodes)))
        while live:
            obs = [base.observe(episodes[i]) for i in live]
            actions = policy(obs, [infos[i] for i in live])
            _, rewards, _, _, step_infos = base.step_batch([episodes[i] for i in live], actions)
            n_turns += len(live)
            for i, reward, info in zip(live, rewards, step_infos):
                returns[start + i] += reward
                if info["metrics"]:
                    final[start + i] = info["metrics"]
            live = [i for i in live if not episodes[i].done]
    names = sorted({name for m in final for name in m})
    n = max(len(rows), 1)
    metrics = {name: sum(m.get(name, 0.0) for m in final) / n for name in names}
    return {
        "split": split,
        "n_tasks": len(rows),
        "reward": float(returns.sum()) / n,
        "invalid_rate": 0.0,
        "mean_turns": n_turns / n,
        "metrics": metrics,
    }
