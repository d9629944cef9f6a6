"""Amazon ESCI (Shopping Queries Dataset): the official examples and products parquet files.

Field choices:

* items = the products of one locale (``us``, ``es``, ``jp``), id ``product_id``; indexed text =
  ``product_title``, then ``product_brand``, ``product_color``, ``product_bullet_point``,
  ``product_description``, with HTML tags replaced by spaces. ``catalog="all"`` (default) keeps
  every product of the locale in the products file; ``catalog="judged"`` only those judged in the
  loaded examples. A repeated ``(product_id, locale)`` keeps its first row.
* requests = the queries (``query``, id ``query_id``) of the locale, of the reduced
  ``small_version`` (task 1, default) or all of them, with the official ``split`` (``train``,
  ``test``).
* gains = ``esci_label`` Exact / Substitute / Complement / Irrelevant -> 1 / 0.1 / 0.01 / 0
  (Rec-R1's and the shop world's; override with ``gains={"S": 0.5, ...}``). With trec_eval's
  relevance level of 1, recall and MRR count exact products only; nDCG uses every gain. A query
  with no positive gain cannot reward anything and is dropped (counted in the load report).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from recgym.catalog import Catalog, Task, choice_error
from recgym.datasets._common import (
    DataFormatError,
    LoadReport,
    find_file,
    first_rows,
    group_judgments,
    make_world,
    require_data_dir,
)
from recgym.worlds import World

__all__ = ["EXAMPLES", "GAINS", "LOCALES", "PRODUCTS", "PUBLISHED", "load"]

GAINS: Mapping[str, float] = {"E": 1.0, "S": 0.1, "C": 0.01, "I": 0.0}
LOCALES = ("us", "es", "jp")
EXAMPLES = "shopping_queries_dataset_examples.parquet"
PRODUCTS = "shopping_queries_dataset_products.parquet"
PUBLISHED = "https://github.com/amazon-science/esci-data (folder shopping_queries_dataset/)"
_EXAMPLE_COLUMNS = ("query_id", "query", "product_id", "product_locale", "esci_label",
                    "small_version", "split")
# Catalog field -> products column, in the order the text is indexed (after the title).
_TEXT_COLUMNS = {"brand": "product_brand", "color": "product_color",
                 "bullet_points": "product_bullet_point", "description": "product_description"}
_CATALOG_MODES = ("all", "judged")


def load(
    data_dir: str | Path | None = None, *, locale: str = "us", small_version: bool = True,
    gains: Mapping[str, float] | None = None, catalog: str = "all",
) -> World:
    """Load Amazon ESCI from the folder holding the two official parquet files.

    Args:
        data_dir: folder with ``shopping_queries_dataset_examples.parquet`` and
            ``shopping_queries_dataset_products.parquet``.
        locale: ``"us"``, ``"es"`` or ``"jp"``.
        small_version: the reduced version (task 1: 48k queries in ``us``) or every query.
        gains: overrides of the E/S/C/I gains (default 1 / 0.1 / 0.01 / 0).
        catalog: ``"all"`` products of the locale, or only the ``"judged"`` ones.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    if locale not in LOCALES:
        raise choice_error("ESCI locale", locale, LOCALES)
    if catalog not in _CATALOG_MODES:
        raise choice_error("ESCI catalog mode", catalog, _CATALOG_MODES)
    gain_of = _gains(gains)
    folder = require_data_dir(data_dir, "ESCI", f"{EXAMPLES} and {PRODUCTS}", PUBLISHED)
    report = LoadReport("esci")
    ex_path = find_file(folder, EXAMPLES, dataset="ESCI", compressed=False)
    pr_path = find_file(folder, PRODUCTS, dataset="ESCI", compressed=False)

    examples = _read_parquet(pq, ex_path, _EXAMPLE_COLUMNS)
    keep = pc.equal(examples["product_locale"], locale)
    if small_version:
        keep = pc.and_(keep, pc.equal(pc.cast(examples["small_version"], pa.int64()), 1))
    examples = examples.filter(pc.fill_null(keep, False))
    labels = _strings(examples["esci_label"])
    bad = ~np.isin(labels, list(GAINS))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataFormatError(ex_path, None, f"{int(bad.sum())} examples have a label outside "
                              f"E, S, C, I, e.g. {str(labels[i])!r} (query_id "
                              f"{examples['query_id'][i].as_py()})", "esci_label")
    query_ids = _strings(pc.cast(examples["query_id"], pa.string()))
    product_ids = pc.fill_null(pc.cast(examples["product_id"], pa.string()), "").to_pylist()

    products = _read_parquet(pq, pr_path, ("product_id", "product_title", "product_locale",
                                           *_TEXT_COLUMNS.values()))
    products = products.filter(pc.fill_null(pc.equal(products["product_locale"], locale), False))
    if catalog == "judged":
        products = products.filter(pc.is_in(products["product_id"], pa.array(set(product_ids))))
    items = _catalog(pa, pc, products, report)

    gain = np.array([gain_of[label] for label in labels.tolist()], dtype=np.float64)
    judged = group_judgments(query_ids, product_ids, gain, items, report)
    text, split = _queries(pc, examples, query_ids, report)
    tasks = []
    no_relevant = []
    for qid, judgments in judged.items():
        if judgments.gains.max() <= 0:
            no_relevant.append(qid)
            continue
        tasks.append(Task(qid, text[qid], judgments, split[qid]))
    report.add("no_relevant", "queries with no positive judgment (dropped: nothing to reward)",
               len(no_relevant), no_relevant)
    shown = ", ".join(f"{k}={v:g}" for k, v in gain_of.items())
    description = (
        f"Amazon ESCI ({locale}, {'small' if small_version else 'large'} version, official "
        f"train/test split): products indexed as title, brand, color, bullet points, description; "
        f"gains {shown}."
    )
    return make_world("esci", items, tasks, description, report)


