"""The shop lexicon: departments, product types and attribute values in catalog and shopper terms.

The data is hand-written TOML in ``recgym/worlds/shop_lexicon/`` (see its README). This module
loads it into frozen dataclasses and checks every cross-reference, naming the file at fault.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["AttributeValue", "Department", "Lexicon", "ProductType", "load_lexicon"]


@dataclass(frozen=True)
class AttributeValue:
    attribute: str
    id: str
    catalog: tuple[str, ...]
    shopper: tuple[str, ...]


@dataclass(frozen=True)
class ProductType:
    id: str
    department: str
    catalog: tuple[str, ...]
    shopper: tuple[str, ...]
    needs: tuple[str, ...]
    attributes: tuple[str, ...]
    features: tuple[str, ...]
    complements: tuple[str, ...]
    substitutes: tuple[str, ...]
    price: tuple[int, int]
    values: dict[
        str, tuple[str, ...]
    ]  # attribute -> the value ids this type comes in (default all)


@dataclass(frozen=True)
class Department:
    id: str
    name: str
    brands: tuple[str, ...]
    types: tuple[ProductType, ...]


@dataclass(frozen=True)
class Lexicon:
    attributes: dict[str, tuple[AttributeValue, ...]]
    departments: tuple[Department, ...]

    @property
    def types(self) -> tuple[ProductType, ...]:
        return tuple(t for d in self.departments for t in d.types)


class LexiconError(ValueError):
    """A lexicon file is malformed or refers to something that does not exist."""


def _strings(raw: dict, key: str, where: str, minimum: int = 1) -> tuple[str, ...]:
    value = raw.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise LexiconError(f"{where}: {key!r} must be a list of non-empty strings")
    if len(value) < minimum:
        raise LexiconError(f"{where}: {key!r} needs at least {minimum} entries, has {len(value)}")
    return tuple(v.strip() for v in value)


def _parse_attributes(text: str, where: str) -> dict[str, tuple[AttributeValue, ...]]:
    out = {}
    for name, table in sorted(tomllib.loads(text).items()):
        values = []
        for raw in table.get("values", []):
            vid = raw.get("id")
            spot = f"{where} [{name}] value {vid!r}"
            values.append(
                AttributeValue(
                    name, str(vid), _strings(raw, "catalog", spot), _strings(raw, "shopper", spot)
                )
            )
        if len(values) < 2:
            raise LexiconError(f"{where} [{name}]: an attribute needs at least two values")
        out[name] = tuple(values)
    return out


def _parse_department(text: str, where: str) -> Department:
    raw = tomllib.loads(text)
    dept = raw.get("id")
    if not isinstance(dept, str) or not dept:
        raise LexiconError(f"{where}: missing department 'id'")
    types = []
    for t in raw.get("types", []):
        spot = f"{where} type {t.get('id')!r}"
        price = t.get("price", [10, 50])
        if len(price) != 2 or not 0 < price[0] <= price[1]:
            raise LexiconError(f"{spot}: 'price' must be [low, high] with 0 < low <= high")
        types.append(
            ProductType(
                id=str(t.get("id")),
                department=dept,
                catalog=_strings(t, "catalog", spot),
                shopper=_strings(t, "shopper", spot),
                needs=_strings(t, "needs", spot),
                attributes=_strings(t, "attributes", spot, 0),
                features=_strings(t, "features", spot),
                complements=_strings(t, "complements", spot, 0),
                substitutes=_strings(t, "substitutes", spot, 0),
                price=(int(price[0]), int(price[1])),
                values={a: _strings(t.get("values", {}), a, spot) for a in t.get("values", {})},
            )
        )
    return Department(
        dept, str(raw.get("name", dept)), _strings(raw, "brands", where, 2), tuple(types)
    )


def _check(lex: Lexicon) -> None:
    seen: dict[str, str] = {}
    for d in lex.departments:
        for t in d.types:
            if t.id in seen:
                raise LexiconError(f"type id {t.id!r} is defined in both {seen[t.id]} and {d.id}")
            seen[t.id] = d.id
    for d in lex.departments:
        for t in d.types:
            for a in t.attributes:
                if a not in lex.attributes:
                    raise LexiconError(f"{d.id}.toml type {t.id!r}: unknown attribute {a!r}")
            for a, ids in t.values.items():
                if a not in t.attributes:
                    raise LexiconError(
                        f"{d.id}.toml type {t.id!r}: values for {a!r}, which is "
                        "not one of its attributes"
                    )
                known = {v.id for v in lex.attributes[a]}
                for vid in ids:
                    if vid not in known:
                        raise LexiconError(f"{d.id}.toml type {t.id!r}: unknown {a} value {vid!r}")
            for ref in (*t.complements, *t.substitutes):
                if ref not in seen:
                    raise LexiconError(f"{d.id}.toml type {t.id!r}: unknown type {ref!r}")


@lru_cache(maxsize=1)
def load_lexicon() -> Lexicon:
    """Load and check the packaged shop lexicon (cached for the process)."""
    folder = resources.files("recgym.worlds.shop_lexicon")
    files = sorted((f for f in folder.iterdir() if f.name.endswith(".toml")), key=lambda f: f.name)
    attributes: dict[str, tuple[AttributeValue, ...]] = {}
    departments = []
    for f in files:
        try:
            text = f.read_text(encoding="utf-8")
            if f.name == "attributes.toml":
                attributes = _parse_attributes(text, f.name)
            else:
                departments.append(_parse_department(text, f.name))
        except tomllib.TOMLDecodeError as exc:
            raise LexiconError(f"{f.name}: not valid TOML: {exc}") from None
    lex = Lexicon(attributes, tuple(departments))
    _check(lex)
    return lex
