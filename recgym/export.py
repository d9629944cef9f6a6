"""Standard files out of recgym: a BEIR folder plus TREC qrels, and TREC run files.

``recgym export ENV_ID DIR`` writes an environment's catalog, requests and judgments::

    DIR/corpus.jsonl        {"_id": item id, "title": title, "text": the other text fields}
    DIR/queries.jsonl       {"_id": task id, "text": request}
    DIR/qrels/<split>.tsv   BEIR qrels: query-id, corpus-id, score (with a header)
    DIR/qrels/<split>.trec  TREC qrels: "<task id> 0 <item id> <relevance>"
    DIR/recgym.json         gain scale, relevance level, split sizes, the world's description

``title + " " + text`` is exactly the text recgym's retrievers index, so BM25 over the folder
(Pyserini, bm25s, recgym's own BEIR loader) sees the same documents. Qrels formats hold integer
relevance, so gains are multiplied by the smallest power of ten that makes them all integers
(``gain_scale``: 100 for ESCI's 1 / 0.1 / 0.01): nDCG is unchanged by the scale, and recall or MRR
must use ``relevance_level = gain_scale`` (ir-measures: ``R(rel=100)@100``; trec_eval: ``-l 100``).

``recgym evaluate ... --run-file PATH`` writes the rankings the evaluation scored as a TREC run,
``"<task id> Q0 <item id> <rank> <score> <tag>"``. The score column is rank-based (``n + 1 - rank``
for a ranking of ``n`` items), because trec_eval and its peers re-sort by score and break ties by
document id, which would reorder items the retriever tied. A task whose query retrieved nothing
(or was malformed) has no line; evaluate with ``trec_eval -c`` (ir-measures: a missing query is 0)
to average over every task as recgym does.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from recgym.catalog import ArrayJudgments, Task
from recgym.worlds import World

__all__ = ["TrecRunWriter", "export_world", "gain_scale"]

_MAX_SCALE = 10**6


def gain_scale(gains: Iterable[float]) -> int:
    """The smallest power of ten (up to 10**6) that turns every gain into an integer.

    Example:
        >>> gain_scale([1.0, 0.1, 0.01, 0.0]), gain_scale([2, 1, 0])
        (100, 1)
    """
    values = np.unique(np.asarray(list(gains), dtype=np.float64))
    scale = 1
    while scale <= _MAX_SCALE:
        scaled = values * scale
        if np.allclose(scaled, np.round(scaled), rtol=0, atol=1e-6):
            return scale
        scale *= 10
    raise ValueError(f"gains {values[:5].tolist()}... are not multiples of 1e-6; qrels files hold "
                     "integer relevance")


def _judgments(task: Task) -> tuple[list[str], np.ndarray]:
    judged = task.judgments
    if isinstance(judged, ArrayJudgments):
        return judged.catalog_ids[judged.rows].tolist(), judged.gains
    return list(judged), np.fromiter(judged.values(), dtype=np.float64, count=len(judged))


def _check_id(kind: str, value: str) -> str:
    if not value or any(c.isspace() for c in value):
        raise ValueError(f"{kind} {value!r} is empty or contains whitespace, which TREC files "
                         "cannot hold")
    return value


def export_world(
    world: World, out_dir: str | Path, *, splits: Sequence[str] | None = None,
    rel_level: float = 1.0, meta: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write ``world`` as a BEIR folder plus TREC qrels (module docstring); return recgym.json.

    Args:
        world: the catalog and tasks.
        out_dir: the folder to write (created; existing files of the same names are replaced).
        splits: the splits to write (default: all).
        rel_level: the environment's relevance level, in gains (recorded, scaled, in recgym.json).
        meta: extra entries for recgym.json (the env id and its keyword arguments).
    """
    out = Path(out_dir)
    (out / "qrels").mkdir(parents=True, exist_ok=True)
    names = world.tasks.split_names if splits is None else list(splits)
    rows = {name: world.tasks.split(name) for name in names}
    judged = {int(r): _judgments(world.tasks[int(r)]) for part in rows.values() for r in part}
    scale = gain_scale(np.concatenate([g for _, g in judged.values()] or [np.zeros(0)]))

    catalog = world.catalog
    with open(out / "corpus.jsonl", "w", encoding="utf-8") as fh:
        texts = zip(*catalog.fields.values(), strict=True) if catalog.fields else (
            () for _ in range(len(catalog)))
        for item_id, title, parts in zip(catalog.ids.tolist(), catalog.titles, texts, strict=True):
            _check_id("item id", item_id)
            record = {"_id": item_id, "title": title, "text": " ".join(filter(None, parts))}
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
    with open(out / "queries.jsonl", "w", encoding="utf-8") as fh:
        for part in rows.values():
            for r in part.tolist():
                task = world.tasks[r]
                _check_id("task id", task.id)
                fh.write(json.dumps({"_id": task.id, "text": task.request}, ensure_ascii=False)
                         + "\n")
    for name, part in rows.items():
        with open(out / "qrels" / f"{name}.tsv", "w", encoding="utf-8") as tsv, \
                open(out / "qrels" / f"{name}.trec", "w", encoding="utf-8") as trec:
            tsv.write("query-id\tcorpus-id\tscore\n")
            for r in part.tolist():
                task_id = world.tasks[r].id
                items, gains = judged[r]
                for item_id, rel in zip(items, np.round(gains * scale).astype(np.int64).tolist(),
                                        strict=True):
                    tsv.write(f"{task_id}\t{item_id}\t{rel}\n")
                    trec.write(f"{task_id} 0 {item_id} {rel}\n")
    info = {
        **(meta or {}),
        "world": world.name,
        "gain_scale": scale,
        "relevance_level": rel_level * scale,
        "splits": {name: len(part) for name, part in rows.items()},
        "n_items": len(catalog),
        "description": world.description,
    }
    (out / "recgym.json").write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n",
                                     encoding="utf-8")
    return info


class TrecRunWriter:
    """Appends rankings to a TREC run file: ``writer(task_ids, rankings)``, one call per batch.

    Example:
        >>> import io
        >>> buffer = io.StringIO()
        >>> TrecRunWriter(buffer)(["q1"], [["d3", "d1"]])
        >>> print(buffer.getvalue(), end="")
        q1 Q0 d3 1 2 recgym
        q1 Q0 d1 2 1 recgym
    """

    def __init__(self, path_or_file: Any, tag: str = "recgym") -> None:
        self.tag = _check_id("run tag", tag)
        self._own = isinstance(path_or_file, (str, Path))
        self._fh = open(path_or_file, "w", encoding="utf-8") if self._own else path_or_file  # noqa: SIM115

    def __call__(self, task_ids: Sequence[str], rankings: Sequence[Sequence[str]]) -> None:
        lines = []
        for task_id, ranking in zip(task_ids, rankings, strict=True):
            _check_id("task id", task_id)
            n = len(ranking)
            lines += [f"{task_id} Q0 {item} {rank} {n + 1 - rank} {self.tag}\n"
                      for rank, item in enumerate(ranking, 1)]
        self._fh.writelines(lines)

    def close(self) -> None:
        if self._own:
            self._fh.close()

    def __enter__(self) -> TrecRunWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
