"""Ranking metrics with trec_eval semantics, batched over rankings.

Every metric is a pure function of gain matrices (numpy only, no loop over rows) returning one
``float64`` value per ranking. The inputs are what :class:`recgym.catalog.Qrels` produces:

* ``gains``: ``(n, depth)`` gain of the item at each rank (rank 1 first); 0 for unjudged items and
  for empty slots. Columns beyond ``depth`` are treated as empty slots, as if the matrix were
  zero-padded to ``k``, so a ranking shorter than the cutoff needs no special handling.
* ``ideal``: ``(n, width)`` the task's judged positive gains sorted descending, zero-padded
  (trec_eval's ideal ranking: every judged item, retrieved or not). Also implicitly zero-padded.
* ``n_relevant``: ``(n,)`` number of judged items with gain ``>= rel_level``.
* ``rel_level``: trec_eval's ``relevance_level``: an item is *relevant* when its gain is
  ``>= rel_level``. It must be positive, so that unjudged items and empty slots (gain 0) are never
  relevant. nDCG does not use it (trec_eval's ``ndcg_cut`` uses the raw gains at every level).

Conventions shared with trec_eval (checked against ``pytrec_eval`` in ``tests/test_metrics.py``):
precision divides by ``k`` even when fewer than ``k`` items were retrieved; recall and average
precision divide by every relevant judged item, retrieved or not; a task without relevant (or, for
nDCG, positive) judgments scores 0 on every metric. pytrec_eval omits a query whose judgment set is
empty from its output altogether; here such a task is simply a row of zeros.

:func:`trec_order` ranks a scored run the way trec_eval does (score descending, ties broken by
document id descending in ``strcmp`` order), the deterministic tie-break used whenever metrics are
computed from ``(id, score)`` runs.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import ArrayLike

from recgym.catalog import choice_error

__all__ = [
    "METRICS",
    "average_precision",
    "compute",
    "hit",
    "mrr",
    "ndcg",
    "parse_metric",
    "precision",
    "recall",
    "trec_order",
]


# --------------------------------------------------------------------------------------------------
# Validation helpers
# --------------------------------------------------------------------------------------------------


def _check_k(k: object) -> int:
    if isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, np.integer)):
        raise TypeError(f"cutoff k must be an integer, got {type(k).__name__} {k!r}")
    if k < 1:
        raise ValueError(f"cutoff k must be >= 1, got {k}")
    return int(k)


def _check_rel_level(rel_level: object) -> float:
    if isinstance(rel_level, (bool, np.bool_)) or not isinstance(
        rel_level, (int, float, np.integer, np.floating)
    ):
        raise TypeError(f"rel_level must be a real number, got {type(rel_level).__name__}")
    level = float(rel_level)
    if not np.isfinite(level) or level <= 0:
        raise ValueError(
            f"rel_level must be finite and > 0 (a gain of 0 marks unjudged items and empty slots, "
            f"which are never relevant), got {rel_level}"
        )
    return level


def _matrix(values: ArrayLike, name: str, n: int | None = None) -> np.ndarray:
    """``values`` as a finite, non-negative ``(n, m)`` float64 array."""
    arr = np.asarray(values)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be a real numeric array, got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n rankings, depth), got shape {arr.shape}")
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"{name} has {arr.shape[0]} rows but gains has {n}")
    arr = arr.astype(np.float64, copy=False)
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} must be finite (no NaN or inf)")
    if arr.size and arr.min() < 0:
        raise ValueError(f"{name} must be >= 0 (trec_eval linear gains), got min {arr.min()}")
    return arr


def _gains(gains: ArrayLike) -> np.ndarray:
    return _matrix(gains, "gains")


def _ideal(ideal: ArrayLike, n: int) -> np.ndarray:
    arr = _matrix(ideal, "ideal", n)
    if arr.shape[1] > 1 and (np.diff(arr, axis=1) > 0).any():
        raise ValueError("ideal gains must be sorted in descending order along each row")
    return arr


def _n_relevant(n_relevant: ArrayLike, gains: np.ndarray, rel_level: float) -> np.ndarray:
    arr = np.asarray(n_relevant)
    if arr.dtype.kind not in "iu" and not (
        arr.dtype.kind == "f" and np.isfinite(arr).all() and (arr == np.round(arr)).all()
    ):
        raise TypeError(f"n_relevant must hold integers, got dtype {arr.dtype}")
    if arr.shape != (gains.shape[0],):
        raise ValueError(f"n_relevant must have shape ({gains.shape[0]},), got {arr.shape}")
    arr = arr.astype(np.float64)
    if arr.size and arr.min() < 0:
        raise ValueError("n_relevant must be >= 0")
    retrieved = (gains >= rel_level).sum(axis=1)
    if (retrieved > arr).any():
        row = int(np.argmax(retrieved > arr))
        raise ValueError(
            f"n_relevant[{row}] = {int(arr[row])} but ranking {row} holds {int(retrieved[row])} "
            f"relevant items (gain >= {rel_level}); n_relevant must count every relevant "
            "judged item"
        )
    return arr


def _safe_divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den`` with 0 where ``den`` is 0."""
    return np.divide(num, den, out=np.zeros_like(num, dtype=np.float64), where=den > 0)


