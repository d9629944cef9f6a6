"""The native vector env: N sub-environments stepped with one batched ``score`` call.

``gym.make_vec(env_id, num_envs=N, vectorization_mode="vector_entry_point")`` builds it for every
registered id. All sub-environments share one world, one index and one scorer; each has its own
episode and random generator (sub-environment ``i`` is seeded with ``seed + i``). Episodes that end
are reset in the same step (Gymnasium's ``SAME_STEP`` autoreset mode): the returned observation is
the next episode's first, and the finished episode's last observation and info are in
``infos["final_obs"]`` and ``infos["final_info"]``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from recgym.env import Episode, RecQueryEnv

__all__ = ["RecQueryVectorEnv", "stack_infos"]


def stack_infos(infos: list[dict[str, Any] | None], n: int) -> dict[str, Any]:
    """Gymnasium's vector-info layout (``{key: values, _key: mask}``) built in one pass.

    The same arrays as ``VectorEnv._add_info`` called once per sub-environment and key (numbers
    and bools in typed arrays, dicts recursively, anything else in object arrays), without its
    per-key, per-environment cost, which dominates a step of many cheap sub-environments.
    """
    first = next((info for info in infos if info), None)
    if first is None:
        return {}
    # Usually every sub-environment reports the same keys: then no per-key search is needed (a
    # keys view compares as a set, in C).
    everywhere = all(info and info.keys() == first.keys() for info in infos)
    # Otherwise, the sub-environments that report each key, in one pass over all the entries.
    where: dict[str, list[int]] = {}
    if not everywhere:
        for i, info in enumerate(infos):
            for k in info or ():
                where.setdefault(k, []).append(i)
    out: dict[str, Any] = {}
    for key in list(first) if everywhere else where:
        if everywhere:
            idx: Any = slice(None)
            values = [info[key] for info in infos]
            positions: Any = range(n)
        else:
            positions = idx = where[key]
            values = [infos[i][key] for i in positions]
        first_value = values[0]
        if key != "final_obs" and isinstance(first_value, dict):
            nested: list[dict[str, Any] | None] = [None] * n
            for i, v in zip(positions, values):
                nested[i] = v
            array: Any = stack_infos(nested, n)
        elif key != "final_obs" and (
            type(first_value) in (int, float, bool) or isinstance(first_value, np.number)
        ):
            array = np.zeros(n, dtype=type(first_value))
            array[idx] = values
        elif everywhere:
            # fromiter stores each value as it is (a list stays one element)
            array = np.fromiter(values, dtype=object, count=n)
        else:
            array = np.full(n, None, dtype=object)
            for i, v in zip(positions, values):
                array[i] = v
        mask = np.zeros(n, dtype=np.bool_)
        mask[idx] = True
        out[key], out[f"_{key}"] = array, mask
    return out


class RecQueryVectorEnv(VectorEnv):
    """``num_envs`` RecQueryEnv episodes advanced together.

    Observations are a tuple of ``num_envs`` strings and actions any sequence of ``num_envs``
    strings, as in Gymnasium's ``SyncVectorEnv`` over text spaces; rewards, terminations and
    truncations are arrays; infos use Gymnasium's ``{key: values, _key: mask}`` layout.
    """

    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": []}

    def __init__(self, num_envs: int = 1, **kwargs: Any) -> None:
        if not isinstance(num_envs, int) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}")
        kwargs.pop("render_mode", None)
        # A registered time limit caps the number of queries, exactly like the env's own `turns`.
        max_steps = kwargs.pop("max_episode_steps", None)
        if max_steps is not None:
            kwargs["turns"] = min(kwargs.get("turns", 1), max_steps)
        self.env = RecQueryEnv(**kwargs)
        self.num_envs = num_envs
        self.single_observation_space = self.env.observation_space
        self.single_action_space = self.env.action_space
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self._rngs = [seeding.np_random()[0] for _ in range(num_envs)]
        self._episodes: list[Episode | None] = [None] * num_envs

    @property
    def unwrapped_env(self) -> RecQueryEnv:
        """The single RecQueryEnv whose world, index and ``score`` the sub-environments share."""
        return self.env

    def reset(
        self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[tuple[str, ...], dict[str, Any]]:
        if seed is None:
            seeds: list[int | None] = [None] * self.num_envs
        elif isinstance(seed, int):
            seeds = [seed + i for i in range(self.num_envs)]
        else:
            seeds = list(seed)
            if len(seeds) != self.num_envs:
                raise ValueError(f"got {len(seeds)} seeds for {self.num_envs} sub-environments")
        if seed is not None:
            self._np_random, self._np_random_seed = seeding.np_random(seeds[0])
        infos = []
        for i, s in enumerate(seeds):
            if s is not None:
                self._rngs[i] = seeding.np_random(s)[0]
            infos.append(self._start(i, options))
        return tuple(self.env.observe(ep) for ep in self._episodes), stack_infos(
            infos, self.num_envs
        )

    def _start(self, i: int, options: dict[str, Any] | None = None) -> dict[str, Any]:
        row = self.env.draw_task(self._rngs[i], options)
        self._episodes[i] = Episode(row)
        return {"task": self.env.tasks[row].to_dict()}

    def step(
        self, actions: Any
    ) -> tuple[tuple[str, ...], np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        actions = list(actions)
        if len(actions) != self.num_envs:
            raise ValueError(f"got {len(actions)} actions for {self.num_envs} sub-environments")
        if any(ep is None for ep in self._episodes):
            raise RuntimeError("call reset() before step()")
        obs, rewards, terminated, truncated, step_infos = self.env.step_batch(
            self._episodes, actions
        )
        infos = []
        for i, info in enumerate(step_infos):
            if terminated[i] or truncated[i]:
                info = {"final_obs": obs[i], "final_info": info, **self._start(i)}
                obs[i] = self.env.observe(self._episodes[i])
            infos.append(info)
        return tuple(obs), rewards, terminated, truncated, stack_infos(infos, self.num_envs)

    def score(self, task_ids: Any, queries: Any) -> tuple[np.ndarray, list[dict[str, Any]]]:
        """The shared env's batched ``score`` (for trainers that manage their own tasks)."""
        return self.env.score(task_ids, queries)
