"""Wayfair WANDS: ``product.csv``, ``query.csv`` and ``label.csv`` (tab-separated, with headers).

Field choices:

* items = products, id ``product_id``; indexed text = ``product_name``, then ``product_class``,
  ``product_description``, ``product_features`` (its ``key:value|key:value`` list with ``|`` read as
  ``; ``). Category = ``product_class``; popularity = ``rating_count`` (0 when empty).
* requests = the queries (``query``, id ``query_id``) with a positive label; ``query_class`` is
  kept in the task's fields. WANDS has no official split: queries are assigned to ``train`` /
  ``val`` / ``test`` by :func:`recgym.catalog.assign_splits` of their id (default 0.6 / 0.2 / 0.2).
* gains = ``label`` Exact / Partial / Irrelevant -> 2 / 1 / 0 (override with ``gains=``). With
  trec_eval's relevance level of 1, recall and MRR count exact and partial matches.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from recgym.catalog import Catalog, Task, assign_splits, choice_error
from recgym.datasets._common import (
    DataFormatError,
    LoadReport,
    find_file,
    first_rows,
    group_judgments,
    make_world,
    read_table,
    require_data_dir,
)
from recgym.worlds import World

__all__ = ["FRACTIONS", "GAINS", "PUBLISHED", "load"]

GAINS: Mapping[str, float] = {"Exact": 2.0, "Partial": 1.0, "Irrelevant": 0.0}
FRACTIONS: Mapping[str, float] = {"train": 0.6, "val": 0.2, "test": 0.2}
PUBLISHED = "https://github.com/wayfair/WANDS (folder dataset/)"
_EXPECTED = "product.csv, query.csv and label.csv (tab-separated, optionally gzipped)"


def load(
    data_dir: str | Path | None = None, *, gains: Mapping[str, float] | None = None,
    fractions: Mapping[str, float] = FRACTIONS, seed: int = 0, encoding: str = "utf-8",
    on_bad_line: str = "error",
) -> World:
    """Load WANDS from its ``dataset/`` folder.

    Args:
        data_dir: folder with ``product.csv``, ``query.csv`` and ``label.csv``.
        gains: overrides of the Exact / Partial / Irrelevant gains (default 2 / 1 / 0).
        fractions, seed: the split of queries (WANDS has no official one).
        encoding, on_bad_line: see :mod:`recgym.datasets._common`.
    """
    gain_of = dict(GAINS)
    for label, value in (gains or {}).items():
        if label not in GAINS:
            raise choice_error("WANDS label", label, GAINS)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
            raise ValueError(f"WANDS gain of {label!r} must be a number >= 0, got {value!r}")
        gain_of[label] = float(value)
    folder = require_data_dir(data_dir, "WANDS", _EXPECTED, PUBLISHED)
    report = LoadReport("wands")
    opts = {"encoding": encoding, "on_bad_line": on_bad_line, "report": report}

    products = read_table(
        find_file(folder, "product.csv", dataset="WANDS"),
        required=("product_id", "product_name"),
        optional=("product_class", "product_description", "product_features", "rating_count"),
        **opts,
    )
    catalog = _catalog(products, report)

    queries = read_table(find_file(folder, "query.csv", dataset="WANDS"),
                         required=("query_id", "query"), optional=("query_class",), **opts)
    text: dict[str, tuple[str, str]] = {}
    classes = queries["query_class"] if "query_class" in queries else [""] * len(queries)
    for qid, query, cls in zip(queries["query_id"], queries["query"], classes, strict=True):
        if qid.strip() in text:
            report.add("duplicate_query", "repeated query ids (the first is kept)", 1, [qid])
            continue
        text[qid.strip()] = (query, cls)

    labels = read_table(find_file(folder, "label.csv", dataset="WANDS"),
                        required=("query_id", "product_id", "label"), **opts)
    names = [label.strip() for label in labels["label"]]
    for name, line in zip(names, labels.lines, strict=True):
        if name not in gain_of:
            raise DataFormatError(labels.path, line, f"unknown label {name!r}; expected one of "
                                  f"{', '.join(GAINS)}", "label")
    qids = [q.strip() for q in labels["query_id"]]
    known = np.array([q in text for q in qids], dtype=bool)
    if not known.all():
        missing = [q for q, k in zip(qids, known, strict=True) if not k]
        report.add("unknown_request", "labels naming queries absent from query.csv (dropped)",
                   len(missing), dict.fromkeys(missing))
    gain = np.array([gain_of[n] for n, k in zip(names, known, strict=True) if k])
    products_judged = [p.strip() for p, k in zip(labels["product_id"], known, strict=True) if k]
    judged = group_judgments([q for q, k in zip(qids, known, strict=True) if k], products_judged,
                             gain, catalog, report)
    no_relevant = [qid for qid, j in judged.items() if j.gains.max() <= 0]
    report.add("no_relevant", "queries with no positive label (dropped: nothing to reward)",
               len(no_relevant), no_relevant)
    kept = [qid for qid, j in judged.items() if j.gains.max() > 0]
    splits = assign_splits(kept, fractions, seed) if kept else []
    tasks = [Task(qid, text[qid][0], judged[qid], str(split), {"query_class": text[qid][1]})
             for qid, split in zip(kept, splits, strict=True)]
    shown = ", ".join(f"{k}={v:g}" for k, v in gain_of.items())
    description = (
        "Wayfair WANDS: products indexed as name, class, description, features; queries split "
        f"{dict(fractions)} by id (seed {seed}); gains {shown}."
    )
    return make_world("wands", catalog, tasks, description, report)


def _catalog(products, report: LoadReport) -> Catalog:
    ids = np.array([p.strip() for p in products["product_id"]], dtype=str)
    keep = first_rows(ids, report, "products")
    n = len(products)

    def column(name: str) -> list[str]:
        values = products[name] if name in products else [""] * n
        return [values[i] for i in keep.tolist()]

    features = [f.replace("|", "; ") for f in column("product_features")]
    popularity = (products.numbers("rating_count", default=0.0)[keep] if "rating_count" in products
                  else None)
    return Catalog(
        ids=ids[keep], titles=column("product_name"),
        fields={"class": column("product_class"), "description": column("product_description"),
                "features": features},
        categories=np.array(column("product_class"), dtype=str), popularity=popularity,
    )