# --------------------------------------------------------------------------------------------------
# Kernels (validated float64 inputs)
# --------------------------------------------------------------------------------------------------


def _dcg(gains: np.ndarray, k: int) -> np.ndarray:
    top = gains[:, :k]
    discount = 1.0 / np.log2(np.arange(2, top.shape[1] + 2, dtype=np.float64))
    return top @ discount


def _ndcg(gains: np.ndarray, ideal: np.ndarray, k: int) -> np.ndarray:
    return _safe_divide(_dcg(gains, k), _dcg(ideal, k))


def _relevant(gains: np.ndarray, k: int, rel_level: float) -> np.ndarray:
    return gains[:, :k] >= rel_level


def _recall(gains: np.ndarray, n_rel: np.ndarray, k: int, rel_level: float) -> np.ndarray:
    found = _relevant(gains, k, rel_level).sum(axis=1).astype(np.float64)
    return _safe_divide(found, n_rel)


def _precision(gains: np.ndarray, k: int, rel_level: float) -> np.ndarray:
    return _relevant(gains, k, rel_level).sum(axis=1) / float(k)


def _mrr(gains: np.ndarray, k: int, rel_level: float) -> np.ndarray:
    rel = _relevant(gains, k, rel_level)
    if rel.shape[1] == 0:
        return np.zeros(rel.shape[0])
    first = np.argmax(rel, axis=1)
    return np.where(rel.any(axis=1), 1.0 / (first + 1.0), 0.0)


def _hit(gains: np.ndarray, k: int, rel_level: float) -> np.ndarray:
    return _relevant(gains, k, rel_level).any(axis=1).astype(np.float64)


def _average_precision(
    gains: np.ndarray, n_rel: np.ndarray, k: int, rel_level: float
) -> np.ndarray:
    rel = _relevant(gains, k, rel_level).astype(np.float64)
    ranks = np.arange(1, rel.shape[1] + 1, dtype=np.float64)
    precision_at = np.cumsum(rel, axis=1) / ranks
    return _safe_divide((precision_at * rel).sum(axis=1), n_rel)


# --------------------------------------------------------------------------------------------------
# Public metrics
# --------------------------------------------------------------------------------------------------


