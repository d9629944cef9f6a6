"""Reward specs: a weighted sum of ranking metrics, plus format reward and optional penalties.

A spec string names the metric part: ``"ndcg@100"``, ``"0.5*ndcg@10 + 0.5*recall@100"``. The
metric functions are those of :mod:`recgym.metrics`, so the env's reward, the evaluator and the
baselines all compute the same numbers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from recgym.metrics import parse_metric

__all__ = ["RewardSpec"]

_TERM = re.compile(r"^\s*(?:([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*\*\s*)?([A-Za-z_]+@[0-9]+)\s*$")


@dataclass(frozen=True)
class RewardSpec:
    """How a step's reward is computed from its metrics.

    ``reward = sum(w * metric) + format_reward - length_penalty * n_terms
    - popularity_penalty * popularity@10`` for a well-formed query, and ``-format_penalty`` for a
    malformed or empty one (whose metrics are all 0: nothing was retrieved).

    Attributes:
        metric: the spec string, e.g. ``"0.5*ndcg@10+0.5*recall@100"``.
        format_reward: bonus for a well-formed answer (Rec-R1's format reward).
        format_penalty: subtracted for a malformed answer or an empty query.
        length_penalty: subtracted per query term (discourages keyword dumping below the cap).
        popularity_penalty: times the mean popularity percentile of the top 10 retrieved items
            (in [0, 1]; discourages a policy that wins by retrieving best-sellers).
    """

    metric: str = "ndcg@100"
    format_reward: float = 0.0
    format_penalty: float = 0.0
    length_penalty: float = 0.0
    popularity_penalty: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "_terms", self._parse(self.metric))
        for name in ("format_reward", "format_penalty", "length_penalty", "popularity_penalty"):
            value = getattr(self, name)
            if not np.isfinite(value):
                raise ValueError(f"RewardSpec.{name} must be finite, got {value}")

    @staticmethod
    def _parse(spec: str) -> tuple[tuple[float, str], ...]:
        if not isinstance(spec, str) or not spec.strip():
            raise ValueError("reward spec must be a non-empty string such as 'ndcg@100'")
        terms = []
        for part in spec.split("+"):
            match = _TERM.match(part)
            if not match:
                raise ValueError(
                    f"cannot parse reward term {part.strip()!r} in {spec!r}; write terms like "
                    "'ndcg@100' or '0.5*recall@100' joined by '+'"
                )
            weight = float(match.group(1)) if match.group(1) else 1.0
            name, k = parse_metric(match.group(2))
            terms.append((weight, f"{name}@{k}"))
        return tuple(terms)

    @property
    def terms(self) -> tuple[tuple[float, str], ...]:
        """``(weight, "metric@k")`` pairs."""
        return self._terms  # type: ignore[attr-defined]

    @property
    def metrics(self) -> list[str]:
        return [name for _, name in self.terms]

    @property
    def max_cutoff(self) -> int:
        return max(parse_metric(name)[1] for name in self.metrics)

    def __call__(
        self,
        metrics: Mapping[str, np.ndarray],
        valid: np.ndarray,
        n_terms: np.ndarray,
        popularity: np.ndarray,
    ) -> np.ndarray:
        """Rewards of a batch from its metrics, validity mask, query lengths and popularity."""
        reward = sum(w * metrics[name] for w, name in self.terms)
        reward = reward + self.format_reward
        if self.length_penalty:
            reward = reward - self.length_penalty * n_terms
        if self.popularity_penalty:
            reward = reward - self.popularity_penalty * popularity
        # 0.0 - penalty, not -penalty: no penalty gives 0.0, not -0.0.
        return np.where(valid, reward, 0.0 - self.format_penalty).astype(np.float64)
