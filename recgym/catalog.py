"""The data model: a catalog of items, the tasks asked of it, and their judgments.

A :class:`Catalog` is what the retriever indexes and the agent never reads. A :class:`Task` is one
request with graded judgments (item id -> gain). A :class:`TaskSet` holds tasks with disjoint named
splits. :class:`Qrels` compiles a task set's judgments against a catalog into sorted arrays so that
a whole batch of rankings is looked up in one vectorised call.
"""

from __future__ import annotations

import difflib
import hashlib
import threading
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

__all__ = [
    "ArrayJudgments",
    "Catalog",
    "Qrels",
    "Task",
    "TaskSet",
    "assign_splits",
    "choice_error",
    "stable_fraction",
]


def choice_error(kind: str, value: object, choices: Iterable[str]) -> ValueError:
    """A ValueError naming the valid choices, with a close match suggested when there is one."""
    choices = sorted(choices)
    msg = f"unknown {kind} {value!r}; valid {kind}s: {', '.join(choices)}"
    close = difflib.get_close_matches(str(value), choices, n=1)
    if close:
        msg += f". Did you mean {close[0]!r}?"
    return ValueError(msg)


def stable_fraction(keys: Sequence[str], seed: int) -> np.ndarray:
    """Map each key to a number in [0, 1) that depends only on the key and the seed.

    Used for reproducible splits of real datasets: unlike ``hash()``, it does not change with
    ``PYTHONHASHSEED`` or between processes.
    """
    out = np.empty(len(keys), dtype=np.float64)
    salt = str(seed).encode()
    for i, key in enumerate(keys):
        digest = hashlib.blake2b(key.encode("utf-8"), digest_size=8, key=salt).digest()
        out[i] = int.from_bytes(digest, "little") / 2.0**64
    return out


def assign_splits(keys: Sequence[str], fractions: Mapping[str, float], seed: int) -> np.ndarray:
    """Assign each key to a named split with the given fractions, reproducibly.

    Keys are placed by :func:`stable_fraction`, so the assignment never depends on their order.

    A key's split depends only on the key, the seed and the fractions, so adding or removing other
    keys never moves it. Fractions must be positive and sum to 1.

    Example:
        >>> assign_splits(["a", "b", "c", "d"], {"train": 0.5, "test": 0.5}, seed=0).tolist()
        ['train', 'test', 'test', 'train']
    """
    names = list(fractions)
    values = np.array([fractions[name] for name in names], dtype=np.float64)
    if not names or not np.all(np.isfinite(values)) or values.min() <= 0:
        raise ValueError(f"split fractions must be positive numbers, got {dict(fractions)}")
    if abs(values.sum() - 1.0) > 1e-6:
        raise ValueError(
            f"split fractions must sum to 1, got {dict(fractions)} (sum {values.sum():g})"
        )
    edges = np.cumsum(values)
    edges[-1] = 1.0
    which = np.searchsorted(edges, stable_fraction(keys, seed), side="right")
    return np.asarray(names, dtype=object)[np.minimum(which, len(names) - 1)].astype(str)


