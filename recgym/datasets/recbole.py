"""RecBole atomic files: ``<name>.item`` plus ``<name>.inter`` or ``.train/.valid/.test.inter``.

Atomic files are tab-separated with a typed header (``item_id:token``, ``title:token_seq``,
``rating:float``, ...); ``token_seq`` values are space-separated; quotes are plain text. ``dataset``
names the dataset: ``data_dir/<name>/<name>.item`` or ``data_dir/<name>.item`` (default: the only
``*.item`` there). It is not called ``name`` because :func:`recgym.worlds.load_world` takes the
world's name as its first argument.

Field choices:

* items = the rows of ``<name>.item``, id ``item_id``; title = the first of ``title``,
  ``movie_title``, ``item_name``, ``name``, ``book_title``, ``track_name`` present; indexed text =
  the title, then every other ``token`` and ``token_seq`` field in header order (``text_fields=``
  picks them instead); ``float`` fields are not text. Popularity = number of interactions.
* histories and judged items:

  - whole ``<name>.inter`` (``user_id``, ``item_id``, optional ``timestamp``, ``rating``): each
    user's interactions in timestamp order (file order without one), tasks by ``scheme``
    (``"last_out"`` by default: RecBole's leave-one-out ordering split; or ``"by_user"``).
  - split files (any of ``.train.inter``, ``.valid.inter``, ``.test.inter``; splits ``train``,
    ``val``, ``test``): a file with an ``item_id_list`` column (RecBole's sequential benchmark
    files) gives one task per line: its history is the list (oldest first), its judged item
    ``item_id``; task id ``<split>/<line>``. A file of plain interactions is read as the
    continuation of the earlier splits: per user, the ``val`` / ``test`` task judges the user's
    first interaction in that file from everything before it, the ``train`` task the last
    training interaction; task id ``<user>/<split>``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from recgym.catalog import Catalog, Task
from recgym.datasets._common import (
    DataFormatError,
    LoadReport,
    MissingDataError,
    Table,
    find_file,
    first_rows,
    iter_lines,
    make_world,
    read_table,
    require_data_dir,
)
from recgym.history import (
    DEFAULT_FRACTIONS,
    History,
    group_histories,
    last_item_query,
    next_item_task,
    next_item_tasks,
)
from recgym.worlds import World

__all__ = ["PUBLISHED", "TITLE_FIELDS", "load"]

PUBLISHED = ("https://recbole.io/dataset_list.html (atomic files; RecBole's DatasetCreator "
             "converts raw datasets)")
TITLE_FIELDS = ("title", "movie_title", "item_name", "name", "book_title", "track_name")
_SPLIT_FILES = {"train": "train", "valid": "val", "test": "test"}
_ORDER = ("train", "val", "test")
_TEXT_TYPES = ("token", "token_seq")


def load(
    data_dir: str | Path | None = None, *, dataset: str | None = None, max_history: int = 20,
    scheme: str = "last_out", fractions: Mapping[str, float] = DEFAULT_FRACTIONS, seed: int = 0,
    min_history: int = 1, show_ratings: bool = False, text_fields: Sequence[str] | None = None,
    encoding: str = "utf-8", on_bad_line: str = "error",
) -> World:
    """Load a RecBole dataset from its atomic files.

    Args:
        data_dir: the folder holding ``<name>/`` or the atomic files themselves.
        dataset: the dataset name (``ml-1m``, ``Amazon_Beauty``, ...); default: the only
            ``*.item``.
        max_history: a request shows the newest ``max_history`` items.
        scheme, fractions, seed, min_history: tasks of a whole ``.inter`` (:mod:`recgym.history`).
        show_ratings: render a ``rating`` field after each title.
        text_fields: the ``.item`` fields (names without type) indexed after the title.
        encoding, on_bad_line: see :mod:`recgym.datasets._common`.
    """
    root = require_data_dir(data_dir, "RecBole", "<name>.item and <name>.inter (or "
                            "<name>.train.inter / .valid.inter / .test.inter)", PUBLISHED)
    folder, name = _locate(root, dataset)
    report = LoadReport("recbole")
    opts = {"encoding": encoding, "on_bad_line": on_bad_line, "report": report}
    ids, titles, fields = _items(find_file(folder, f"{name}.item", dataset="RecBole"), text_fields,
                                 report, opts)
    catalog = Catalog(ids=ids, titles=titles, fields=fields)
    split_files = {split: path for suffix, split in _SPLIT_FILES.items()
                   if (path := find_file(folder, f"{name}.{suffix}.inter", dataset="RecBole",
                                         required=False)) is not None}
    if split_files:
        tasks, rows = _split_tasks(split_files, catalog, report, opts, max_history, show_ratings,
                                   min_history)
        how = f"official split files ({', '.join(split_files)})"
    else:
        inter = _read_inter(find_file(folder, f"{name}.inter", dataset="RecBole"), opts)
        rows = _rows(catalog, inter.values("item_id"), report)
        ok = rows >= 0
        histories = group_histories(np.asarray(inter.values("user_id"))[ok], rows[ok],
                                    inter.numbers("timestamp", ok), inter.numbers("rating", ok))
        tasks = next_item_tasks(histories, catalog.ids, titles, scheme=scheme,
                                max_history=max_history, min_history=min_history,
                                fractions=fractions, seed=seed, show_ratings=show_ratings)
        how = f"{name}.inter, {scheme} split"
    popularity = np.bincount(rows[rows >= 0], minlength=len(ids)).astype(np.float64)
    catalog = Catalog(ids=ids, titles=titles, fields=fields, popularity=popularity)
    indexed = ", ".join(["title", *fields])
    description = (
        f"RecBole dataset {name!r} ({how}): each request is a user's history (newest "
        f"{max_history}, newest last); the judged item is the next one (gain 1); items indexed "
        f"as {indexed}."
    )
    return make_world("recbole", catalog, tasks, description, report, last_item_query(catalog))


def _locate(root: Path, name: str | None) -> tuple[Path, str]:
    if name is not None:
        for folder in (root / name, root):
            if find_file(folder, f"{name}.item", dataset="RecBole", required=False):
                return folder, name
        raise MissingDataError(f"RecBole: {name}.item not found in {root / name} or {root}; "
                               f"expected <name>.item and <name>.inter (published at {PUBLISHED})")
    items = sorted(p.name.removesuffix(".gz").removesuffix(".item") for p in root.iterdir()
                   if p.name.endswith((".item", ".item.gz")))
    if len(items) != 1:
        found = ", ".join(items) if items else "none"
        raise MissingDataError(f"RecBole: pass dataset= to pick one in {root}: expected exactly "
                               f"one <name>.item there, found {found} (published at {PUBLISHED})")
    return root, items[0]


def _items(path: Path, text_fields: Sequence[str] | None, report: LoadReport, opts: dict
           ) -> tuple[np.ndarray, list[str], dict[str, list[str]]]:
    """Ids, titles and text fields of the ``.item`` file."""
    header = _header(path, opts["encoding"])
    plain = {typed.partition(":")[0]: typed for typed in header}
    if "item_id" not in plain:
        raise DataFormatError(path, 1, f"missing column; the header has {header}", "item_id:token")
    title = next((f for f in TITLE_FIELDS if f in plain), None)
    if text_fields is None:
        text_fields = [f for f, typed in plain.items() if f not in ("item_id", title)
                       and typed.partition(":")[2] in _TEXT_TYPES]
    for field in text_fields:
        if field not in plain:
            raise DataFormatError(path, 1, f"no such field; the header has {header}", field)
    table = read_table(path, required=[plain[f] for f in ("item_id", *([title] if title else []),
                                                          *text_fields)],
                       quoting=False, **opts)
    ids = np.array([i.strip() for i in table[plain["item_id"]]], dtype=str)
    keep = first_rows(ids, report).tolist()

    def column(field: str) -> list[str]:
        values = table[plain[field]]
        return [values[i] for i in keep]

    titles = column(title) if title else [""] * len(keep)
    return ids[keep], titles, {f: column(f) for f in text_fields}


def _header(path: Path, encoding: str) -> list[str]:
    for _, line in iter_lines(path, encoding):
        header = [c.strip() for c in line.split("\t")]
        for column in header:
            if ":" not in column:
                raise DataFormatError(path, 1, "RecBole headers name each column 'field:type' "
                                      "(e.g. 'item_id:token')", column)
        return header
    raise DataFormatError(path, 1, "the file is empty; expected a typed header row")


@dataclass
class _Inter:
    """An interaction file: its table and the typed column of each plain field name."""

    table: Table
    typed: dict[str, str]

    def __contains__(self, field: str) -> bool:
        return field in self.typed

    def values(self, field: str) -> list[str]:
        return [v.strip() for v in self.table[self.typed[field]]]

    def numbers(self, field: str, keep: np.ndarray) -> np.ndarray | None:
        return self.table.numbers(self.typed[field])[keep] if field in self else None


def _read_inter(path: Path, opts: dict) -> _Inter:
    header = _header(path, opts["encoding"])
    typed = {column.partition(":")[0]: column for column in header}
    for field in ("user_id", "item_id"):
        if field not in typed:
            raise DataFormatError(path, 1, f"missing column; the header has {header}",
                                  f"{field}:token")
    wanted = {f: typed[f] for f in ("user_id", "item_id", "item_id_list", "timestamp", "rating")
              if f in typed}
    return _Inter(read_table(path, required=list(wanted.values()), quoting=False, **opts), wanted)


def _rows(catalog: Catalog, item_ids: list[str], report: LoadReport) -> np.ndarray:
    rows = catalog.rows(item_ids)
    unknown = rows < 0
    report.add("unknown_item", "interactions naming items absent from the .item file (dropped)",
               int(unknown.sum()), dict.fromkeys(np.asarray(item_ids)[unknown][:50].tolist()))
    return rows


def _split_tasks(files: dict[str, Path], catalog: Catalog, report: LoadReport, opts: dict,
                 max_history: int, show_ratings: bool, min_history: int
                 ) -> tuple[list[Task], np.ndarray]:
    tasks: list[Task] = []
    all_rows = []
    plain_parts = []
    for split, path in files.items():
        inter = _read_inter(path, opts)
        rows = _rows(catalog, inter.values("item_id"), report)
        all_rows.append(rows[rows >= 0])
        if "item_id_list" in inter:
            tasks += _list_tasks(split, inter, rows, catalog, report, max_history)
        else:
            plain_parts.append((split, inter, rows))
    if plain_parts:
        tasks += _continuation_tasks(plain_parts, catalog, max_history, show_ratings, min_history)
    return tasks, np.concatenate(all_rows)


def _list_tasks(split: str, inter: _Inter, targets: np.ndarray, catalog: Catalog,
                report: LoadReport, max_history: int) -> list[Task]:
    tasks = []
    for user, seq, target, line in zip(inter.values("user_id"), inter.values("item_id_list"),
                                       targets.tolist(), inter.table.lines, strict=True):
        if target < 0:
            continue  # counted by _rows
        history = catalog.rows(seq.split())
        if (history < 0).any():
            report.add("unknown_item", "interactions naming items absent from the .item file "
                       "(dropped)", int((history < 0).sum()))
            history = history[history >= 0]
        full = History(user, np.append(history, target))
        tasks.append(next_item_task(full, len(history), split, f"{split}/{line}", catalog.ids,
                                    catalog.titles, max_history=max_history, show_ratings=False))
    return tasks


def _continuation_tasks(parts: list[tuple[str, _Inter, np.ndarray]], catalog: Catalog,
                        max_history: int, show_ratings: bool, min_history: int) -> list[Task]:
    users: list[str] = []
    rows, codes, times, ratings = [], [], [], []
    rated = show_ratings and all("rating" in inter for _, inter, _ in parts)
    for split, inter, item_rows in parts:
        ok = item_rows >= 0
        users += np.asarray(inter.values("user_id"))[ok].tolist()
        rows.append(item_rows[ok])
        codes.append(np.full(int(ok.sum()), _ORDER.index(split)))
        t = inter.numbers("timestamp", ok)
        times.append(np.zeros(int(ok.sum())) if t is None else t)
        if rated:
            ratings.append(inter.numbers("rating", ok))
    row, code = np.concatenate(rows), np.concatenate(codes)
    rating = np.concatenate(ratings) if rated else None
    # Earlier split files come first whatever their timestamps; within a file, time then file order.
    sequence = np.lexsort((np.arange(len(row)), np.concatenate(times), code))
    rank = np.empty(len(row))
    rank[sequence] = np.arange(len(row))
    tasks = []
    for grouped in group_histories(users, np.arange(len(row)), rank):
        idx = grouped.items  # interaction indices, in sequence order
        history = History(grouped.user, row[idx], None if rating is None else rating[idx])
        seq_codes = code[idx]
        for c in np.unique(seq_codes).tolist():
            where = np.flatnonzero(seq_codes == c)
            pos = int(where[-1] if c == 0 else where[0])  # last training item, first later one
            if pos >= max(min_history, 0):
                split = _ORDER[c]
                tasks.append(next_item_task(history, pos, split, f"{grouped.user}/{split}",
                                            catalog.ids, catalog.titles, max_history=max_history,
                                            show_ratings=show_ratings))
    return tasks
