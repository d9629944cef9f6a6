"""User histories as requests: chronological grouping, rendering as text, leave-last-out tasks.

A sequential task shows the agent what a user interacted with (oldest first, newest last) and judges
the item they interacted with next (gain 1). The sequential dataset loaders (MovieLens, RecBole,
Amazon Reviews 2023) and generated sequential worlds build their tasks with these functions, so that
every source renders histories and splits them the same way.

Leave-last-out schemes (the position of the judged item in a history of ``n`` interactions):

* ``"by_user"``: one task per user, the last item judged; users are assigned to splits by
  :func:`recgym.catalog.assign_splits` (so test users are never seen in training).
* ``"last_out"``: three tasks per user, as in the leave-last-out protocol of sequential
  recommendation (SASRec, Amazon Reviews 2023's ``last_out`` split, Rec-R1): ``test`` judges the
  last item, ``val`` the second to last, ``train`` the third to last; each task's history holds
  only what came before its judged item, so no split sees the item another split judges.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from recgym.catalog import Catalog, Task, assign_splits, choice_error

__all__ = [
    "DEFAULT_FRACTIONS",
    "SCHEMES",
    "History",
    "group_histories",
    "last_item_query",
    "leave_last_out",
    "next_item_task",
    "next_item_tasks",
    "render_history",
]

SCHEMES = ("by_user", "last_out")
DEFAULT_FRACTIONS: Mapping[str, float] = {"train": 0.8, "val": 0.1, "test": 0.1}
_LAST_OUT = ("test", "val", "train")  # splits of the last, second-to-last, third-to-last items


def render_history(
    titles: Sequence[str], ratings: Sequence[float] | None = None, max_items: int = 20
) -> str:
    """A history as text: one item per line, oldest first and newest last.

    Args:
        titles: the items' display titles, oldest first.
        ratings: the user's rating of each item (``None`` or NaN entries are left out).
        max_items: only the newest ``max_items`` items are rendered.

    Example:
        >>> print(render_history(["Heat (1995)", "Alien (1979)", "Up (2009)"], [4, 3.5, None], 2))
        Alien (1979) (rated 3.5)
        Up (2009)
    """
    if not isinstance(max_items, int) or isinstance(max_items, bool) or max_items < 1:
        raise ValueError(f"max_items must be a positive integer, got {max_items!r}")
    if ratings is not None and len(ratings) != len(titles):
        raise ValueError(f"render_history got {len(titles)} titles but {len(ratings)} ratings")
    lines = []
    for i in range(max(len(titles) - max_items, 0), len(titles)):
        line = " ".join(str(titles[i]).split()) or "(untitled)"  # one line per item
        rating = None if ratings is None else ratings[i]
        if rating is not None and not math.isnan(float(rating)):
            line += f" (rated {float(rating):g})"
        lines.append(line)
    return "\n".join(lines)


@dataclass(frozen=True)
class History:
    """One user's interactions, oldest first.

    Attributes:
        user: the user id.
        items: catalog rows of the items, shape ``(n,)``.
        ratings: the user's ratings, shape ``(n,)``, or ``None``.
    """

    user: str
    items: np.ndarray
    ratings: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.items)


def group_histories(
    users: Sequence[str], items: np.ndarray, timestamps: np.ndarray | None = None,
    ratings: np.ndarray | None = None,
) -> list[History]:
    """Interactions grouped per user in chronological order.

    ``users`` may be strings or integers (``History.user`` is their ``str``); ``items`` are catalog
    rows.

    Ties in time (and all interactions when ``timestamps`` is ``None``) keep their input order.
    Users come in the order of their first interaction.
    """
    items = np.asarray(items, dtype=np.int64)
    n = len(items)
    if len(users) != n or (timestamps is not None and len(timestamps) != n) or (
            ratings is not None and len(ratings) != n):
        raise ValueError("group_histories needs one user, item, timestamp and rating per "
                         "interaction")
    if n == 0:
        return []
    names, first, codes = np.unique(np.asarray(users), return_index=True, return_inverse=True)
    rank = np.empty(len(names), dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(names))
    user_order = rank[codes]
    time = np.zeros(n) if timestamps is None else np.asarray(timestamps, dtype=np.float64)
    order = np.lexsort((np.arange(n), time, user_order))
    user_order = user_order[order]
    bounds = np.flatnonzero(np.diff(user_order)) + 1
    rated = None if ratings is None else np.asarray(ratings, dtype=np.float64)
    return [History(str(names[codes[chunk[0]]]), items[chunk],
                    None if rated is None else rated[chunk])
            for chunk in np.split(order, bounds)]


def leave_last_out(n: int, scheme: str, min_history: int = 1) -> list[tuple[str | None, int]]:
    """The judged positions of a history of ``n`` items: ``(split, position)`` pairs.

    ``split`` is ``None`` under ``"by_user"`` (the caller assigns users to splits). A position is
    judged only when at least ``min_history`` items precede it.

    Example:
        >>> leave_last_out(5, "last_out")
        [('test', 4), ('val', 3), ('train', 2)]
        >>> leave_last_out(2, "last_out", min_history=1)
        [('test', 1)]
    """
    if scheme not in SCHEMES:
        raise choice_error("leave-last-out scheme", scheme, SCHEMES)
    if scheme == "by_user":
        candidates: list[tuple[str | None, int]] = [(None, n - 1)]
    else:
        candidates = [(split, n - 1 - i) for i, split in enumerate(_LAST_OUT)]
    return [(split, pos) for split, pos in candidates if pos >= max(min_history, 0)]


def next_item_tasks(
    histories: Sequence[History], item_ids: np.ndarray, titles: Sequence[str], *,
    scheme: str = "by_user", max_history: int = 20, min_history: int = 1,
    fractions: Mapping[str, float] = DEFAULT_FRACTIONS, seed: int = 0, show_ratings: bool = True,
) -> list[Task]:
    """Next-item tasks: request = the rendered history, judgment = the next item (gain 1).

    Args:
        histories: per-user histories (catalog rows), oldest first.
        item_ids: the catalog's item ids (``Catalog.ids``).
        titles: the display title of each catalog row.
        scheme: ``"by_user"`` or ``"last_out"`` (module docstring).
        max_history: the request shows only the newest ``max_history`` items before the judged one.
        min_history: a position is judged only when at least this many items precede it.
        fractions, seed: the split of users under ``"by_user"``.
        show_ratings: render each item's rating when the histories have ratings.

    Task ids are the user id (``"by_user"``) or ``"<user>/<split>"`` (``"last_out"``); a task's
    ``fields`` hold ``user``, ``history`` (the shown item ids, newest last) and ``n_history`` (how
    many items preceded the judged one, shown or not).
    """
    if not isinstance(max_history, int) or isinstance(max_history, bool) or max_history < 1:
        raise ValueError(f"max_history must be a positive integer, got {max_history!r}")
    user_split = None
    if scheme == "by_user":
        user_split = assign_splits([h.user for h in histories], fractions, seed)
    tasks = []
    for u, history in enumerate(histories):
        for split, pos in leave_last_out(len(history), scheme, min_history):
            split = split if user_split is None else str(user_split[u])
            task_id = history.user if scheme == "by_user" else f"{history.user}/{split}"
            tasks.append(next_item_task(history, pos, split, task_id, item_ids, titles,
                                        max_history=max_history, show_ratings=show_ratings))
    return tasks


def next_item_task(
    history: History, pos: int, split: str, task_id: str, item_ids: np.ndarray,
    titles: Sequence[str], *, max_history: int = 20, show_ratings: bool = True,
) -> Task:
    """The task judging ``history.items[pos]`` from the (newest ``max_history``) items before it.

    For sources whose judged positions are not a leave-last-out scheme (official split files).
    """
    start = max(pos - max_history, 0)
    shown = history.items[start:pos]
    ratings = None
    if show_ratings and history.ratings is not None:
        ratings = history.ratings[start:pos].tolist()
    request = render_history([titles[r] for r in shown.tolist()], ratings, max_history)
    fields = {"user": history.user, "history": item_ids[shown].tolist(), "n_history": pos}
    return Task(task_id, request, {str(item_ids[history.items[pos]]): 1.0}, split, fields)


def last_item_query(catalog: Catalog) -> Callable[[Task], str]:
    """``World.identity`` of history tasks: the title of the newest item shown (no rewriting)."""

    def identity(task: Task) -> str:
        shown = task.fields.get("history") or []
        return catalog.titles[int(catalog.rows(shown[-1:])[0])] if shown else task.request

    return identity
