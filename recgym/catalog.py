"""The data model: a catalog of items, the tasks asked of it, and their judgments.

A :class:`Catalog` is what the retriever indexes and the agent never reads. A :class:`Task` is one
request with graded judgments (item id -> gain). A :class:`TaskSet` holds tasks with disjoint named
splits. :class:`Qrels` compiles a task set's judgments against a catalog (into a matrix of gain
codes, or sorted keys, whichever is smaller) so that a whole batch of rankings is looked up in one
vectorised call.
"""

from __future__ import annotations

import difflib
import hashlib
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
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
        object.__setattr__(self, "_by_id", None)
        object.__setattr__(self, "_hash", None)

    def __len__(self) -> int:
        return len(self.ids)

    def rows(self, item_ids: Iterable[str]) -> np.ndarray:
        """Row index of each item id, ``-1`` for ids not in the catalog."""
        row = self._id_index()[0]
        return np.fromiter((row.get(i, -1) for i in item_ids), dtype=np.int64)

    def ids_of(self, rows: np.ndarray) -> list[Any]:
        """The item ids at ``rows`` (valid rows, any shape) as (nested) lists of ``str``: what
        ``self.ids[rows].tolist()`` gives, without making a new ``str`` per id."""
        return self._id_index()[1].take(rows).tolist()

    def _id_index(self) -> tuple[dict[str, int], np.ndarray]:
        """Built on first use: id -> row, and the ids as an object array (the same ``str``
        objects as the dict's keys)."""
        if self._by_id is None:
            row = {item_id: i for i, item_id in enumerate(self.ids.tolist())}
            objects = np.empty(len(row), dtype=object)
            objects[:] = list(row)
            object.__setattr__(self, "_by_id", (row, objects))
        return self._by_id

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
        """A plain dict of the task (what ``info["task"]`` holds; judgments only on request).

        A new dict each call, its nested dicts and lists copied too: callers may keep and mutate
        it. (The top-level layout is computed once: ``fields`` is read-only, as the task is.)"""
        layout = self.__dict__.get("_layout")
        if layout is None:
            plain = {"id": self.id, "request": self.request, "split": self.split, **self.fields}
            # How each nested value is copied: a shallow copy where it holds no container.
            nested = [(k, _copier(v)) for k, v in plain.items() if type(v) in _NESTED]
            layout = (plain, nested)
            object.__setattr__(self, "_layout", layout)
        plain, nested = layout
        out = plain.copy()
        for k, copy in nested:
            out[k] = copy(out[k])
        if with_judgments:
            out["judgments"] = dict(self.judgments)
        return out


_NESTED = (dict, list)


def _copier(value: dict | list) -> Callable[[Any], Any]:
    """``dict.copy`` or ``list.copy`` for a value without nested containers, else ``_copy``."""
    items = value.values() if type(value) is dict else value
    if any(type(v) in _NESTED for v in items):
        return _copy
    return type(value).copy