@dataclass(frozen=True, eq=False)
class Catalog:
    """Items the retriever indexes.

    Attributes:
        ids: unique item ids, shape ``(n,)``.
        titles: one title per item.
        fields: extra text fields by name (e.g. ``{"brand": [...], "description": [...]}``), each a
            list aligned with ``ids``.
        categories: one category label per item (department, genre, ...).
        popularity: non-negative popularity per item (sales, ratings count, ...), shape ``(n,)``.
    """

    ids: np.ndarray
    titles: list[str]
    fields: Mapping[str, list[str]] = field(default_factory=dict)
    categories: np.ndarray | None = None
    popularity: np.ndarray | None = None

    def __post_init__(self) -> None:
        ids = np.asarray(self.ids, dtype=str)
        n = len(ids)
        if ids.ndim != 1:
            raise ValueError(f"Catalog ids must be one-dimensional, got shape {ids.shape}")
        if len(self.titles) != n:
            raise ValueError(f"Catalog has {n} ids but {len(self.titles)} titles")
        for name, values in self.fields.items():
            if len(values) != n:
                raise ValueError(f"Catalog field {name!r} has {len(values)} values for {n} items")
        categories = np.full(n, "", dtype=str) if self.categories is None else self.categories
        categories = np.asarray(categories, dtype=str)
        popularity = np.ones(n) if self.popularity is None else self.popularity
        popularity = np.asarray(popularity, dtype=np.float64)
        if categories.shape != (n,) or popularity.shape != (n,):
            raise ValueError("Catalog categories and popularity must have one value per item")
        if n and (not np.all(np.isfinite(popularity)) or popularity.min() < 0):
            raise ValueError("Catalog popularity must be finite and non-negative")
        if len(np.unique(ids)) != n:
            dup = _first_duplicate(ids)
            raise ValueError(f"Catalog item ids must be unique; {dup!r} appears more than once")
        object.__setattr__(self, "ids", ids)
        object.__setattr__(self, "titles", list(self.titles))
        object.__setattr__(
            self, "fields", MappingProxyType({k: list(v) for k, v in self.fields.items()})
        )
        object.__setattr__(self, "categories", categories)
        object.__setattr__(self, "popularity", popularity)
        object.__setattr__(self, "_row", None)
        object.__setattr__(self, "_hash", None)

    def __len__(self) -> int:
        return len(self.ids)

    def rows(self, item_ids: Iterable[str]) -> np.ndarray:
        """Row index of each item id, ``-1`` for ids not in the catalog."""
        if self._row is None:
            object.__setattr__(
                self, "_row", {item_id: i for i, item_id in enumerate(self.ids.tolist())}
            )
        row = self._row
        return np.fromiter((row.get(i, -1) for i in item_ids), dtype=np.int64)

    def texts(self, fields: Sequence[str] | None = None) -> list[str]:
        """The text a retriever indexes: the title followed by the named fields (default: all)."""
        names = list(self.fields) if fields is None else list(fields)
        if fields is not None and not names:
            raise ValueError("Catalog.texts() needs at least one field name (or None for all)")
        for name in names:
            if name != "title" and name not in self.fields:
                raise choice_error("catalog field", name, ["title", *self.fields])
        columns = [self.titles if name == "title" else self.fields[name] for name in names]
        if fields is None:
            columns.insert(0, self.titles)
        return [" ".join(filter(None, parts)) for parts in zip(*columns)]

    def content_hash(self) -> str:
        """A hex digest of everything a retriever could index; the key of on-disk index caches."""
        if self._hash is None:
            h = hashlib.blake2b(digest_size=16)
            for column in (
                self.ids.tolist(),
                self.titles,
                *(self.fields[k] for k in sorted(self.fields)),
            ):
                for value in column:
                    h.update(value.encode("utf-8", "surrogatepass"))
                    h.update(b"\x00")
                h.update(b"\x01")
            h.update(",".join(sorted(self.fields)).encode())
            object.__setattr__(self, "_hash", h.hexdigest())
        return self._hash


def _first_duplicate(ids: np.ndarray) -> str:
    seen: set[str] = set()
    for item_id in ids.tolist():
        if item_id in seen:
            return item_id
        seen.add(item_id)
    return ""


class ArrayJudgments(Mapping[str, float]):
    """Judgments stored as catalog rows and gains: a read-only ``Mapping`` of item id -> gain.

    Generated worlds judge hundreds of items per task; a dict per task would cost hundreds of
    megabytes, these arrays a few.
    """

    def __init__(self, catalog_ids: np.ndarray, rows: np.ndarray, gains: np.ndarray) -> None:
        self.catalog_ids = catalog_ids
        self.rows = np.asarray(rows, dtype=np.int32)
        self.gains = np.asarray(gains, dtype=np.float64)
        if self.rows.shape != self.gains.shape:
            raise ValueError("ArrayJudgments rows and gains must have the same shape")
        if len(self.gains) and (not np.all(np.isfinite(self.gains)) or self.gains.min() < 0):
            raise ValueError("ArrayJudgments gains must be finite and >= 0")

    def __getitem__(self, item_id: str) -> float:
        hit = np.flatnonzero(self.catalog_ids[self.rows] == item_id)
        if not len(hit):
            raise KeyError(item_id)
        return float(self.gains[hit[0]])

    def __iter__(self) -> Iterator[str]:
        return iter(self.catalog_ids[self.rows].tolist())

    def __len__(self) -> int:
        return len(self.rows)


