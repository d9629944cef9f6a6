"""Action parsers: the agent's output text -> the query the retriever sees.

A parser never raises on text: a malformed answer is a legal step whose :class:`ParsedAction` says
why it is invalid (the env then gives the format penalty and reports ``info["invalid_reason"]``).
Only a non-string action is a programming error (``TypeError``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from itertools import repeat
from typing import Any, NamedTuple

from recgym.catalog import choice_error

__all__ = [
    "PARSERS",
    "ParsedAction",
    "cap_query",
    "check_action",
    "make_parser",
    "parse_batch",
]


class ParsedAction(NamedTuple):
    """What a parser extracted: the query, or why there is none (a named tuple: immutable, and
    cheap to make once per scored query)."""

    query: str
    invalid_reason: str | None = None

    @property
    def valid(self) -> bool:
        return self.invalid_reason is None


def check_action(action: Any) -> str:
    """Return ``action`` if it is a ``str``; otherwise raise a ``TypeError`` that says so."""
    if not isinstance(action, str):
        raise TypeError(
            f"recgym actions are text: expected a str (the query or the model's answer), "
            f"got {type(action).__name__}: {action!r:.80}"
        )
    return action


def _nonempty(query: str) -> ParsedAction:
    if not query.strip():
        return ParsedAction("", "empty_query")
    return ParsedAction(query)


def parse_raw(text: str) -> ParsedAction:
    """The whole text is the query; only an empty or all-whitespace text is invalid."""
    return _nonempty(text)


def _parse_raw_batch(texts: Sequence[str]) -> tuple[list[str], list[str | None]]:
    """:func:`parse_raw` of many texts, without a :class:`ParsedAction` per text."""
    reasons = ["empty_query" if not t or t.isspace() else None for t in texts]
    if any(reasons):
        return [t if r is None else "" for t, r in zip(texts, reasons)], reasons
    return list(texts), reasons


def parse_batch(
    parser: Callable[[str], ParsedAction], texts: Sequence[str]
) -> tuple[list[str], list[str | None]]:
    """Parse many texts: ``(queries, invalid_reasons)``, as ``parser`` gives them one by one.

    The type of every text is checked first (:func:`check_action`). A parser with a batch form
    in ``_BATCH_PARSERS`` (the raw one) runs it; any other runs once per text.
    """
    if not all(map(isinstance, texts, repeat(str))):
        for text in texts:
            check_action(text)  # raises on the first non-str
    batch = _BATCH_PARSERS.get(parser)
    if batch is not None:
        return batch(texts)
    parsed = [parser(text) for text in texts]
    return [p.query for p in parsed], [p.invalid_reason for p in parsed]


_BATCH_PARSERS: dict[Callable[[str], ParsedAction], Callable[..., Any]] = {
    parse_raw: _parse_raw_batch
}


_TAGS = ("<think>", "</think>", "<answer>", "</answer>")
_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)


def parse_rec_r1(text: str) -> ParsedAction:
    """Rec-R1's format: ``<think>...</think><answer>{"query": "..."}</answer>``.

    The rules of Rec-R1's reward function: each of the four tags appears exactly once, in the
    order think-open, think-close, answer-open, answer-close; the content of the last answer block
    is a JSON object with a string ``"query"``.

    Example:
        >>> parse_rec_r1('<think>mug</think><answer>{"query": "travel mug"}</answer>').query
        'travel mug'
        >>> parse_rec_r1("travel mug").invalid_reason
        'missing_tag:<think>'
    """
    positions = []
    for tag in _TAGS:
        count = text.count(tag)
        if count == 0:
            return ParsedAction("", f"missing_tag:{tag}")
        if count > 1:
            return ParsedAction("", f"repeated_tag:{tag}")
        positions.append(text.index(tag))
    if positions != sorted(positions):
        return ParsedAction("", "tags_out_of_order")
    answer = _ANSWER.findall(text)[-1].strip()
    try:
        payload = json.loads(answer)
    except (json.JSONDecodeError, RecursionError):
        return ParsedAction("", "answer_not_json")
    if not isinstance(payload, dict) or "query" not in payload:
        return ParsedAction("", "answer_without_query_key")
    if not isinstance(payload["query"], str):
        return ParsedAction("", "query_not_a_string")
    return _nonempty(payload["query"])


PARSERS: dict[str, Callable[[str], ParsedAction]] = {"raw": parse_raw, "rec-r1": parse_rec_r1}


def make_parser(parser: str | Callable[[str], ParsedAction]) -> Callable[[str], ParsedAction]:
    """A parser by name (``raw``, ``rec-r1``) or a callable ``str -> ParsedAction``."""
    if callable(parser):
        return parser
    if parser not in PARSERS:
        raise choice_error("parser", parser, PARSERS)
    return PARSERS[parser]


def cap_query(query: str, max_chars: int, max_terms: int) -> tuple[str, dict[str, int] | None]:
    """Truncate a query to ``max_chars`` characters and ``max_terms`` whitespace-separated terms.

    Returns the capped query and, when a cap applied, the original sizes (``{"chars": ...,
    "terms": ...}``) for ``info["capped"]``. Characters are cut first, so a megabyte of text costs
    no more than ``max_chars`` to split.
    """
    n_chars = len(query)
    if n_chars <= max_chars and n_chars < 2 * max_terms:
        return query, None  # too short to hold more than max_terms terms: no split needed
    terms = query[:max_chars].split()
    if n_chars <= max_chars and len(terms) <= max_terms:
        return query, None
    capped = {"chars": n_chars, "terms": len(terms) if n_chars <= max_chars else len(query.split())}
    return " ".join(terms[:max_terms]), capped
