"""Amazon Reviews 2023: ``<Category>.jsonl`` reviews and ``meta_<Category>.jsonl`` item metadata.

Both files are JSON lines, optionally gzipped (``.jsonl.gz`` as published). ``category`` picks the
pair (``"All_Beauty"`` reads ``All_Beauty.jsonl`` and ``meta_All_Beauty.jsonl``); by default the
folder's only ``meta_*.jsonl`` decides.

Field choices:

* items = metadata records, id ``parent_asin`` (the id reviews and the 2023 benchmark splits use);
  title = ``title``; indexed text = title, ``features`` (a list, space-joined), ``description`` (a
  list, space-joined). Category = ``main_category``; popularity = number of loaded reviews.
* histories = each user's (``user_id``) reviews of ``parent_asin`` items in ``timestamp`` order
  (ties in file order); requests render the newest ``max_history`` titles (ratings with
  ``show_ratings=True``); the judged item is the next one reviewed (gain 1).
* splits: Rec-R1's leave-last-out setting, ``scheme="last_out"`` (default): per user, ``test``
  judges the last item, ``val`` the second to last, ``train`` the third to last, each from the
  items before it (:mod:`recgym.history`); ``scheme="by_user"`` holds out whole users instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from recgym.catalog import Catalog
from recgym.datasets._common import (
    DataFormatError,
    LoadReport,
    MissingDataError,
    find_file,
    first_rows,
    iter_jsonl,
    make_world,
    require_data_dir,
)
from recgym.history import (
    DEFAULT_FRACTIONS,
    group_histories,
    last_item_query,
    next_item_tasks,
)
from recgym.worlds import World

__all__ = ["PUBLISHED", "load"]

PUBLISHED = ("https://amazon-reviews-2023.github.io/ (per category: reviews <Category>.jsonl.gz "
             "and metadata meta_<Category>.jsonl.gz)")
_EXPECTED = "<Category>.jsonl and meta_<Category>.jsonl (optionally .gz), e.g. All_Beauty.jsonl"


def load(
    data_dir: str | Path | None = None, *, category: str | None = None, max_history: int = 20,
    scheme: str = "last_out", fractions: Mapping[str, float] = DEFAULT_FRACTIONS, seed: int = 0,
    min_history: int = 1, show_ratings: bool = False, encoding: str = "utf-8",
    on_bad_line: str = "error",
) -> World:
    """Load one category of Amazon Reviews 2023.

    Args:
        data_dir: folder with ``<Category>.jsonl`` and ``meta_<Category>.jsonl`` (or ``.gz``).
        category: which category (default: the folder's only ``meta_*.jsonl``).
        max_history: a request shows the newest ``max_history`` items.
        scheme, fractions, seed, min_history: tasks and splits (:mod:`recgym.history`).
        show_ratings: render the star rating after each title.
        encoding, on_bad_line: see :mod:`recgym.datasets._common`.
    """
    folder = require_data_dir(data_dir, "Amazon Reviews 2023", _EXPECTED, PUBLISHED)
    category = category or _only_category(folder)
    report = LoadReport("amazon2023")
    opts = {"encoding": encoding, "on_bad_line": on_bad_line, "report": report}
    meta = find_file(folder, f"meta_{category}.jsonl", dataset="Amazon Reviews 2023")
    reviews = find_file(folder, f"{category}.jsonl", dataset="Amazon Reviews 2023")

    ids, titles, features, descriptions, categories = [], [], [], [], []
    for _, obj in iter_jsonl(meta, required=("parent_asin",), **opts):
        ids.append(str(obj["parent_asin"]))
        titles.append(_text(obj.get("title")))
        features.append(_text(obj.get("features")))
        descriptions.append(_text(obj.get("description")))
        categories.append(_text(obj.get("main_category")))
    id_array = np.array(ids, dtype=str)
    keep = first_rows(id_array, report, "items").tolist()

    def pick(values: list[str]) -> list[str]:
        return [values[i] for i in keep]

    index = Catalog(ids=id_array[keep], titles=pick(titles))

    users, items, times, stars = [], [], [], []
    for line, obj in iter_jsonl(reviews, required=("user_id", "parent_asin", "timestamp"), **opts):
        time = _number(obj["timestamp"])
        if np.isnan(time):
            if on_bad_line == "error":
                raise DataFormatError(reviews, line, f"expected a number, got {obj['timestamp']!r}",
                                      "timestamp")
            report.add("bad_line", "malformed lines skipped (on_bad_line='skip')", 1,
                       [f"{reviews.name}:{line}"])
            continue
        users.append(str(obj["user_id"]))
        items.append(str(obj["parent_asin"]))
        times.append(time)
        stars.append(_number(obj.get("rating")))
    rows = index.rows(items)
    unknown = rows < 0
    report.add("unknown_item", "reviews of items absent from the metadata file (dropped)",
               int(unknown.sum()),
               dict.fromkeys(np.asarray(items, dtype=str)[unknown][:50].tolist()))
    ok = ~unknown
    catalog = Catalog(
        ids=index.ids, titles=index.titles,
        fields={"features": pick(features), "description": pick(descriptions)},
        categories=np.array(pick(categories), dtype=str),
        popularity=np.bincount(rows[ok], minlength=len(index)).astype(np.float64),
    )
    histories = group_histories(np.asarray(users, dtype=str)[ok], rows[ok],
                                np.asarray(times)[ok], np.asarray(stars)[ok])
    tasks = next_item_tasks(histories, catalog.ids, catalog.titles, scheme=scheme,
                            max_history=max_history, min_history=min_history, fractions=fractions,
                            seed=seed, show_ratings=show_ratings)
    description = (
        f"Amazon Reviews 2023, {category}: each request is a user's review history (newest "
        f"{max_history}, newest last); the judged item is the next one reviewed (gain 1); items "
        f"indexed as title, features, description; {scheme} split."
    )
    return make_world("amazon2023", catalog, tasks, description, report, last_item_query(catalog))


def _only_category(folder: Path) -> str:
    found = sorted({p.name.removesuffix(".gz").removesuffix(".jsonl").removeprefix("meta_")
                    for p in folder.iterdir()
                    if p.name.startswith("meta_") and p.name.endswith((".jsonl", ".jsonl.gz"))})
    if len(found) != 1:
        listing = ", ".join(found) if found else "none"
        raise MissingDataError(f"Amazon Reviews 2023: pass category= to pick one in {folder}: "
                               f"expected {_EXPECTED}; found meta files for {listing} (published "
                               f"at {PUBLISHED})")
    return found[0]


def _text(value: object) -> str:
    """A metadata value as text: lists joined by spaces, ``None`` empty."""
    if value is None:
        return ""
    if isinstance(value, list):
        return " ".join(_text(v) for v in value if v is not None)
    return str(value)


def _number(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return float("nan")