def ndcg(gains: ArrayLike, ideal: ArrayLike, k: int) -> np.ndarray:
    """Normalised discounted cumulative gain at ``k`` (trec_eval ``ndcg_cut.k``).

    ``DCG@k = sum_{i=1..k} g_i / log2(i + 1)`` with linear gains ``g_i``;
    ``nDCG@k = DCG@k(gains) / DCG@k(ideal)``, and 0 when the ideal DCG is 0 (no positive judgment).
    The ideal ranking holds every judged positive item, retrieved or not. ``rel_level`` plays no
    part: every positive gain counts, as in trec_eval.

    Args:
        gains: ``(n, depth)`` gain at each rank; columns past ``depth`` count as empty slots.
        ideal: ``(n, width)`` judged positive gains sorted descending, zero-padded.
        k: the cutoff, ``>= 1``.

    Returns:
        ``(n,)`` float64 in ``[0, 1]`` when ``ideal`` is consistent with ``gains``.
    """
    k = _check_k(k)
    g = _gains(gains)
    return _ndcg(g, _ideal(ideal, g.shape[0]), k)


def recall(gains: ArrayLike, n_relevant: ArrayLike, k: int, rel_level: float = 1.0) -> np.ndarray:
    """Recall at ``k`` (trec_eval ``recall.k``).

    ``R@k = |{i <= k : g_i >= rel_level}| / n_relevant``, and 0 when ``n_relevant`` is 0.

    Args:
        gains: ``(n, depth)`` gain at each rank; columns past ``depth`` count as empty slots.
        n_relevant: ``(n,)`` number of judged items with gain ``>= rel_level``.
        k: the cutoff, ``>= 1``.
        rel_level: the gain from which an item is relevant (``> 0``).

    Returns:
        ``(n,)`` float64 in ``[0, 1]``.
    """
    k, level, g = _check_k(k), _check_rel_level(rel_level), _gains(gains)
    return _recall(g, _n_relevant(n_relevant, g, level), k, level)


def precision(gains: ArrayLike, k: int, rel_level: float = 1.0) -> np.ndarray:
    """Precision at ``k`` (trec_eval ``P.k``).

    ``P@k = |{i <= k : g_i >= rel_level}| / k``: the denominator is ``k`` even when fewer than ``k``
    items were retrieved.

    Args:
        gains: ``(n, depth)`` gain at each rank; columns past ``depth`` count as empty slots.
        k: the cutoff, ``>= 1``.
        rel_level: the gain from which an item is relevant (``> 0``).

    Returns:
        ``(n,)`` float64 in ``[0, 1]``.
    """
    k, level = _check_k(k), _check_rel_level(rel_level)
    return _precision(_gains(gains), k, level)


def mrr(gains: ArrayLike, k: int, rel_level: float = 1.0) -> np.ndarray:
    """Reciprocal rank of the first relevant item within the top ``k``.

    ``RR@k = 1 / min{i <= k : g_i >= rel_level}``, and 0 when no relevant item is in the top ``k``
    (trec_eval ``recip_rank`` of the run truncated to its top ``k``). Averaged over tasks, MRR@k.

    Args:
        gains: ``(n, depth)`` gain at each rank; columns past ``depth`` count as empty slots.
        k: the cutoff, ``>= 1``.
        rel_level: the gain from which an item is relevant (``> 0``).

    Returns:
        ``(n,)`` float64 in ``[0, 1]``.
    """
    k, level = _check_k(k), _check_rel_level(rel_level)
    return _mrr(_gains(gains), k, level)


def hit(gains: ArrayLike, k: int, rel_level: float = 1.0) -> np.ndarray:
    """Whether a relevant item is in the top ``k``.

    ir-measures ``Success@k``, trec_eval ``success.k``:
    ``Hit@k = 1 if any(g_i >= rel_level for i <= k) else 0``.

    Args:
        gains: ``(n, depth)`` gain at each rank; columns past ``depth`` count as empty slots.
        k: the cutoff, ``>= 1``.
        rel_level: the gain from which an item is relevant (``> 0``).

    Returns:
        ``(n,)`` float64, each 0.0 or 1.0.
    """
    k, level = _check_k(k), _check_rel_level(rel_level)
    return _hit(_gains(gains), k, level)


