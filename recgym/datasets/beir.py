"""BEIR folders: ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/<split>.tsv``.

Field choices:

* item = a corpus document: id ``_id``, title ``title``, text field ``text``; the indexed text is
  ``title + " " + text``, the "flat" document BEIR's BM25 baselines (Pyserini's
  ``beir-v1.0.0-*.flat`` indexes) are built from. A missing title or text is empty.
* requests = the queries (``_id``, ``text``) judged in a split; the split names are the qrels file
  names (``train``, ``dev``, ``test``; a folder may hold only some of them). A query judged in
  several splits gets one task per split, with id ``<split>/<query id>``; otherwise the task id is
  the query id.
* gains = the qrels ``score`` (graded where the dataset is: TREC-COVID's 0/1/2). Negative scores
  (some BEIR sets use -1 for "judged, harmful") count as 0: trec_eval treats them as non-relevant.
  As in BEIR's evaluation, a query whose judgments are all 0 is kept (it scores 0).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from recgym.catalog import Catalog, Task, choice_error
from recgym.datasets._common import (
    LoadReport,
    MissingDataError,
    find_file,
    group_judgments,
    iter_jsonl,
    make_world,
    read_table,
    require_data_dir,
)
from recgym.worlds import World

__all__ = ["EXPECTED", "PUBLISHED", "load"]

EXPECTED = ("corpus.jsonl, queries.jsonl and qrels/<split>.tsv (e.g. qrels/test.tsv), optionally "
            "gzipped")
PUBLISHED = ("https://github.com/beir-cellar/beir (one zip per dataset, e.g. scifact.zip, linked "
             "from the README's dataset table)")


def load(
    data_dir: str | Path | None = None, *, splits: Sequence[str] | None = None,
    encoding: str = "utf-8", on_bad_line: str = "error",
) -> World:
    """Load a BEIR dataset folder.

    Args:
        data_dir: the folder (e.g. ``scifact/``) holding ``corpus.jsonl``, ``queries.jsonl`` and
            ``qrels/``.
        splits: the qrels splits to load (default: every ``qrels/*.tsv`` present).
        encoding: text encoding of the files (``"auto"``: UTF-8, latin-1 for invalid lines).
        on_bad_line: ``"error"`` (default) or ``"skip"`` malformed lines (counted in the report).

    Returns:
        A :class:`recgym.worlds.World` with one task per judged query and split.
    """
    folder = require_data_dir(data_dir, "BEIR", EXPECTED, PUBLISHED)
    report = LoadReport("beir")
    opts = {"encoding": encoding, "on_bad_line": on_bad_line, "report": report}
    qrel_files = _qrel_files(folder, splits)
    catalog = _read_corpus(find_file(folder, "corpus.jsonl", dataset="BEIR"), report, opts)
    queries: dict[str, str] = {}
    for _, obj in iter_jsonl(find_file(folder, "queries.jsonl", dataset="BEIR"),
                             required=("_id", "text"), **opts):
        qid = str(obj["_id"])
        if qid in queries:
            report.add("duplicate_query", "repeated query ids (the first is kept)", 1, [qid])
            continue
        queries[qid] = str(obj["text"])

    judged = {}
    for split, path in qrel_files.items():
        table = read_table(path, required=("query-id", "corpus-id", "score"), quoting=False, **opts)
        qids = [q.strip() for q in table["query-id"]]
        known = np.array([q in queries for q in qids], dtype=bool)
        if not known.all():
            missing = [q for q, k in zip(qids, known, strict=True) if not k]
            report.add("unknown_request", "judgments naming queries absent from queries.jsonl "
                       "(dropped)", len(missing), dict.fromkeys(missing))
        docs = [d.strip() for d, k in zip(table["corpus-id"], known, strict=True) if k]
        gains = np.maximum(table.numbers("score")[known], 0.0)
        kept = [q for q, k in zip(qids, known, strict=True) if k]
        judged[split] = group_judgments(kept, docs, gains, catalog, report)
    in_splits = Counter(qid for grouped in judged.values() for qid in grouped)
    tasks = [
        Task(qid if in_splits[qid] == 1 else f"{split}/{qid}", queries[qid], judgments, split)
        for split, grouped in judged.items()
        for qid, judgments in grouped.items()
    ]
    description = (
        f"BEIR dataset {folder.name!r}: documents indexed as title + text (BEIR's flat BM25 "
        "document); requests are the queries judged in each qrels split; gains are the qrels "
        "scores (negative ones count as 0)."
    )
    return make_world("beir", catalog, tasks, description, report)


def _qrel_files(folder: Path, splits: Sequence[str] | None) -> dict[str, Path]:
    qrels = folder / "qrels"
    found = {}
    if qrels.is_dir():
        for path in sorted(qrels.iterdir()):
            name = path.name.removesuffix(".gz")
            if name.endswith(".tsv") and path.is_file():
                found.setdefault(name.removesuffix(".tsv"), path)
    if not found:
        raise MissingDataError(f"BEIR: no qrels/<split>.tsv in {folder}; expected {EXPECTED} "
                               f"(published at {PUBLISHED})")
    if splits is None:
        return found
    if isinstance(splits, str):
        splits = [splits]
    for split in splits:
        if split not in found:
            raise choice_error("BEIR split", split, found)
    return {split: found[split] for split in splits}


def _read_corpus(path: Path, report: LoadReport, opts: dict) -> Catalog:
    ids: list[str] = []
    titles: list[str] = []
    texts: list[str] = []
    seen: set[str] = set()
    for _, obj in iter_jsonl(path, required=("_id",), **opts):
        doc = str(obj["_id"])
        if doc in seen:
            report.add("duplicate_item", "repeated document ids (the first is kept)", 1, [doc])
            continue
        seen.add(doc)
        ids.append(doc)
        titles.append(_str(obj.get("title")))
        texts.append(_str(obj.get("text")))
    return Catalog(ids=np.array(ids, dtype=str), titles=titles, fields={"text": texts})


def _str(value: object) -> str:
    return "" if value is None else str(value)
