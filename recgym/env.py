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

from recgym.cache import build_index
from recgym.catalog import Qrels, choice_error
from recgym.metrics import compute, parse_metric
from recgym.parsing import ParsedAction, cap_query, check_action, make_parser, parse_batch
from recgym.retrievers import Retriever, empty_results, make_retriever
from recgym.rewards import RewardSpec
from recgym.spaces import AnyText
from recgym.worlds import World, load_world

__all__ = ["INFO_METRICS", "PROMPTS", "EnvConfig", "Episode", "RecQueryEnv"]

PROMPTS: dict[str, str] = {
    "plain": "{request}",
    "rec-r1": (
        'You are a search expert. A shopper asked: "{request}"\n'
        "Write one search query that finds the products they want in an online store's catalog. "
        "Think it through inside <think> </think>, then give the query as JSON inside "
        "<answer> </answer>, for example: "
        '<think>...</think><answer>{{"query": "..."}}</answer>'
    ),
}
_DEFAULT_PARSER = {"plain": "raw", "rec-r1": "rec-r1"}

# Reported in info["metrics"] at every step (those with a cutoff within the retrieval depth).
INFO_METRICS = ("ndcg@10", "ndcg@100", "recall@10", "recall@100", "mrr@100")
TURN_REWARDS = ("improvement", "final")


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
        turns: queries per episode. With more than one, each observation adds the titles of the
            top ``feedback_top_n`` items the last query retrieved, and the agent may refine.
        feedback_top_n: how many retrieved titles the refinement feedback shows.
        turn_reward: with several turns, ``"improvement"`` (each turn earns how much it raised
            the best score so far, so the return is the best score reached) or ``"final"`` (only
            the last turn is rewarded, with its own score).
        stop_action: the action that ends a multi-turn episode early (compared after stripping).
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
    turns: int = 1
    feedback_top_n: int = 5
    turn_reward: str = "improvement"
    stop_action: str = "STOP"

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
        if self.turn_reward not in TURN_REWARDS:
            raise choice_error("turn_reward", self.turn_reward, TURN_REWARDS)
        if not self.stop_action.strip():
            raise ValueError("stop_action must be a non-empty string")
        for name in (
            "depth",
            "max_query_chars",
            "max_query_terms",
            "info_top_n",
            "turns",
            "feedback_top_n",
        ):
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
def _indexed_retriever(
    world: str, world_json: str, retriever: str, retriever_json: str
) -> Retriever:
    """One index per (world, retriever config) in a process, shared by every env that uses it;
    built through the on-disk cache (``recgym.cache``) when the retriever supports it."""
    backend = make_retriever(retriever, **json.loads(retriever_json))
    build_index(backend, load_world(world, **json.loads(world_json)).catalog)
    return backend


@lru_cache(maxsize=8)
def _qrels(world: str, world_json: str) -> Qrels:
    w = load_world(world, **json.loads(world_json))
    return Qrels(w.tasks, w.catalog)


_INFO_MAKER = """
def make_infos({columns}queries, retrieved, tasks, valid, reasons, capped):
    return [
        {{
            "metrics": {{{metrics}}},
            "query": q,
            "retrieved": r,
            "task": t,
            "format_valid": ok,
            "invalid_reason": why,
            "capped": c,
        }}
        for {items}q, r, t, ok, why, c in zip(
            {columns}queries, retrieved, tasks, valid, reasons, capped
        )
    ]
"""


@lru_cache(maxsize=64)
def _info_maker(metric_names: tuple[str, ...]) -> Callable[..., list[dict[str, Any]]]:
    """The function that makes the info dicts of a scored batch, for these metric names.

    Its source is generated once per tuple of names (as ``dataclasses`` and ``namedtuple`` do)
    so that every dict is a display, ``{"ndcg@10": v0, ...}``: several times cheaper than
    ``dict(zip(names, values))``, and a large part of what ``score`` adds to the search. It takes
    one list of values per metric, then one list each of queries, retrieved ids, task dicts,
    validity flags, invalid reasons and caps.
    """
    columns = [f"m{i}" for i in range(len(metric_names))]
    source = _INFO_MAKER.format(
        columns="".join(f"{c}, " for c in columns),
        items="".join(f"_{c}, " for c in columns),
        metrics=", ".join(f"{name!r}: _{c}" for name, c in zip(metric_names, columns)),
    )
    namespace: dict[str, Any] = {}
    exec(compile(source, f"<recgym info maker {metric_names}>", "exec"), namespace)
    return namespace["make_infos"]