def average_precision(
    gains: ArrayLike, n_relevant: ArrayLike, k: int, rel_level: float = 1.0
) -> np.ndarray:
    """Average precision cut at ``k`` (trec_eval ``map_cut.k``).

    ``AP@k = sum_{i <= k, g_i >= rel_level} P@i / n_relevant`` with ``P@i`` the precision at rank
    ``i``; the denominator counts every relevant judged item, retrieved or not (so a perfect top
    ``k`` scores below 1 when more than ``k`` items are relevant). 0 when ``n_relevant`` is 0.

    Args:
        gains: ``(n, depth)`` gain at each rank; columns past ``depth`` count as empty slots.
        n_relevant: ``(n,)`` number of judged items with gain ``>= rel_level``.
        k: the cutoff, ``>= 1``.
        rel_level: the gain from which an item is relevant (``> 0``).

    Returns:
        ``(n,)`` float64 in ``[0, 1]``.
    """
    k, level, g = _check_k(k), _check_rel_level(rel_level), _gains(gains)
    return _average_precision(g, _n_relevant(n_relevant, g, level), k, level)


METRICS: dict[str, Callable[..., np.ndarray]] = {
    "ndcg": ndcg,
    "recall": recall,
    "precision": precision,
    "mrr": mrr,
    "hit": hit,
    "map": average_precision,
}
"""Metric name (as written in a spec such as ``"ndcg@10"``) -> metric function."""

_CUTOFF = re.compile(r"[0-9]+")


def parse_metric(spec: str) -> tuple[str, int]:
    """Split a metric spec ``"name@k"`` into ``(name, k)``, e.g. ``"nDCG@10" -> ("ndcg", 10)``.

    Names are case-insensitive and must be keys of :data:`METRICS`; ``k`` is a positive integer.

    Raises:
        TypeError: ``spec`` is not a string.
        ValueError: unknown name (the message lists valid names and suggests a close one), or a
            missing, non-integer or non-positive cutoff.
    """
    if not isinstance(spec, str):
        raise TypeError(f"metric spec must be a string like 'ndcg@10', got {type(spec).__name__}")
    name, sep, cutoff = spec.strip().partition("@")
    name, cutoff = name.strip().lower(), cutoff.strip()
    if name not in METRICS:
        raise choice_error("metric", name, METRICS)
    if not sep or not cutoff:
        raise ValueError(f"metric spec {spec!r} needs a cutoff, e.g. '{name}@10'")
    if not _CUTOFF.fullmatch(cutoff) or int(cutoff) < 1:
        raise ValueError(
            f"metric spec {spec!r}: the cutoff must be a positive integer, e.g. '{name}@10'"
        )
    return name, int(cutoff)


def compute(
    specs: Sequence[str],
    gains: ArrayLike,
    ideal: ArrayLike,
    n_relevant: ArrayLike,
    rel_level: float = 1.0,
    *,
    validate: bool = True,
) -> dict[str, np.ndarray]:
    """Every requested metric over the same batch of rankings, inputs validated once.

    ``gains`` may have fewer columns than the largest cutoff: missing columns are empty slots (gain
    0), exactly as if ``gains`` were zero-padded. ``ideal`` may be narrower or wider than any ``k``.

    Args:
        specs: metric specs such as ``["ndcg@10", "recall@100"]`` (see :func:`parse_metric`).
        gains: ``(n, depth)`` gain at each rank.
        ideal: ``(n, width)`` judged positive gains sorted descending, zero-padded.
        n_relevant: ``(n,)`` number of judged items with gain ``>= rel_level``.
        rel_level: the gain from which an item is relevant (``> 0``).
        validate: check that ``gains`` and ``ideal`` are finite and non-negative and ``ideal``
            sorted. ``False`` is for callers whose arrays hold these by construction, as the
            env's judgment tables do. ``n_relevant`` is always checked against ``gains``.

    Returns:
        ``{canonical spec: (n,) float64}`` keyed by the normalised spec (``"NDCG@10"`` gives key
        ``"ndcg@10"``), in the order requested; repeated specs appear once.
    """
    if isinstance(specs, str):
        specs = [specs]
    parsed = [parse_metric(spec) for spec in specs]
    level = _check_rel_level(rel_level)
    if validate:
        g = _gains(gains)
        ideal_ = _ideal(ideal, g.shape[0])
    else:
        g, ideal_ = np.asarray(gains, dtype=np.float64), np.asarray(ideal, dtype=np.float64)
    # Always checked: a ranking holding more relevant items than are judged (a retriever that
    # returns an item twice) would otherwise give a recall above 1.
    n_rel = _n_relevant(n_relevant, g, level)
    kernels: dict[str, Callable[[int], np.ndarray]] = {
        "ndcg": lambda k: _ndcg(g, ideal_, k),
        "recall": lambda k: _recall(g, n_rel, k, level),
        "precision": lambda k: _precision(g, k, level),
        "mrr": lambda k: _mrr(g, k, level),
        "hit": lambda k: _hit(g, k, level),
        "map": lambda k: _average_precision(g, n_rel, k, level),
    }
    out: dict[str, np.ndarray] = {}
    for name, k in parsed:
        key = f"{name}@{k}"
        if key not in out:
            out[key] = kernels[name](k)
    return out


