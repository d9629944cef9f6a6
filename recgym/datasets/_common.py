"""What every dataset loader shares: finding and opening files, reading rows with their line
numbers, and reporting what was resolved or dropped on the way.

Conventions (documented once in docs/datasets.md):

* gzip is detected by its magic bytes, whatever the file is named; ``name.gz`` is looked for when
  ``name`` is absent.
* Text is decoded line by line, so a byte that is not valid in ``encoding`` is reported with its
  file and line. ``encoding="auto"`` decodes each line as UTF-8 and falls back to latin-1 for the
  lines that are not valid UTF-8 (the old MovieLens files are latin-1). A UTF-8 byte order mark is
  ignored.
* A malformed line (wrong number of fields, invalid JSON, a missing required field) raises
  :class:`DataFormatError` naming the file, the line and the column; with ``on_bad_line="skip"`` it
  is skipped instead and counted in the :class:`LoadReport`.
* Nothing is dropped silently: duplicates, judgments of unknown items, items without text... are
  counted in the :class:`LoadReport`, emitted once as a :class:`DataWarning` and kept in
  ``World.hidden`` and at the end of ``World.description``.
"""

from __future__ import annotations

import csv
import difflib
import gzip
import json
import sys
import warnings
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from recgym.catalog import ArrayJudgments, Catalog, Task, TaskSet, choice_error
from recgym.worlds import World

__all__ = [
    "BAD_LINE_MODES",
    "DataFormatError",
    "DataWarning",
    "LoadReport",
    "MissingDataError",
    "Table",
    "check_on_bad_line",
    "find_file",
    "first_rows",
    "group_judgments",
    "iter_jsonl",
    "iter_lines",
    "make_world",
    "read_numeric",
    "read_table",
    "require_data_dir",
]

BAD_LINE_MODES = ("error", "skip")
_GZIP_MAGIC = b"\x1f\x8b"


class MissingDataError(FileNotFoundError):
    """A dataset folder or file is missing; the message says what is expected and where."""


class DataFormatError(ValueError):
    """A file is not in the expected format; the message names the file, line and column."""

    def __init__(self, path: Path | str, line: int | None, message: str, column: str | None = None):
        where = str(path) + (f", line {line}" if line is not None else "")
        where += f", column {column!r}" if column is not None else ""
        super().__init__(f"{where}: {message}")
        self.path, self.line, self.column = str(path), line, column


class DataWarning(UserWarning):
    """Something in a dataset was resolved or dropped (duplicates, unknown ids, skipped lines)."""


@dataclass
class _Issue:
    what: str
    count: int = 0
    examples: list[str] = field(default_factory=list)


class LoadReport:
    """Counts of what a loader resolved or dropped, with a few examples of each.

    Example:
        >>> report = LoadReport("wands")
        >>> report.add("unknown_item", "judgments naming items not in the catalog (dropped)", 2,
        ...            ["p9", "p10"])
        >>> report.counts()
        {'unknown_item': 2}
        >>> print(report.summary())
        2 judgments naming items not in the catalog (dropped), e.g. 'p9', 'p10'
    """

    def __init__(self, dataset: str) -> None:
        self.dataset = dataset
        self.issues: dict[str, _Issue] = {}

    def add(self, key: str, what: str, count: int = 1, examples: Iterable[object] = ()) -> None:
        """Count ``count`` occurrences of issue ``key`` (described by ``what``)."""
        if count <= 0:
            return
        issue = self.issues.setdefault(key, _Issue(what))
        issue.count += int(count)
        for example in examples:
            if len(issue.examples) >= 3:
                break
            issue.examples.append(str(example))

    def counts(self) -> dict[str, int]:
        return {key: issue.count for key, issue in self.issues.items()}

    def summary(self) -> str:
        """One line per issue: count, what, examples."""
        lines = []
        for issue in self.issues.values():
            eg = f", e.g. {', '.join(map(repr, issue.examples))}" if issue.examples else ""
            lines.append(f"{issue.count} {issue.what}{eg}")
        return "\n".join(lines)

    def warn(self) -> None:
        """Emit the summary as one :class:`DataWarning` (nothing when there is no issue)."""
        if self.issues:
            text = self.summary().replace("\n", "; ")
            warnings.warn(f"{self.dataset}: {text}", DataWarning, stacklevel=3)


