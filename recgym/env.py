"""RecQueryEnv: the agent writes a query, the reward is a ranking metric of what it retrieves."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from functools import lru_cache
from types import MappingProxyType
from typing import Any

import gymnasium as gym
import numpy as np

from recgym.catalog import Qrels, choice_error
from recgym.metrics import compute, parse_metric
from recgym.parsing import ParsedAction, cap_query, check_action, make_parser
from recgym.retrievers import Retriever, empty_results, make_retriever
from recgym.rewards import RewardSpec
from recgym.spaces import AnyText
from recgym.worlds import World, load_world

__all__ = ["INFO_METRICS", "PROMPTS", "EnvConfig", "RecQueryEnv"]

PROMPTS: dict[str, str] = {
    "plain": "{request}",
    "rec-r1": (
        "You are a search expert. A shopper asked: \"{request}\"\n"
        "Write one search query that finds the products they want in an online store's catalog. "
        "Think it through inside <think> </think>, then give the query as JSON inside "
        "<answer> </answer>, for example: "
        "<think>...</think><answer>{{\"query\": \"...\"}}</answer>"
    ),
}
_DEFAULT_PARSER = {"plain": "raw", "rec-r1": "rec-r1"}

# Reported in info["metrics"] at every step (those with a cutoff within the retrieval depth).
INFO_METRICS = ("ndcg@10", "ndcg@100", "recall@10", "recall@100", "mrr@100")


@dataclass(frozen=True)
class EnvConfig:
    """Everything that defines a RecQueryEnv; the keyword arguments of ``gym.make``.

    Attributes:
        world: source of catalog and tasks (``"shop"``).
        world_kwargs: arguments of the source (for ``shop``: ``n_items``, ``n_tasks``, ``seed``).
        retriever: retrieval backend (``"bm25"``, ``"rank_bm25"``).
        retriever_kwargs: arguments of the backend (for ``bm25``: ``k1``, ``b``).
        reward: reward spec, e.g. ``"ndcg@100"`` or ``"0.5*ndcg@10+0.5*recall@100"``.
        format_reward: added to the reward of a well-formed answer.
        format_penalty: the reward of a malformed answer or an empty query is ``-format_penalty``.
        length_penalty: subtracted per query term.
        popularity_penalty: times the mean popularity percentile of the top 10 retrieved.
        prompt: observation template, ``"plain"`` (the request itself), ``"rec-r1"`` (an
            instruction asking for ``<think>..</think><answer>{"query": ..}</answer>``), or a custom
            template containing ``{request}``.
        parser: how actions become queries, ``"raw"`` or ``"rec-r1"``; by default the one that
            matches the prompt.
        split: the split ``reset`` samples from when its options name none.
        depth: how many items the retriever returns per query (the deepest metric cutoff).
        max_query_chars: queries are cut to this many characters ...
        max_query_terms: ... and then to this many whitespace-separated terms.
        info_top_n: how many retrieved item ids ``info["retrieved"]`` lists.
    """

    world: str = "shop"
    world_kwargs: Mapping[str, Any] = field(default_factory=dict)
    retriever: str = "bm25"
    retriever_kwargs: Mapping[str, Any] = field(default_factory=dict)
    reward: str = "ndcg@100"
    format_reward: float = 0.0
    format_penalty: float = 0.0
    length_penalty: float = 0.0
    popularity_penalty: float = 0.0
    prompt: str = "plain"
    parser: str | None = None
    split: str = "train"
    depth: int = 100
    max_query_chars: int = 256
    max_query_terms: int = 32
    info_top_n: int = 10

    def __post_init__(self) -> None:
        object.__setattr__(self, "world_kwargs", MappingProxyType(dict(self.world_kwargs)))
        object.__setattr__(self, "retriever_kwargs", MappingProxyType(dict(self.retriever_kwargs)))
        if self.prompt not in PROMPTS and "{request}" not in self.prompt:
            raise ValueError(
                f"prompt must be one of {sorted(PROMPTS)} or a template containing '{{request}}', "
                f"got {self.prompt!r}"
            )
        if self.parser is None:
            object.__setattr__(self, "parser", _DEFAULT_PARSER.get(self.prompt, "raw"))
        make_parser(self.parser)
        for name in ("depth", "max_query_chars", "max_query_terms", "info_top_n"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        cutoff = self.reward_spec.max_cutoff
        if cutoff > self.depth:
            raise ValueError(
                f"reward {self.reward!r} needs the top {cutoff} items but depth={self.depth}; "
                f"set depth >= {cutoff}"
            )

    @property
    def reward_spec(self) -> RewardSpec:
        return RewardSpec(
            self.reward,
            format_reward=self.format_reward,
            format_penalty=self.format_penalty,
            length_penalty=self.length_penalty,
            popularity_penalty=self.popularity_penalty,
        )

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["world_kwargs"] = dict(self.world_kwargs)
        out["retriever_kwargs"] = dict(self.retriever_kwargs)
        return out


@lru_cache(maxsize=8)
def _indexed_retriever(world: str, world_json: str, retriever: str, retriever_json: str) -> Retriever:
    """One index per (world, retriever config) in a process, shared by every env that uses it."""
    backend = make_retriever(retriever, **json.loads(retriever_json))
    backend.index(load_world(world, **json.loads(world_json)).catalog)
    return backend


@lru_cache(maxsize=8)
def _qrels(world: str, world_json: str) -> Qrels:
    w = load_world(world, **json.loads(world_json))
    return Qrels(w.tasks, w.catalog)


class RecQueryEnv(gym.Env[str, str]):
    """Write a query; be rewarded by the ranking metric of what the recommender retrieves.

    ## Description
    Each episode is one request from a user (a shopper's words on the default shop world). The
    agent writes a query string; the environment retrieves the top ``depth`` items of a catalog the
    agent never sees and scores the ranking against the items the user wanted (graded judgments).
    This is the closed loop of Rec-R1 (arXiv:2503.24289).

    ## Action Space
    :class:`recgym.spaces.AnyText`: any ``str``. The parser (``raw``: the whole text; ``rec-r1``:
    the JSON ``"query"`` in the ``<answer>`` block) extracts the query, which is then capped to
    ``max_query_chars`` characters and ``max_query_terms`` terms. A non-string raises ``TypeError``.

    ## Observation Space
    :class:`recgym.spaces.AnyText`: the request rendered by the prompt template. The raw request
    and its structured fields are in ``info["task"]``.

    ## Rewards
    The reward spec (default ``ndcg@100``: trec_eval's nDCG with linear gains) of the retrieved
    ranking, plus the optional format reward and penalties of :class:`recgym.rewards.RewardSpec`.
    A malformed answer or an empty query retrieves nothing and earns ``-format_penalty``, with the
    reason in ``info["invalid_reason"]``.

    ## Starting State
    ``reset`` draws a task uniformly from the split (``options={"split": ...}``, default the
    configured one) with ``np_random``, or takes ``options={"task_id": ...}``.

    ## Episode End
    The episode terminates after one query (a contextual bandit, as in Rec-R1). Stepping again
    without ``reset`` raises an error.

    ## Info
    ``metrics`` (ndcg@10, ndcg@100, recall@10, recall@100, mrr@100, the reward's metrics and
    ``popularity@10``), ``query`` (what was retrieved with), ``retrieved`` (top item ids),
    ``task`` (the request, its fields and split), ``format_valid``, ``invalid_reason`` and
    ``capped`` (the original sizes when a cap applied, else ``None``).

    ## Arguments
    The fields of :class:`EnvConfig`, as keyword arguments of ``gym.make``, plus ``render_mode``
    (``None`` or ``"ansi"``).

    ## Registered Configurations
    ``recgym list`` prints them; each is a TOML file in ``envs/``.

    ## Version History
    * v0: initial release.

    Example:
        >>> import gymnasium as gym, recgym
        >>> env = gym.make("RecQuery-v0", world_kwargs={"n_items": 2000, "n_tasks": 300})
        >>> obs, info = env.reset(seed=0)
        >>> isinstance(obs, str) and obs == info["task"]["request"]
        True
        >>> obs, reward, terminated, truncated, info = env.step(obs)
        >>> terminated, 0.0 <= reward <= 1.0, sorted(info["metrics"])[:2]
        (True, True, ['mrr@100', 'ndcg@10'])
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 1}  # fps only matters to video recorders

    def __init__(self, render_mode: str | None = None, **kwargs: Any) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise choice_error("render_mode", render_mode, self.metadata["render_modes"])
        self.config = EnvConfig(**kwargs)
        self.render_mode = render_mode
        cfg = self.config
        world_json = json.dumps(dict(cfg.world_kwargs), sort_keys=True)
        self.world: World = load_world(cfg.world, **cfg.world_kwargs)
        self.catalog = self.world.catalog
        self.tasks = self.world.tasks
        self.tasks.split(cfg.split)  # fail early on an unknown split
        self.qrels = _qrels(cfg.world, world_json)
        self.retriever = _indexed_retriever(
            cfg.world, world_json, cfg.retriever, json.dumps(dict(cfg.retriever_kwargs), sort_keys=True)
        )
        self.reward_spec = cfg.reward_spec
        self._parse: Callable[[str], ParsedAction] = make_parser(cfg.parser)
        self._template = PROMPTS.get(cfg.prompt, cfg.prompt)
        self._metric_names = [m for m in INFO_METRICS if parse_metric(m)[1] <= cfg.depth]
        self._metric_names += [m for m in self.reward_spec.metrics if m not in self._metric_names]
        pop = self.catalog.popularity
        # Popularity percentile of each item in [0, 1] (1 = the best-seller).
        self._pop_pct = (np.argsort(np.argsort(pop, kind="stable"), kind="stable") / max(len(pop) - 1, 1))
        longest = max((len(t.request) for t in self.tasks.tasks), default=0)
        self.observation_space = AnyText(max_length=len(self._template) + longest)
        self.action_space = AnyText(max_length=1 << 20)
        self._task_row: int | None = None
        self._done = False
        self._last: tuple[str, dict[str, Any]] | None = None

    # ---------------------------------------------------------------- Gymnasium API

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        super().reset(seed=seed)
        options = dict(options or {})
        unknown = set(options) - {"task_id", "split"}
        if unknown:
            raise choice_error("reset option", sorted(unknown)[0], ["task_id", "split"])
        if options.get("task_id") is not None:
            self._task_row = int(self.tasks.rows([options["task_id"]])[0])
        else:
            rows = self.tasks.split(options.get("split") or self.config.split)
            if len(rows) == 0:
                raise ValueError(f"split {options.get('split') or self.config.split!r} has no tasks")
            self._task_row = int(rows[self.np_random.integers(len(rows))])
        self._done = False
        self._last = None
        task = self.tasks[self._task_row]
        return self.render_prompt(task.request), {"task": task.to_dict()}

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        if self._task_row is None:
            raise gym.error.ResetNeeded("call reset() before step()")
        if self._done:
            raise gym.error.ResetNeeded(
                "this episode has terminated (one query per episode); call reset() before step()"
            )
        rewards, infos = self.score([self._task_row], [action])
        self._done = True
        self._last = (action, infos[0])
        task = self.tasks[self._task_row]
        return self.render_prompt(task.request), float(rewards[0]), True, False, infos[0]

    def render(self) -> str | None:
        if self.render_mode != "ansi":
            return None
        if self._task_row is None:
            return "(call reset() first)\n"
        task = self.tasks[self._task_row]
        lines = [f"task {task.id} [{task.split}]: {task.request}"]
        if self._last is not None:
            action, info = self._last
            lines.append(f"query: {info['query']!r}" + (f"  INVALID: {info['invalid_reason']}"
                                                        if info["invalid_reason"] else ""))
            rows = self.catalog.rows(info["retrieved"][:5])
            for rank, row in enumerate(rows, 1):
                gain = self.qrels.lookup(np.array([self._task_row]), np.array([[row]]))[0, 0]
                lines.append(f"  {rank}. [gain {gain:g}] {self.catalog.titles[row]}")
            lines.append("  " + "  ".join(f"{k}={v:.3f}" for k, v in info["metrics"].items()))
        return "\n".join(lines) + "\n"

    # ---------------------------------------------------------------- batched scoring

    def render_prompt(self, request: str) -> str:
        """The observation for a request: the prompt template filled in."""
        return self._template.replace("{request}", request) if "{request}" in self._template else request

    def score(
        self, task_ids: Sequence[str | int], queries: Sequence[str]
    ) -> tuple[np.ndarray, list[dict[str, Any]]]:
        """Score a batch of agent outputs against their tasks in one retrieval call.

        Args:
            task_ids: task ids (``str``) or task rows (``int``), one per query.
            queries: the agent's outputs, parsed by the env's parser and capped.

        Returns:
            ``(rewards, infos)``: a float64 array of shape ``(n,)`` and one info dict per query,
            exactly as ``step`` would return them.
        """
        if isinstance(queries, str):
            raise TypeError("score() takes a sequence of queries; wrap a single query in a list")
        if len(task_ids) != len(queries):
            raise ValueError(f"score() got {len(task_ids)} task ids but {len(queries)} queries")
        cfg = self.config
        task_rows = self.tasks.rows(task_ids)
        parsed = [self._parse(check_action(q)) for q in queries]
        final, capped = [], []
        for p in parsed:
            q, c = cap_query(p.query, cfg.max_query_chars, cfg.max_query_terms) if p.valid else ("", None)
            final.append(q)
            capped.append(c)
        valid = np.array([p.valid for p in parsed], dtype=bool)
        rows, _ = empty_results(len(queries), cfg.depth)
        if valid.any():
            idx = np.flatnonzero(valid)
            rows[idx], _ = self.retriever.search([final[i] for i in idx], cfg.depth)
        gains = self.qrels.lookup(task_rows, rows)
        ideal = self.qrels.ideal_gains(task_rows, cfg.depth)
        metrics = compute(self._metric_names, gains, ideal, self.qrels.n_relevant[task_rows],
                          rel_level=self.qrels.rel_level)
        top = rows[:, :10]
        pop = np.where(top >= 0, self._pop_pct[top], 0.0)
        n_top = np.maximum((top >= 0).sum(axis=1), 1)
        metrics["popularity@10"] = np.where(valid, pop.sum(axis=1) / n_top, 0.0)
        n_terms = np.array([len(q.split()) for q in final])
        rewards = self.reward_spec(metrics, valid, n_terms, metrics["popularity@10"])
        ids = self.catalog.ids
        infos = []
        for i, row in enumerate(task_rows):
            top_rows = rows[i, : cfg.info_top_n]
            infos.append({
                "metrics": {name: float(values[i]) for name, values in metrics.items()},
                "query": final[i],
                "retrieved": ids[top_rows[top_rows >= 0]].tolist(),
                "task": self.tasks[row].to_dict(),
                "format_valid": bool(valid[i]),
                "invalid_reason": parsed[i].invalid_reason,
                "capped": capped[i],
            })
        return rewards, infos

    # ---------------------------------------------------------------- pickling

    def __getstate__(self) -> dict[str, Any]:
        # The world and index are rebuilt (or fetched from the process cache) from the config.
        return {"config": self.config.to_dict(), "render_mode": self.render_mode,
                "np_random": self._np_random, "task_row": self._task_row, "done": self._done}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(render_mode=state["render_mode"], **state["config"])
        self._np_random = state["np_random"]
        self._task_row, self._done = state["task_row"], state["done"]