# --------------------------------------------------------------------------------------------------
# Ranking a scored run
# --------------------------------------------------------------------------------------------------


def trec_order(doc_ids: Sequence[str], scores: ArrayLike) -> np.ndarray:
    """The permutation trec_eval applies to rank a run: best first.

    trec_eval (and pytrec_eval, which embeds it) ignores the rank column and sorts a query's
    documents by score descending, compared as C doubles, breaking ties by document id *descending*
    in ``strcmp`` order. Checked empirically against pytrec_eval 0.5: among tied documents ``"b"``
    ranks before ``"a"``, ``"9"`` before ``"10"``, ``"ab"`` before ``"a"``, ``"a"`` before ``"B"``
    and ``"é"`` before ``"z"`` (``strcmp`` compares UTF-8 bytes, whose order is Python's code-point
    order). ``0.0`` and ``-0.0`` tie. The order is fully deterministic because ids are unique.

    Note that the order only depends on the scores as float64: a run written to a text file with
    rounded scores may gain ties, and so a different order, that the in-memory run does not have.
    ir-measures' ``RR@k`` (served by its msmarco provider) breaks ties the other way (id ascending).

    Args:
        doc_ids: ``(m,)`` unique document ids.
        scores: ``(m,)`` real scores (``-inf`` allowed, NaN not).

    Returns:
        ``(m,)`` int64 indices into ``doc_ids`` in rank order.
    """
    id_list = [str(doc_id) for doc_id in doc_ids]
    if any("\x00" in doc_id for doc_id in id_list):
        raise ValueError("doc_ids must not contain NUL characters (trec_eval compares C strings)")
    ids = np.array(id_list, dtype=str) if id_list else np.zeros(0, dtype=str)
    s = np.asarray(scores)
    if ids.ndim != 1:
        raise ValueError(f"doc_ids must be one-dimensional, got shape {ids.shape}")
    if s.ndim != 1 or s.shape[0] != ids.shape[0]:
        raise ValueError(f"scores must have shape ({ids.shape[0]},) like doc_ids, got {s.shape}")
    if s.dtype.kind not in "biuf":
        raise TypeError(f"scores must be a real numeric array, got dtype {s.dtype}")
    s = s.astype(np.float64, copy=False)
    if np.isnan(s).any():
        raise ValueError("scores must not be NaN")
    unique, position = np.unique(ids, return_inverse=True)
    if len(unique) != len(ids):
        dup = str(unique[np.flatnonzero(np.bincount(position.ravel()) > 1)[0]])
        raise ValueError(
            f"doc_ids must be unique (trec_eval rejects duplicate docs); {dup!r} repeats"
        )
    # lexsort sorts by the last key first: score descending, then id descending (-position).
    return np.lexsort((-position.ravel(), -s)).astype(np.int64)