@dataclass(frozen=True)
class Task:
    """One request and what the user wanted.

    Attributes:
        id: unique task id.
        request: the text the agent reads (a shopper's words, a rendered history, a query).
        judgments: item id -> graded gain (``>= 0``; trec_eval's linear gain); unjudged items: 0.
        split: the split this task belongs to (``train``, ``test``, ``test_ood_category``, ...).
        fields: structured fields of the request (product type, attributes, phrasing style, ...).
    """

    id: str
    request: str
    judgments: Mapping[str, float]
    split: str
    fields: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.judgments, ArrayJudgments):
            return  # validated on construction
        for item_id, gain in self.judgments.items():
            if not np.isfinite(gain) or gain < 0:
                raise ValueError(
                    f"task {self.id!r}: gain of item {item_id!r} must be >= 0, got {gain}"
                )

    def to_dict(self, with_judgments: bool = False) -> dict[str, Any]:
        """A plain dict of the task (what ``info["task"]`` holds; judgments only on request)."""
        out: dict[str, Any] = {"id": self.id, "request": self.request, "split": self.split}
        out.update({k: _copy(v) for k, v in self.fields.items()})  # callers may keep and mutate it
        if with_judgments:
            out["judgments"] = dict(self.judgments)
        return out


def _copy(value: Any) -> Any:
    """A copy of nested dicts and lists (plain data; much cheaper than ``copy.deepcopy``)."""
    kind = type(value)
    if kind is dict:
        return {k: _copy(v) for k, v in value.items()}
    if kind is list:
        return [_copy(v) for v in value]
    return value


class TaskSet:
    """Tasks with disjoint named splits (every task belongs to exactly one split)."""

    def __init__(self, tasks: Sequence[Task]) -> None:
        self.tasks: list[Task] = list(tasks)
        self._row = {task.id: i for i, task in enumerate(self.tasks)}
        if len(self._row) != len(self.tasks):
            raise ValueError("TaskSet task ids must be unique")
        names = sorted({task.split for task in self.tasks})
        splits = np.array([task.split for task in self.tasks], dtype=str)
        self._splits = {name: np.flatnonzero(splits == name) for name in names}

    def __len__(self) -> int:
        return len(self.tasks)

    def __getitem__(self, row: int) -> Task:
        return self.tasks[row]

    @property
    def split_names(self) -> list[str]:
        return list(self._splits)

    def split(self, name: str) -> np.ndarray:
        """Row indices of the tasks in split ``name``."""
        if name not in self._splits:
            raise choice_error("split", name, self._splits)
        return self._splits[name]

    def row(self, task_id: str) -> int:
        """Row index of a task id (``KeyError`` with close matches when unknown)."""
        try:
            return self._row[task_id]
        except KeyError:
            close = difflib.get_close_matches(str(task_id), list(self._row), n=3)
            hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
            raise KeyError(f"unknown task id {task_id!r}{hint}") from None

    def rows(self, task_ids: Iterable[str | int]) -> np.ndarray:
        """Row indices of task ids; integers are taken as rows and bounds-checked."""
        out = []
        for task_id in task_ids:
            if isinstance(task_id, (int, np.integer)) and not isinstance(task_id, bool):
                if not 0 <= task_id < len(self.tasks):
                    raise IndexError(f"task row {task_id} out of range [0, {len(self.tasks)})")
                out.append(int(task_id))
            else:
                out.append(self.row(task_id))
        return np.asarray(out, dtype=np.int64)

    def sizes(self) -> dict[str, int]:
        return {name: len(rows) for name, rows in self._splits.items()}