def _strings(column: Any) -> np.ndarray:
    """A pyarrow string column as a numpy str array, nulls as ``""``."""
    import pyarrow.compute as pc

    return np.asarray(pc.fill_null(column, "").to_numpy(zero_copy_only=False), dtype=str)


def _gains(gains: Mapping[str, float] | None) -> dict[str, float]:
    out = dict(GAINS)
    for label, value in (gains or {}).items():
        if label not in GAINS:
            raise choice_error("ESCI label", label, GAINS)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
                np.isfinite(value) and value >= 0):
            raise ValueError(f"ESCI gain of {label!r} must be a finite number >= 0, got {value!r}")
        out[label] = float(value)
    return out


def _read_parquet(pq: Any, path: Path, columns: tuple[str, ...]) -> Any:
    try:
        names = pq.read_schema(path).names
    except Exception as exc:  # pyarrow raises ArrowInvalid / OSError subclasses for non-parquet
        raise DataFormatError(path, None, f"not a readable parquet file ({exc})") from None
    for column in columns:
        if column not in names:
            raise DataFormatError(path, None, f"missing column; the file has {names}", column)
    return pq.read_table(path, columns=list(columns))


def _catalog(pa: Any, pc: Any, products: Any, report: LoadReport) -> Catalog:
    ids = _strings(pc.cast(products["product_id"], pa.string()))
    keep = first_rows(ids, report, "products")
    if len(keep) < len(ids):
        products, ids = products.take(pa.array(keep)), ids[keep]

    def column(name: str) -> list[str]:
        values = pc.fill_null(pc.cast(products[name], pa.string()), "")
        if name in ("product_description", "product_bullet_point"):
            values = pc.replace_substring_regex(values, "<[^>]*>", " ")
        return values.to_pylist()

    return Catalog(ids=ids, titles=column("product_title"),
                   fields={field: column(name) for field, name in _TEXT_COLUMNS.items()})


def _queries(pc: Any, examples: Any, query_ids: np.ndarray, report: LoadReport
             ) -> tuple[dict[str, str], dict[str, str]]:
    """Query text and split of each query id (the first example's; conflicts are counted)."""
    names, first, codes = np.unique(query_ids, return_index=True, return_inverse=True)
    texts = pc.fill_null(examples["query"], "").to_pylist()
    splits = _strings(examples["split"])
    conflict = splits != splits[first][codes]
    if conflict.any():
        report.add("split_conflict", "examples whose split differs from their query's first "
                   "example (the first split is kept)", int(conflict.sum()),
                   query_ids[conflict][:3].tolist())
    return ({str(q): texts[i] for q, i in zip(names, first.tolist(), strict=True)},
            {str(q): str(splits[i]) for q, i in zip(names, first.tolist(), strict=True)})
