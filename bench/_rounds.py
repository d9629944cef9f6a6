"""Timing in alternating rounds, for the benchmarks that compare two things on a shared machine.

Such a machine's speed drifts by up to 2x within minutes, so timing one contender after the other
measures the drift as much as the contenders. Here each round runs every contender once, back to
back: a contender's best round is its speed on a quiet spell, and the median over rounds of the
per-round ratio compares the contenders under the same conditions.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def alternate(measures: dict[str, Callable[[], float]], rounds: int) -> dict[str, list[float]]:
    """Each measure's result in each of ``rounds`` rounds, the measures alternating; every other
    round runs them in reverse order, so that none always goes first (A B, B A, A B, ...)."""
    out: dict[str, list[float]] = {name: [] for name in measures}
    names = list(measures)
    for i in range(rounds):
        for name in names if i % 2 == 0 else names[::-1]:
            out[name].append(measures[name]())
    return out


def seconds(fn: Callable[[], object]) -> Callable[[], float]:
    """A measure: the wall-clock seconds of one call of ``fn``."""

    def measure() -> float:
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start

    return measure


def median_ratio(a: list[float], b: list[float]) -> float:
    """The median over rounds of ``a[i] / b[i]``."""
    return statistics.median(x / y for x, y in zip(a, b))