class Qrels:
    """Judgments compiled against a catalog for vectorised lookup.

    Judgments are stored as one sorted array of keys ``task_row * n_items + item_row`` with a
    parallel array of gains, each task's judgments contiguous. The gains of an ``(n, k)`` block of
    retrieved items are read from a dense scratch table of a few tasks by items, into which those
    tasks' judgments are written first and from which they are erased after: a handful of numpy
    calls per group of tasks, and no search (about twice as fast as one ``np.searchsorted`` of
    the block among all keys, at batches of 64 or 1,024 tasks). Judgments naming items absent
    from the catalog are counted in ``n_unknown`` and reported with a warning, never silently
    dropped.
    """

    #: Cells of the scratch table (float64), per thread: 2 MiB, small enough to stay in cache.
    SCRATCH_CELLS = 1 << 18

    def __init__(self, tasks: TaskSet, catalog: Catalog, rel_level: float = 1.0) -> None:
        self.n_items = len(catalog)
        self.rel_level = float(rel_level)
        keys: list[np.ndarray] = []
        gains: list[np.ndarray] = []
        n_unknown = 0
        width = 1
        for t, task in enumerate(tasks.tasks):
            judged = task.judgments
            if isinstance(judged, ArrayJudgments) and judged.catalog_ids is catalog.ids:
                rows, g = judged.rows.astype(np.int64), judged.gains
            else:
                rows = catalog.rows(judged)
                g = np.fromiter(judged.values(), dtype=np.float64, count=len(rows))
            known = rows >= 0
            n_unknown += int((~known).sum())
            rows, g = rows[known], g[known]
            keys.append(t * self.n_items + rows)
            gains.append(g)
            width = max(width, int((g > 0).sum()))
        self.n_unknown = n_unknown
        if n_unknown:
            warnings.warn(
                f"{n_unknown} judgments name items that are not in the catalog; they are ignored "
                "(they cannot be retrieved) and counted in Qrels.n_unknown",
                stacklevel=2,
            )
        key = np.concatenate(keys) if keys else np.zeros(0, dtype=np.int64)
        gain = np.concatenate(gains) if gains else np.zeros(0)
        order = np.argsort(key, kind="stable")
        self._keys, self._gains = key[order], gain[order]
        # The judgments of task t are _keys[_start[t]:_start[t + 1]].
        self._start = np.searchsorted(self._keys, np.arange(len(tasks) + 1) * self.n_items)
        self._local = threading.local()
        # Ideal gains per task, sorted descending and zero-padded: trec_eval's ideal ranking.
        self.ideal = np.zeros((len(tasks), width))
        self.n_relevant = np.zeros(len(tasks), dtype=np.int64)
        for t, g in enumerate(gains):
            positive = np.sort(g[g > 0])[::-1]
            self.ideal[t, : len(positive)] = positive
            self.n_relevant[t] = int((g >= self.rel_level).sum())

    def lookup(self, task_rows: np.ndarray, item_rows: np.ndarray) -> np.ndarray:
        """Gains of ``item_rows[i, j]`` for task ``task_rows[i]``; 0 for unjudged or ``-1`` rows."""
        task_rows = np.asarray(task_rows, dtype=np.int64)
        item_rows = np.asarray(item_rows, dtype=np.int64)
        out = np.zeros(item_rows.shape)
        n, n_items = len(task_rows), self.n_items
        if n == 0 or n_items == 0:
            return out
        table = self._scratch()
        step = max(1, len(table) // n_items)  # tasks per group
        for a in range(0, n, step):
            tasks, items = task_rows[a : a + step], item_rows[a : a + step]
            lo, hi = self._start[tasks], self._start[tasks + 1]
            count = hi - lo
            at = np.repeat(lo - np.cumsum(count) + count, count)
            at += np.arange(len(at))
            # Cell of each judgment: (position in the group, item row).
            cell = self._keys[at] + np.repeat((np.arange(len(tasks)) - tasks) * n_items, count)
            table[cell] = self._gains[at]
            found = items >= 0
            read = np.arange(len(tasks))[:, None] * n_items + np.where(found, items, 0)
            out[a : a + step] = np.where(found, table[read], 0.0)
            table[cell] = 0.0
        return out

    def _scratch(self) -> np.ndarray:
        """This thread's scratch table, all zero between calls."""
        table = getattr(self._local, "table", None)
        if table is None:
            cells = max(self.SCRATCH_CELLS, self.n_items)
            table = self._local.table = np.zeros(cells)
        return table

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["_local"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._local = threading.local()

    def ideal_gains(self, task_rows: np.ndarray, k: int) -> np.ndarray:
        """Ideal gains of the tasks, shape ``(n, k)``, zero-padded."""
        ideal = self.ideal[np.asarray(task_rows, dtype=np.int64), :k]
        if ideal.shape[1] < k:
            ideal = np.pad(ideal, ((0, 0), (0, k - ideal.shape[1])))
        return ideal