@dataclass
class Episode:
    """The state of one episode: its task and, with several turns, what happened so far."""

    task_row: int
    turn: int = 0
    best: float = 0.0  # best score reached (the improvement reward's baseline)
    last: float = 0.0  # score of the last valid query (the final reward)
    feedback: list[str] = field(default_factory=list)
    done: bool = False


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
    With several turns, ``stop_action`` ends the episode.

    ## Observation Space
    :class:`recgym.spaces.AnyText`: the request rendered by the prompt template; with several
    turns, followed by each past query and the titles of the top ``feedback_top_n`` items it
    retrieved. The raw request and its structured fields are in ``info["task"]``.

    ## Rewards
    The reward spec (default ``ndcg@100``: trec_eval's nDCG with linear gains) of the retrieved
    ranking, plus the optional format reward and penalties of :class:`recgym.rewards.RewardSpec`.
    A malformed answer or an empty query retrieves nothing and earns ``-format_penalty``, with the
    reason in ``info["invalid_reason"]``. With several turns and ``turn_reward="improvement"``, a
    turn earns ``max(0, score - best score so far)``, so the return is the best score reached;
    with ``"final"``, only the last turn earns its score.

    ## Starting State
    ``reset`` draws a task uniformly from the split (``options={"split": ...}``, default the
    configured one) with ``np_random``, or takes ``options={"task_id": ...}``.

    ## Episode End
    One turn (the default, a contextual bandit as in Rec-R1): terminated after the query. Several
    turns: terminated by ``stop_action``, truncated after ``turns`` queries. Stepping a finished
    episode raises ``gymnasium.error.ResetNeeded``.

    ## Info
    ``metrics`` (ndcg@10, ndcg@100, recall@10, recall@100, mrr@100, the reward's metrics and
    ``popularity@10``), ``query`` (what was retrieved with), ``retrieved`` (top item ids),
    ``task`` (the request, its fields and split), ``format_valid``, ``invalid_reason``,
    ``capped`` (the original sizes when a cap applied, else ``None``) and ``turn``.

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
        names = [f.name for f in fields(EnvConfig)]
        for name in kwargs:
            if name not in names:
                raise choice_error("RecQueryEnv argument", name, [*names, "render_mode"])
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
            cfg.world,
            world_json,
            cfg.retriever,
            json.dumps(dict(cfg.retriever_kwargs), sort_keys=True),
        )
        self.reward_spec = cfg.reward_spec
        self._parse: Callable[[str], ParsedAction] = make_parser(cfg.parser)
        self._template = PROMPTS.get(cfg.prompt, cfg.prompt)
        self._metric_names = [m for m in INFO_METRICS if parse_metric(m)[1] <= cfg.depth]
        self._metric_names += [m for m in self.reward_spec.metrics if m not in self._metric_names]
        pop = self.catalog.popularity
        # Popularity percentile of each item in [0, 1] (1 = the best-seller).
        self._pop_pct = np.argsort(np.argsort(pop, kind="stable"), kind="stable") / max(
            len(pop) - 1, 1
        )
        self.observation_space = AnyText(max_length=self._max_observation_length())
        self.action_space = AnyText(max_length=1 << 20)
        self._episode: Episode | None = None
        self._last_info: dict[str, Any] | None = None

    @property
    def multi_turn(self) -> bool:
        return self.config.turns > 1

    def _max_observation_length(self) -> int:
        longest = max((len(t.request) for t in self.tasks.tasks), default=0)
        length = len(self._template) + longest
        if self.multi_turn:
            title = max((len(t) for t in self.catalog.titles), default=0)
            turn = len(self._feedback("q", [])) + self.config.max_query_chars
            turn += self.config.feedback_top_n * (title + 8)
            length += self.config.turns * turn + len(self._instruction())
        return length

    # ---------------------------------------------------------------- Gymnasium API

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        super().reset(seed=seed)
        self._episode = Episode(self.draw_task(self.np_random, options))
        self._last_info = None
        return self.observe(self._episode), {"task": self.tasks[self._episode.task_row].to_dict()}

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        if self._episode is None:
            raise gym.error.ResetNeeded("call reset() before step()")
        obs, rewards, terminated, truncated, infos = self.step_batch([self._episode], [action])
        self._last_info = infos[0]
        return obs[0], float(rewards[0]), bool(terminated[0]), bool(truncated[0]), infos[0]

    def render(self) -> str | None:
        if self.render_mode != "ansi":
            return None
        if self._episode is None:
            return "(call reset() first)\n"
        task = self.tasks[self._episode.task_row]
        lines = [f"task {task.id} [{task.split}]: {task.request}"]
        info = self._last_info
        if info is not None:
            invalid = f"  INVALID: {info['invalid_reason']}" if info["invalid_reason"] else ""
            turn = f"turn {info['turn']} " if self.multi_turn else ""
            lines.append(f"{turn}query: {info['query']!r}{invalid}")
            rows = self.catalog.rows(info["retrieved"][:5])
            gains = self.qrels.lookup(np.array([self._episode.task_row]), rows[None, :])[0]
            for rank, (row, gain) in enumerate(zip(rows, gains), 1):
                lines.append(f"  {rank}. [gain {gain:g}] {self.catalog.titles[row]}")
            lines.append("  " + "  ".join(f"{k}={v:.3f}" for k, v in info["metrics"].items()))
        return "\n".join(lines) + "\n"

    # ---------------------------------------------------------------- episodes, batched

    def draw_task(self, rng: np.random.Generator, options: dict[str, Any] | None = None) -> int:
        """The task row a reset picks: ``options["task_id"]``, or a uniform draw from the split."""
        options = options or {}
        if options:
            unknown = set(options) - {"task_id", "split"}
            if unknown:
                raise choice_error("reset option", sorted(unknown)[0], ["task_id", "split"])
            if options.get("task_id") is not None:
                return int(self.tasks.rows([options["task_id"]])[0])
        split = options.get("split") or self.config.split
        rows = self.tasks.split(split)
        if len(rows) == 0:
            raise ValueError(f"split {split!r} has no tasks")
        # rng.random() costs a third of rng.integers(); floor(u * n) is uniform to within 2**-53
        return int(rows[int(rng.random() * len(rows))])

    def observe(self, episode: Episode) -> str:
        """The observation of an episode: the prompt, then (multi-turn) the feedback so far."""
        obs = self.render_prompt(self.tasks[episode.task_row].request)
        if self.multi_turn and not episode.done:
            obs += "".join(episode.feedback) + self._instruction(first=not episode.feedback)
        return obs

    def _instruction(self, first: bool = False) -> str:
        if first:
            return ""
        return (
            f"\n\nWrite a better query to improve these results, or answer "
            f"{self.config.stop_action} to finish."
        )

    def _feedback(self, query: str, titles: list[str]) -> str:
        lines = [f"\n\nYour query: {query}", "Top results:"]
        lines += [f"{rank}. {title}" for rank, title in enumerate(titles, 1)] or ["(nothing found)"]
        return "\n".join(lines)

    def step_batch(
        self, episodes: Sequence[Episode], actions: Sequence[str]
    ) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        """Advance several episodes by one action each, with one batched ``score`` call.

        ``step`` is this on a batch of one; the native vector env calls it for all sub-envs.
        Returns observations, rewards, terminated and truncated flags, and infos.
        """
        cfg = self.config
        if len(episodes) != len(actions):
            raise ValueError(f"step_batch got {len(episodes)} episodes but {len(actions)} actions")
        for ep in episodes:
            if ep.done:
                raise gym.error.ResetNeeded("this episode has ended; call reset() before step()")
        stops = [self.multi_turn and check_action(a).strip() == cfg.stop_action for a in actions]
        go = [i for i, stop in enumerate(stops) if not stop]
        scores, scored = self.score([episodes[i].task_row for i in go], [actions[i] for i in go])
        pos = {i: j for j, i in enumerate(go)}
        improvement = cfg.turn_reward == "improvement"
        n = len(episodes)
        rewards = np.zeros(n)
        terminated = np.zeros(n, dtype=bool)
        truncated = np.zeros(n, dtype=bool)
        infos: list[dict[str, Any]] = []
        for i, ep in enumerate(episodes):
            ep.turn += 1
            if stops[i]:
                info = self._stop_info(ep)
                rewards[i] = 0.0 if improvement else ep.last
                terminated[i] = True
            elif not self.multi_turn:
                info = scored[pos[i]]
                rewards[i], terminated[i] = scores[pos[i]], True
            else:
                info, score = scored[pos[i]], float(scores[pos[i]])
                truncated[i] = ep.turn >= cfg.turns
                if info["format_valid"]:
                    rewards[i] = max(0.0, score - ep.best) if improvement else 0.0
                    ep.best, ep.last = max(ep.best, score), score
                else:
                    rewards[i] = score  # the format penalty
                if truncated[i] and not improvement:
                    rewards[i] += ep.last
                shown = self.catalog.rows(info["retrieved"][: cfg.feedback_top_n])
                query = info["query"] or f"(invalid: {info['invalid_reason']})"
                ep.feedback.append(self._feedback(query, [self.catalog.titles[r] for r in shown]))
            info["turn"] = ep.turn
            infos.append(info)
            ep.done = bool(terminated[i] or truncated[i])
        return [self.observe(ep) for ep in episodes], rewards, terminated, truncated, infos

    def _stop_info(self, ep: Episode) -> dict[str, Any]:
        return {
            "metrics": {},
            "query": "",
            "retrieved": [],
            "task": self.tasks[ep.task_row].to_dict(),
            "format_valid": ep.turn > 1,
            "invalid_reason": None if ep.turn > 1 else "stop_before_any_query",
            "capped": None,
        }

    # ---------------------------------------------------------------- batched scoring

    def render_prompt(self, request: str) -> str:
        """The first observation for a request: the prompt template filled in."""
        return self._template.replace("{request}", request)

    def score(
        self, task_ids: Sequence[str | int], queries: Sequence[str], *, rankings: bool = False
    ) -> tuple[np.ndarray, list[dict[str, Any]]]:
        """Score a batch of agent outputs against their tasks in one retrieval call.

        Args:
            task_ids: task ids (``str``) or task rows (``int``), one per query.
            queries: the agent's outputs, parsed by the env's parser and capped.
            rankings: also put the whole ranking (item ids, best first, up to ``depth``) in
                ``info["ranking"]``, e.g. to write a TREC run file.

        Returns:
            ``(rewards, infos)``: a float64 array of shape ``(n,)`` and one info dict per query,
            as a one-turn ``step`` would return them.
        """
        if isinstance(queries, str):
            raise TypeError("score() takes a sequence of queries; wrap a single query in a list")
        if len(task_ids) != len(queries):
            raise ValueError(f"score() got {len(task_ids)} task ids but {len(queries)} queries")
        cfg = self.config
        task_rows = self.tasks.rows(task_ids)
        parsed, reasons = parse_batch(self._parse, queries)
        valid_list = [reason is None for reason in reasons]
        max_chars, max_terms = cfg.max_query_chars, cfg.max_query_terms
        # (capped query, info["capped"]) of each, or nothing for an invalid one.
        prepared = [
            cap_query(q, max_chars, max_terms) if ok else ("", None)
            for q, ok in zip(parsed, valid_list)
        ]
        final, capped = map(list, zip(*prepared)) if prepared else ([], [])
        valid = np.array(valid_list, dtype=bool)
        if len(valid) and valid.all():
            rows, _ = self.retriever.search(final, cfg.depth)
        else:
            rows, _ = empty_results(len(queries), cfg.depth)
            if valid.any():
                idx = np.flatnonzero(valid)
                rows[idx], _ = self.retriever.search([final[i] for i in idx], cfg.depth)
        gains = self.qrels.lookup(task_rows, rows)
        ideal = self.qrels.ideal_gains(task_rows, cfg.depth)
        metrics = compute(
            self._metric_names,
            gains,
            ideal,
            self.qrels.n_relevant[task_rows],
            rel_level=self.qrels.rel_level,
            validate=False,  # gains and ideal gains come from the judgment tables: valid
        )
        top = rows[:, :10]
        pop = np.where(top >= 0, self._pop_pct[top], 0.0)
        n_top = np.maximum((top >= 0).sum(axis=1), 1)
        metrics["popularity@10"] = np.where(valid, pop.sum(axis=1) / n_top, 0.0)
        spec = self.reward_spec
        # Terms of each capped query: counted only for a reward that uses them.
        if spec.length_penalty:
            n_terms = np.array([len(q.split()) for q in final], dtype=np.float64)
        else:
            n_terms = np.zeros(len(final))
        rewards = spec(metrics, valid, n_terms, metrics["popularity@10"])
        # Per-query Python values, converted in one call per array: each metric's values, and
        # the top item ids (found rows come first; the -1 padding is cut per query).
        top = rows[:, : cfg.info_top_n]
        retrieved = self.catalog.ids_of(np.maximum(top, 0))
        n_found = (top >= 0).sum(axis=1)
        if len(n_found) and n_found.min() < top.shape[1]:
            retrieved = [found[:n] for found, n in zip(retrieved, n_found.tolist())]
        tasks = self.tasks.tasks
        infos = _info_maker(tuple(metrics))(
            *(values.tolist() for values in metrics.values()),
            final,
            retrieved,
            [tasks[row].to_dict() for row in task_rows.tolist()],
            valid_list,
            reasons,
            capped,
        )
        if rankings:
            for info, ranked in zip(infos, rows):
                info["ranking"] = self.catalog.ids_of(ranked[ranked >= 0])
        return rewards, infos

    # ---------------------------------------------------------------- pickling

    def __getstate__(self) -> dict[str, Any]:
        # The world and index are rebuilt (or fetched from the process cache) from the config.
        return {
            "config": self.config.to_dict(),
            "render_mode": self.render_mode,
            "np_random": self._np_random,
            "episode": self._episode,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(render_mode=state["render_mode"], **state["config"])
        self._np_random = state["np_random"]
        self._episode = state["episode"]