def _copy(value: Any) -> Any:
    """A copy of nested dicts and lists (plain data; much cheaper than ``copy.deepcopy``)."""
    if type(value) is dict:
        return {k: _copy(v) if type(v) in _NESTED else v for k, v in value.items()}
    if type(value) is list:
        return [_copy(v) if type(v) in _NESTED else v for v in value]
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
        if isinstance(task_ids, np.ndarray) or (
            isinstance(task_ids, list) and all(type(t) is int for t in task_ids)
        ):
            rows = np.asarray(task_ids)
            if rows.ndim == 1 and rows.dtype.kind in "iu":  # all rows: checked at once
                bad = (rows < 0) | (rows >= len(self.tasks))
                if bad.any():
                    task_id = rows[np.flatnonzero(bad)[0]]
                    raise IndexError(f"task row {task_id} out of range [0, {len(self.tasks)})")
                return rows.astype(np.int64)
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
    """Judgments compiled against a catalog for vectorised lookup, in whichever of two layouts
    takes less memory.

    * **Dense codes**: a ``tasks x items`` matrix of 2-, 4- or 8-bit codes, one per gain level
      (0: unjudged or zero gain). A lookup reads one byte per retrieved item: no work per
      judgment. Chosen when the matrix is no larger than the sparse layout, i.e. when tasks judge
      many items (generated worlds judge hundreds per task) and gains take at most 255 levels.
    * **Sparse**: one sorted array of keys ``task_row * n_items + item_row`` with a parallel
      array of gains (16 bytes per judgment), each task's judgments contiguous. The gains of an
      ``(n, k)`` block of retrieved items are read from a dense scratch table of a few tasks by
      items, into which those tasks' judgments are written first and from which they are erased
      after: a handful of numpy calls per group of tasks, and no search.

    Judgments naming items absent from the catalog are counted in ``n_unknown`` and reported
    with a warning, never silently dropped.
    """

    #: Cells of the scratch table of the sparse layout (float64), per thread: 2 MiB, small
    #: enough to stay in cache.
    SCRATCH_CELLS = 1 << 18
    #: The dense layout is used when it takes at most this many bytes per judgment (the size of
    #: the sparse one).
    DENSE_BYTES_PER_JUDGMENT = 16

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
        self.n_judgments = sum(len(g) for g in gains)
        if n_unknown:
            warnings.warn(
                f"{n_unknown} judgments name items that are not in the catalog; they are ignored "
                "(they cannot be retrieved) and counted in Qrels.n_unknown",
                stacklevel=2,
            )
        key = np.concatenate(keys) if keys else np.zeros(0, dtype=np.int64)
        gain = np.concatenate(gains) if gains else np.zeros(0)
        order = np.argsort(key, kind="stable")
        key, gain = key[order], gain[order]
        self._codes: np.ndarray | None = None
        self._keys = self._gains = self._start = None
        if not self._compile_dense(key, gain, len(tasks)):
            self._keys, self._gains = key, gain
            # The judgments of task t are _keys[_start[t]:_start[t + 1]].
            self._start = np.searchsorted(key, np.arange(len(tasks) + 1) * self.n_items)
        self._local = threading.local()
        # Ideal gains per task, sorted descending and zero-padded: trec_eval's ideal ranking.
        self.ideal = np.zeros((len(tasks), width))
        self.n_relevant = np.zeros(len(tasks), dtype=np.int64)
        for t, g in enumerate(gains):
            positive = np.sort(g[g > 0])[::-1]
            self.ideal[t, : len(positive)] = positive
            self.n_relevant[t] = int((g >= self.rel_level).sum())

    def _compile_dense(self, key: np.ndarray, gain: np.ndarray, n_tasks: int) -> bool:
        """Build the dense code matrix if it is no larger than the sparse layout."""
        levels = np.unique(gain[gain > 0])
        bits = next((b for b in (2, 4, 8) if len(levels) < 1 << b), 0)
        row_bytes = (self.n_items * bits + 7) // 8
        if not bits or n_tasks * row_bytes > self.DENSE_BYTES_PER_JUDGMENT * max(len(key), 1):
            return False
        judged = gain > 0
        key, code = key[judged], np.searchsorted(levels, gain[judged]) + 1
        task = key // max(self.n_items, 1)
        item = key - task * self.n_items
        per_byte = 8 // bits
        # The codes of the items sharing a byte occupy disjoint bits: their sum is their OR.
        byte = task * row_bytes + item // per_byte
        value = code << (item % per_byte * bits)
        codes = np.zeros(n_tasks * row_bytes, dtype=np.uint8)
        if len(byte):
            first = np.ones(len(byte), dtype=bool)
            first[1:] = byte[1:] != byte[:-1]  # keys are sorted, so bytes are too
            at = np.flatnonzero(first)
            codes[byte[at]] = np.add.reduceat(value, at)
        self._codes, self._row_bytes = codes, row_bytes
        self._per_byte_log = per_byte.bit_length() - 1
        # The gain of the code at position p of byte value v is _byte_gains[v * per_byte + p].
        gain_of_code = np.zeros(1 << bits)
        gain_of_code[1 : len(levels) + 1] = levels
        value = np.arange(256)[:, None] >> (np.arange(per_byte) * bits)
        self._byte_gains = gain_of_code[value & ((1 << bits) - 1)].ravel()
        return True

    def lookup(self, task_rows: np.ndarray, item_rows: np.ndarray) -> np.ndarray:
        """Gains of ``item_rows[i, j]`` for task ``task_rows[i]``; 0 for unjudged or ``-1`` rows."""
        task_rows = np.asarray(task_rows, dtype=np.int64)
        item_rows = np.asarray(item_rows, dtype=np.int64)
        if len(task_rows) == 0 or self.n_items == 0:
            return np.zeros(item_rows.shape)
        if self._codes is not None:
            return self._lookup_dense(task_rows, item_rows)
        return self._lookup_sparse(task_rows, item_rows)

    def _lookup_dense(self, task_rows: np.ndarray, item_rows: np.ndarray) -> np.ndarray:
        # The byte holding each code, read whole; then the gain of (byte, position in the byte)
        # from a table: few passes, shifts and masks only (codes per byte are a power of two). A
        # -1 row reads some byte (the index stays within the matrix or counts from its end),
        # its gain zeroed at the end.
        log = self._per_byte_log
        cell = item_rows >> log
        cell += (task_rows * self._row_bytes)[:, None]
        at = np.left_shift(self._codes.take(cell), log, dtype=np.intp)
        if log:  # the code's position in its byte
            at |= item_rows & ((1 << log) - 1)
        gains = self._byte_gains.take(at)
        if item_rows.size and item_rows.min() < 0:
            gains[item_rows < 0] = 0.0
        return gains

    def _lookup_sparse(self, task_rows: np.ndarray, item_rows: np.ndarray) -> np.ndarray:
        out = np.zeros(item_rows.shape)
        n, n_items = len(task_rows), self.n_items
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