# --------------------------------------------------------------------------- finding files


def require_data_dir(
    data_dir: str | Path | None, dataset: str, expected: str, published: str
) -> Path:
    """``data_dir`` as a Path, or a :class:`MissingDataError` saying what to download and where."""
    how = ("Pass it as world_kwargs={'data_dir': ...} to gym.make, or on the command line as "
           "--kwargs '{\"world_kwargs\": {\"data_dir\": \"...\"}}'.")
    if data_dir is None:
        raise MissingDataError(
            f"the {dataset} loader needs data_dir: a local folder with {expected}. "
            f"The data is published at {published}; recgym never downloads it. {how}"
        )
    path = Path(data_dir).expanduser()
    if not path.is_dir():
        raise MissingDataError(
            f"{dataset}: data_dir {str(path)!r} is not a folder; expected a folder with {expected} "
            f"(published at {published})"
        )
    return path


def find_file(
    folder: Path, *names: str, dataset: str, required: bool = True, compressed: bool = True
) -> Path | None:
    """The first of ``names`` (or ``name.gz`` when ``compressed``) present in ``folder``.

    Raises:
        MissingDataError: none is present and ``required``; the message lists the folder.
    """
    for name in names:
        for candidate in (folder / name, folder / f"{name}.gz")[: 2 if compressed else 1]:
            if candidate.is_file():
                return candidate
    if not required:
        return None
    present = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
    close = difflib.get_close_matches(names[0], present, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    listing = ", ".join(present[:12]) + (", ..." if len(present) > 12 else "") or "nothing"
    raise MissingDataError(
        f"{dataset}: {' or '.join(repr(n) for n in names)}{' (optionally .gz)' * compressed} not "
        f"found in {folder} "
        f"(it holds {listing}){hint}"
    )


# --------------------------------------------------------------------------- reading lines


def check_on_bad_line(on_bad_line: str) -> None:
    if on_bad_line not in BAD_LINE_MODES:
        raise choice_error("on_bad_line mode", on_bad_line, BAD_LINE_MODES)


def _open_binary(path: Path):
    with open(path, "rb") as fh:
        magic = fh.read(2)
    return gzip.open(path, "rb") if magic == _GZIP_MAGIC else open(path, "rb")


def iter_lines(path: Path, encoding: str = "utf-8") -> Iterator[tuple[int, str]]:
    """``(line number, decoded line without its line break)`` of a text file, gzipped or not.

    Raises:
        DataFormatError: a line is not valid ``encoding`` (the message suggests another encoding),
            or the gzip stream is corrupt or truncated.
    """
    auto = encoding == "auto"
    codec = "utf-8" if auto or encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding
    try:
        newline = "\n".encode(codec)
    except LookupError:
        raise ValueError(f"unknown encoding {encoding!r} (for {path})") from None
    if newline != b"\n":
        raise ValueError(f"encoding {encoding!r} is not ASCII-compatible; files are read line by "
                         f"line: convert {path} to UTF-8 first")
    lineno = 0
    try:
        with _open_binary(path) as fh:
            for lineno, raw in enumerate(fh, 1):
                try:
                    line = raw.decode(codec)
                except UnicodeDecodeError as exc:
                    if not auto:
                        raise DataFormatError(
                            path, lineno,
                            f"byte {raw[exc.start:exc.start + 1]!r} at offset {exc.start} is not "
                            f"valid {encoding}; pass encoding='latin-1' (or the file's encoding) "
                            "to the loader",
                        ) from None
                    line = raw.decode("latin-1")
                if lineno == 1 and line.startswith("\ufeff"):
                    line = line[1:]
                yield lineno, line.rstrip("\r\n")
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise DataFormatError(path, lineno + 1, f"corrupt or truncated gzip data ({exc})") from None


def iter_jsonl(
    path: Path, *, required: Sequence[str] = (), encoding: str = "utf-8",
    on_bad_line: str = "error", report: LoadReport | None = None,
) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` of each non-blank line of a JSON-lines file.

    A line that is not a JSON object, or lacks a ``required`` field, is an error (or skipped and
    counted with ``on_bad_line="skip"``).
    """
    check_on_bad_line(on_bad_line)
    for lineno, line in iter_lines(path, encoding):
        if not line.strip():
            continue
        problem, column = None, None
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            problem = f"not valid JSON ({exc.msg} at character {exc.pos})"
        else:
            if not isinstance(obj, dict):
                problem = f"expected a JSON object, got {type(obj).__name__}"
            else:
                missing = [name for name in required if obj.get(name) is None]
                if missing:
                    column = missing[0]
                    problem = f"missing field (each line needs {', '.join(map(repr, required))})"
        if problem is None:
            yield lineno, obj
        elif on_bad_line == "error":
            raise DataFormatError(path, lineno, problem + "; pass on_bad_line='skip' to skip such "
                                  "lines", column)
        elif report is not None:
            report.add("bad_line", "malformed lines skipped (on_bad_line='skip')", 1,
                       [f"{path.name}:{lineno}"])


@dataclass
class Table:
    """Columns of a delimited file, with the line number of each row (for error messages)."""

    path: Path
    columns: dict[str, list[str]]
    lines: list[int]

    def __len__(self) -> int:
        return len(self.lines)

    def __contains__(self, column: str) -> bool:
        return column in self.columns

    def __getitem__(self, column: str) -> list[str]:
        return self.columns[column]

    def numbers(self, column: str, default: float | None = None) -> np.ndarray:
        """A column as float64; empty cells take ``default`` (an error when it is ``None``)."""
        values = self.columns[column]
        if default is not None:
            values = [v if v.strip() else str(default) for v in values]
        try:
            return np.array(values, dtype=np.float64)
        except ValueError:
            for value, line in zip(values, self.lines, strict=True):
                try:
                    float(value)
                except ValueError:
                    raise DataFormatError(self.path, line, f"expected a number, got {value!r}",
                                          column) from None
            raise


def read_table(
    path: Path, *, delimiter: str = "\t", required: Sequence[str] = (),
    optional: Sequence[str] = (), names: Sequence[str] | None = None, quoting: bool = True,
    encoding: str = "utf-8", on_bad_line: str = "error", report: LoadReport | None = None,
) -> Table:
    """Read the ``required`` and ``optional`` columns of a delimited text file.

    Args:
        path: the file (gzipped or not).
        delimiter: one character, or a longer separator such as MovieLens' ``"::"`` (no quoting).
        required: columns that must be in the header (:class:`DataFormatError` naming the missing
            one and the header otherwise).
        optional: columns read when present.
        names: the column names of a file without a header row; each row must have this many fields.
        quoting: honour ``"`` quoting (CSV); ``False`` for formats where quotes are plain text.
        encoding, on_bad_line, report: see the module docstring.
    """
    check_on_bad_line(on_bad_line)
    lines = iter_lines(path, encoding)
    rows: Iterator[tuple[int, list[str]]]
    if len(delimiter) > 1:
        rows = ((n, line.split(delimiter)) for n, line in lines if line.strip())
    else:
        rows = _csv_rows(lines, delimiter, quoting)
    limit = csv.field_size_limit()
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # long product descriptions
    try:
        return _collect(path, rows, required, optional, names, on_bad_line, report)
    except csv.Error as exc:
        raise DataFormatError(path, None, f"not valid delimited text ({exc})") from None
    finally:
        csv.field_size_limit(limit)


def _csv_rows(lines: Iterator[tuple[int, str]], delimiter: str, quoting: bool):
    # iter_lines numbers lines from 1 without gaps, so reader.line_num is the physical line; a
    # stray carriage return inside a line is whitespace, not a row break.
    reader = csv.reader((line.replace("\r", " ") + "\n" for _, line in lines), delimiter=delimiter,
                        quoting=csv.QUOTE_MINIMAL if quoting else csv.QUOTE_NONE)
    start = 1
    for row in reader:
        if any(cell.strip() for cell in row):
            yield start, row  # a quoted field may span lines: the row's first line
        start = reader.line_num + 1


def _collect(path, rows, required, optional, names, on_bad_line, report) -> Table:
    if names is None:
        try:
            _, header = next(rows)
        except StopIteration:
            raise DataFormatError(path, 1, "the file is empty; expected a header row") from None
        header = [h.strip() for h in header]
        first_line = 1
    else:
        header, first_line = list(names), 0
    for column in required:
        if column not in header:
            close = difflib.get_close_matches(column, header, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise DataFormatError(path, first_line or None,
                                  f"missing column; the header has {header}{hint}", column)
    wanted = [c for c in (*required, *optional) if c in header]
    index = [header.index(c) for c in wanted]
    out: list[list[str]] = [[] for _ in wanted]
    line_numbers: list[int] = []
    width = len(header)
    for lineno, row in rows:
        if len(row) != width:
            if on_bad_line == "error":
                raise DataFormatError(
                    path, lineno, f"expected {width} fields ({', '.join(header)}), got {len(row)}; "
                    "pass on_bad_line='skip' to skip such lines",
                )
            if report is not None:
                report.add("bad_line", "malformed lines skipped (on_bad_line='skip')", 1,
                           [f"{path.name}:{lineno}"])
            continue
        for values, i in zip(out, index, strict=True):
            values.append(row[i])
        line_numbers.append(lineno)
    return Table(path, dict(zip(wanted, out, strict=True)), line_numbers)


def read_numeric(
    path: Path, *, delimiter: str, required: Sequence[str], names: Sequence[str] | None = None,
    encoding: str = "utf-8", on_bad_line: str = "error", report: LoadReport | None = None,
) -> dict[str, np.ndarray]:
    """The ``required`` columns of an all-numeric delimited file (ratings), as float64 arrays.

    Millions of rows are parsed by numpy's C reader; only a file with a bad row takes the
    line-by-line path of :func:`read_table`, which names the row (or skips it). Arguments as there.
    """
    check_on_bad_line(on_bad_line)
    numbered = iter_lines(path, encoding)
    header = list(names) if names is not None else None
    if header is None:
        for _, line in numbered:
            header = [h.strip() for h in line.split(delimiter)]
            break
        else:
            raise DataFormatError(path, 1, "the file is empty; expected a header row")
    if all(column in header for column in required):
        body = (line.replace(delimiter, ",") if delimiter != "," else line
                for _, line in numbered if line.strip())
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # "input contained no data"
                data = np.loadtxt(body, delimiter=",", dtype=np.float64, comments=None, ndmin=2,
                                  quotechar=None, encoding=None)
        except ValueError:
            pass
        else:
            if data.shape[1] in (0, len(header)):
                data = data.reshape(-1, len(header))
                return {c: data[:, header.index(c)] for c in required}
    table = read_table(path, delimiter=delimiter, required=required, names=names, quoting=False,
                       encoding=encoding, on_bad_line=on_bad_line, report=report)
    ok = np.ones(len(table), dtype=bool)
    for column in required:
        for i, value in enumerate(table[column]):
            try:
                float(value)
            except ValueError:
                if on_bad_line == "error":
                    raise DataFormatError(
                        path, table.lines[i], f"expected a number, got {value!r}; pass "
                        "on_bad_line='skip' to skip such lines", column,
                    ) from None
                ok[i] = False
    if report is not None and not ok.all():
        report.add("bad_line", "malformed lines skipped (on_bad_line='skip')", int((~ok).sum()),
                   [f"{path.name}:{table.lines[i]}" for i in np.flatnonzero(~ok)[:3]])
    keep = np.flatnonzero(ok).tolist()
    return {c: np.array([table[c][i] for i in keep], dtype=np.float64) for c in required}


# --------------------------------------------------------------------------- judgments and worlds


def group_judgments(
    request_ids: Sequence[str], item_ids: Sequence[str], gains: np.ndarray, catalog: Catalog,
    report: LoadReport,
) -> dict[str, ArrayJudgments]:
    """Judgment rows grouped per request, as compact :class:`ArrayJudgments`.

    Judgments of items absent from the catalog are dropped and counted (``unknown_item``); several
    judgments of one item for one request keep the highest gain (``duplicate_judgment``). Requests
    keep the order of their first judgment.
    """
    gains = np.asarray(gains, dtype=np.float64)
    rows = catalog.rows(item_ids)
    unknown = rows < 0
    if unknown.any():
        examples = [item_ids[i] for i in np.flatnonzero(unknown)[:3]]
        report.add("unknown_item", "judgments naming items not in the catalog (dropped)",
                   int(unknown.sum()), examples)
    keys = np.asarray(request_ids, dtype=object)[~unknown]
    rows, gains = rows[~unknown], gains[~unknown]
    if not len(rows):
        return {}
    names, first, codes = np.unique(keys.astype(str), return_index=True, return_inverse=True)
    order = np.lexsort((-gains, rows, codes))  # per request, per item: highest gain first
    codes, rows, gains = codes[order], rows[order], gains[order]
    dup = np.zeros(len(rows), dtype=bool)
    dup[1:] = (codes[1:] == codes[:-1]) & (rows[1:] == rows[:-1])
    if dup.any():
        report.add("duplicate_judgment", "repeated judgments of one item for one request "
                   "(the highest gain is kept)", int(dup.sum()),
                   [f"{names[c]}/{catalog.ids[r]}"
                    for c, r in zip(codes[dup][:3], rows[dup][:3], strict=True)])
    codes, rows, gains = codes[~dup], rows[~dup], gains[~dup]
    bounds = np.flatnonzero(np.diff(codes)) + 1
    starts = np.concatenate([[0], bounds])
    ends = np.concatenate([bounds, [len(codes)]])
    grouped = {int(codes[s]): ArrayJudgments(catalog.ids, rows[s:e], gains[s:e])
               for s, e in zip(starts, ends, strict=True)}
    return {str(names[c]): grouped[c] for c in np.argsort(first, kind="stable").tolist()}


def first_rows(ids: np.ndarray, report: LoadReport, what: str = "items") -> np.ndarray:
    """Row indices keeping the first occurrence of each id; repeats are counted in the report."""
    _, first = np.unique(ids, return_index=True)
    keep = np.sort(first)
    if len(keep) < len(ids):
        dup = np.setdiff1d(np.arange(len(ids)), keep)
        report.add("duplicate_item", f"repeated ids of {what} (the first row is kept)", len(dup),
                   np.asarray(ids)[dup[:3]].tolist())
    return keep


def make_world(
    name: str, catalog: Catalog, tasks: Sequence[Task], description: str, report: LoadReport,
    identity: Callable[[Task], str] | None = None,
) -> World:
    """The World of a loaded dataset: counts items without text, warns once, keeps the report.

    ``identity`` is the no-rewriting query of a task (``None``: the request itself).
    """
    if not tasks:
        details = f" ({report.summary()})" if report.issues else ""
        raise DataFormatError(report.dataset, None, "no request has a usable judgment; nothing to "
                              "build tasks from" + details)
    columns = [catalog.titles, *catalog.fields.values()]
    empty = [i for i, parts in enumerate(zip(*columns, strict=True))
             if not any(p.strip() for p in parts)]
    if empty:
        report.add("empty_text", "items without any text (kept; a lexical retriever cannot find "
                   "them)", len(empty), catalog.ids[empty[:3]].tolist())
    task_set = TaskSet(tasks)
    sizes = ", ".join(f"{n} {s}" for s, n in task_set.sizes().items())
    text = f"{description} {len(catalog)} items; requests: {sizes}."
    if report.issues:
        text += "\nLoad report:\n" + report.summary()
    report.warn()
    return World(name=name, catalog=catalog, tasks=task_set, description=text, oracle=None,
                 identity=identity, hidden=report)
