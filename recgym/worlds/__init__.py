"""Sources of catalogs and tasks: generated worlds (and, later, dataset loaders).

A source is a function ``(**kwargs) -> World``. :func:`load_world` builds one by name and keeps it
for the life of the process, so that many environments (vector-env sub-environments, a pickled copy)
share one catalog, task set and retriever index instead of rebuilding them.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from recgym.catalog import Catalog, Task, TaskSet, choice_error

__all__ = ["WORLDS", "World", "load_world"]


@dataclass(frozen=True, eq=False)
class World:
    """A catalog, the tasks asked of it, and what only the environment knows.

    Attributes:
        name: source name (``"shop"``).
        catalog: the items (hidden from the agent).
        tasks: requests with judgments and splits.
        description: one paragraph for the env card.
        oracle: a function ``Task -> str`` writing the query a perfect rewriter would write, from
            hidden knowledge of the catalog's vocabulary; ``None`` where no such knowledge exists.
        identity: a function ``Task -> str`` giving the no-rewriting query; ``None`` means the
            request itself (for histories: the title of the last item).
        hidden: the source's private structure (e.g. :class:`recgym.worlds.shop.ShopIndex`), for
            reference policies and analysis; never shown to the agent.
    """

    name: str
    catalog: Catalog
    tasks: TaskSet
    description: str = ""
    oracle: Callable[[Task], str] | None = field(default=None, repr=False)
    identity: Callable[[Task], str] | None = field(default=None, repr=False)
    hidden: Any = field(default=None, repr=False)


WORLDS: dict[str, str] = {
    "shop": "recgym.worlds.shop:build_world",
    "shop_seq": "recgym.worlds.shop_seq:build_seq_world",
    "beir": "recgym.datasets.beir:load",
    "esci": "recgym.datasets.esci:load",
    "wands": "recgym.datasets.wands:load",
    "movielens": "recgym.datasets.movielens:load",
    "recbole": "recgym.datasets.recbole:load",
    "amazon2023": "recgym.datasets.amazon2023:load",
}


def load_world(name: str, **kwargs: Any) -> World:
    """Build (or fetch from this process's cache) the world ``name`` with ``kwargs``."""
    if name not in WORLDS:
        raise choice_error("world", name, WORLDS)
    return _load(name, json.dumps(kwargs, sort_keys=True))


@lru_cache(maxsize=8)
def _load(name: str, kwargs_json: str) -> World:
    module, func = WORLDS[name].split(":")
    return getattr(importlib.import_module(module), func)(**json.loads(kwargs_json))
