"""The synthetic shop: a generated catalog and shopper requests over a hand-written lexicon.

Sellers title items in **catalog terms**; shoppers ask in **shopper terms** (synonyms, colloquial
names, needs, typos, filler), which overlap only in part. The request as a query therefore finds
some of what the shopper wants; a query written in catalog terms finds most of it. That gap is the
headroom a query-rewriting policy learns to close.

Everything is drawn from one ``numpy`` generator seeded by ``seed``: the same arguments give the
same world in any process, whatever ``PYTHONHASHSEED``.

Judgments (gains as in Amazon ESCI's exact / substitute / complement / irrelevant):

* ``1.0`` exact: the requested product type with every requested attribute value;
* ``0.1`` substitute: the requested type with some requested attribute different, or a listed
  substitute type with every requested attribute it has;
* ``0.01`` complement: an item of a listed complement type;
* ``0`` anything else (unjudged).

With trec_eval's ``relevance_level`` of 1, recall and MRR count exact items only; nDCG uses every
gain.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from recgym.catalog import ArrayJudgments, Catalog, Task, TaskSet
from recgym.worlds import World
from recgym.worlds.lexicon import Lexicon, ProductType, load_lexicon

__all__ = ["GAINS", "IN_STYLES", "OOD_STYLES", "ShopIndex", "build_world"]

GAINS = {"exact": 1.0, "substitute": 0.1, "complement": 0.01}
# Phrasing styles of requests: the first group is seen in training, the second only in
# test_ood_phrasing.
IN_STYLES = {"keywords": 0.45, "question": 0.15, "conversational": 0.25, "spec": 0.15}
OOD_STYLES = {"need": 0.5, "typo": 0.5}
SPLIT_FRACTIONS = {
    "train": 0.6,
    "val": 0.1,
    "test": 0.1,
    "test_ood_category": 0.1,
    "test_ood_phrasing": 0.1,
}

_MODELS = (
    "Pro",
    "Plus",
    "Classic",
    "Essentials",
    "Select",
    "Prime",
    "Signature",
    "Core",
    "Flex",
    "Elite",
    "Original",
    "Studio",
)
_FILLER = (
    "Backed by a one-year limited warranty.",
    "Ships in recyclable packaging.",
    "Designed for everyday use.",
    "Easy to clean and maintain.",
    "A thoughtful gift idea.",
    "Quality checked before shipping.",
    "Satisfaction guaranteed.",
    "Built to last.",
)
_QUESTION = (
    "where can i buy a {x}",
    "any recommendations for a {x}?",
    "what's a good {x}",
    "best {x}?",
    "looking for a good {x} - suggestions?",
    "which {x} should i get",
)
_CONVO = (
    "hi, i'm looking for a {t} for {who}.",
    "hello! i need a {t} for {who}.",
    "can you help me find a {t}? it's for {who}.",
    "i want to get a {t} for {who}.",
)
_CONVO_ATTR = (
    " ideally {a}.",
    " it should be {a}.",
    " preferably {a}, thanks!",
    " i'd like it {a} if possible.",
)
_WHO = (
    "my mom",
    "my dad",
    "my wife",
    "my husband",
    "my daughter",
    "my son",
    "our new apartment",
    "a friend's birthday",
    "work",
    "myself",
    "a housewarming gift",
    "my grandma",
)
_NEED_ATTR = (", {a} please", " - {a}", ", ideally {a}", " ({a})")
# How often a shopper happens to use a seller's term instead of their own words.
P_CATALOG_WORDS = 0.25


@dataclass(frozen=True, eq=False)
class ShopIndex:
    """The hidden structure of a generated shop (what the oracle and the judgments read).

    ``item_type``: type index per item; ``item_attr``: ``(n_items, n_attributes)`` value index per
    item and attribute, ``-1`` where the attribute does not apply; ``attributes``: attribute names
    in column order; ``types``: product types in index order.
    """

    lexicon: Lexicon
    types: tuple[ProductType, ...]
    attributes: tuple[str, ...]
    item_type: np.ndarray
    item_brand: np.ndarray
    item_attr: np.ndarray
    price: np.ndarray
    target: np.ndarray

    @cached_property
    def type_pos(self) -> dict[str, int]:
        return {p.id: i for i, p in enumerate(self.types)}


def _pick(rng: np.random.Generator, options: Sequence[str]) -> str:
    return options[int(rng.integers(len(options)))]


def _zipf(n: int, s: float) -> np.ndarray:
    w = 1.0 / np.arange(1, n + 1) ** s
    return w / w.sum()


def _catalog_term(terms: Sequence[str], u: float) -> str:
    # Sellers use the canonical term half the time and the alternatives evenly otherwise.
    if u < 0.5 or len(terms) == 1:
        return terms[0]
    return terms[1 + int((u - 0.5) * 2 * (len(terms) - 1))]


def _mentions(lex: Lexicon, ptype: ProductType) -> list[dict[str, set[int]]]:
    """For each catalog term of a type, the attribute values its words already name.

    "cordless string trimmer" names power_source=cordless: an item titled with it must be
    cordless, and its title need not say so twice.
    """
    out = []
    for term in ptype.catalog:
        padded = f" {term.lower()} "
        named: dict[str, set[int]] = {}
        for a in ptype.attributes:
            for j, value in enumerate(lex.attributes[a]):
                if any(f" {t.lower()} " in padded for t in value.catalog):
                    named.setdefault(a, set()).add(j)
        out.append(named)
    return out


def _nouns_for(
    terms: Sequence[str], named: list[dict[str, set[int]]], values: dict[str, int]
) -> tuple[list[str], set[str]]:
    """Catalog terms that do not contradict an item's ``values``, and the attributes they name."""
    fits = [k for k, n in enumerate(named) if all(values[a] in v for a, v in n.items())]
    fits = fits or list(range(len(terms)))  # every term contradicts: keep the lexicon's word
    return [terms[k] for k in fits], {a for k in fits for a in named[k]}


def _generate_items(lex: Lexicon, n_items: int, rng: np.random.Generator):
    types = lex.types
    attributes = tuple(sorted(lex.attributes))
    col = {a: i for i, a in enumerate(attributes)}
    type_weight = rng.permutation(_zipf(len(types), 0.5))
    item_type = rng.choice(len(types), size=n_items, p=type_weight)
    item_attr = np.full((n_items, len(attributes)), -1, dtype=np.int16)
    item_brand = np.zeros(n_items, dtype=np.int16)
    price = np.zeros(n_items)
    dept_of = {d.id: d for d in lex.departments}
    type_by_id = {t.id: t for t in types}
    for t, ptype in enumerate(types):
        rows = np.flatnonzero(item_type == t)
        brands = dept_of[ptype.department].brands
        item_brand[rows] = rng.choice(len(brands), size=len(rows), p=_zipf(len(brands), 0.8))
        for a in ptype.attributes:
            values = lex.attributes[a]
            allowed = ptype.values.get(a)
            pool = np.array([j for j, v in enumerate(values) if allowed is None or v.id in allowed])
            p = rng.permutation(_zipf(len(pool), 0.7))
            item_attr[rows, col[a]] = pool[rng.choice(len(pool), size=len(rows), p=p)]
        low, high = ptype.price
        price[rows] = np.round(rng.uniform(low, high, size=len(rows))) - 0.01
    popularity = np.round(1e5 / rng.permutation(np.arange(1, n_items + 1)) ** 1.1, 3)

    u = rng.random((n_items, 4 + len(attributes)))
    n_features = rng.integers(2, 4, size=n_items)
    named = [_mentions(lex, ptype) for ptype in types]
    ids, titles, brands_col, descriptions, categories = [], [], [], [], []
    for i in range(n_items):
        ptype = types[item_type[i]]
        brand = dept_of[ptype.department].brands[item_brand[i]]
        values = {a: int(item_attr[i, col[a]]) for a in ptype.attributes}
        nouns, said = _nouns_for(ptype.catalog, named[item_type[i]], values)
        noun = _catalog_term(nouns, u[i, 0])
        words = []
        for a in ptype.attributes:
            c = col[a]
            value = lex.attributes[a][item_attr[i, c]]
            if a in said and any(f" {t.lower()} " in f" {noun.lower()} " for t in value.catalog):
                continue  # the noun already says it
            if u[i, 4 + c] < 0.8:  # a fifth of titles leave an attribute out
                words.append(_catalog_term(value.catalog, (u[i, 4 + c] * 1.25 + u[i, 1]) % 1.0))
        model = f" {_MODELS[int(u[i, 2] * len(_MODELS))]}" if u[i, 2] < 0.3 else ""
        layout = int(u[i, 3] * 3)
        if layout == 0:
            title = f"{brand}{model} {' '.join(words)} {noun}"
        elif layout == 1:
            title = f"{brand} {noun}{model}" + "".join(f", {w}" for w in words)
        else:
            title = f"{' '.join(words)} {noun} by {brand}"
        start = int(u[i, 1] * len(ptype.features))
        feats = [ptype.features[(start + j) % len(ptype.features)] for j in range(n_features[i])]
        sentences = [f.capitalize() + "." for f in feats]
        sentences.append(_FILLER[int(u[i, 2] * 997) % len(_FILLER)])
        if ptype.complements and u[i, 3] * 7 % 1.0 < 0.2:
            comp = type_by_id[ptype.complements[int(u[i, 0] * 13) % len(ptype.complements)]]
            article = "an" if comp.catalog[0][0] in "aeiou" else "a"
            sentences.append(f"Pairs well with {article} {comp.catalog[0]}.")
        ids.append(f"P{i:07d}")
        titles.append(" ".join(title.split()))
        brands_col.append(brand)
        descriptions.append(" ".join(sentences))
        categories.append(ptype.department)
    catalog = Catalog(
        ids=np.array(ids),
        titles=titles,
        fields={"brand": brands_col, "description": descriptions},
        categories=np.array(categories),
        popularity=popularity,
    )
    return catalog, attributes, item_type, item_brand, item_attr, price


def _typos(text: str, rng: np.random.Generator) -> str:
    words = text.split()
    long_words = [i for i, w in enumerate(words) if len(w) >= 4 and w.isalpha()]
    if not long_words:
        return text
    n = min(len(long_words), 1 + int(rng.random() < 0.4))
    for i in rng.choice(long_words, size=n, replace=False):
        w = words[i]
        j = int(rng.integers(1, len(w) - 1))
        op = int(rng.integers(4))
        if op == 0:
            w = w[: j - 1] + w[j] + w[j - 1] + w[j + 1 :]  # swap neighbours
        elif op == 1:
            w = w[:j] + w[j + 1 :]  # drop a letter
        elif op == 2:
            w = w[:j] + w[j] + w[j:]  # double a letter
        else:
            w = w[:j] + "aeiou"[int(rng.integers(5))] + w[j + 1 :]  # wrong vowel
        words[i] = w
    return " ".join(words)


def _render_request(
    style: str, ptype: ProductType, attrs: list[tuple[str, str]], rng: np.random.Generator
) -> str:
    """A shopper's words for a product type and attribute phrases ``(attribute, phrase)``."""
    noun = _pick(rng, ptype.catalog if rng.random() < P_CATALOG_WORDS else ptype.shopper)
    phrases = [p for _, p in attrs]
    if style in ("keywords", "typo"):
        before = [p for p in phrases if rng.random() < 0.6]
        after = [p for p in phrases if p not in before]
        text = " ".join([*before, noun, *after])
        return _typos(text, rng) if style == "typo" else text
    joined = " and ".join(phrases)
    if style == "question":
        return _pick(rng, _QUESTION).format(x=" ".join([*phrases, noun]))
    if style == "conversational":
        text = _pick(rng, _CONVO).format(t=noun, who=_pick(rng, _WHO))
        return text + (_pick(rng, _CONVO_ATTR).format(a=joined) if phrases else "")
    if style == "spec":
        return noun + "".join(f", {a.replace('_', ' ')}: {p}" for a, p in attrs)
    if style == "need":
        return _pick(rng, ptype.needs) + (
            _pick(rng, _NEED_ATTR).format(a=joined) if phrases else ""
        )
    raise ValueError(f"unknown phrasing style {style!r}")


def _judge(
    index: ShopIndex, by_type: list[np.ndarray], t: int, wanted: dict[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Judged catalog rows and gains for a request of type ``t`` with the values ``wanted``."""
    ptype = index.types[t]
    type_pos = index.type_pos
    rows, gains = [], []

    def matches(candidates: np.ndarray) -> np.ndarray:
        ok = np.ones(len(candidates), dtype=bool)
        for c, v in wanted.items():
            have = index.item_attr[candidates, c]
            ok &= (have == v) | (have < 0)  # an attribute the type lacks is no mismatch
        return ok

    same = by_type[t]
    exact = matches(same)
    rows.append(same)
    gains.append(np.where(exact, GAINS["exact"], GAINS["substitute"]))
    for sid in ptype.substitutes:
        cand = by_type[type_pos[sid]]
        cand = cand[matches(cand)]
        rows.append(cand)
        gains.append(np.full(len(cand), GAINS["substitute"]))
    for cid in ptype.complements:
        cand = by_type[type_pos[cid]]
        rows.append(cand)
        gains.append(np.full(len(cand), GAINS["complement"]))
    rows_all = np.concatenate(rows)
    gains_all = np.concatenate(gains)
    # A row judged twice (a type listed as both substitute and complement) keeps its best gain.
    order = np.lexsort((-gains_all, rows_all))
    rows_all, gains_all = rows_all[order], gains_all[order]
    first = np.ones(len(rows_all), dtype=bool)
    first[1:] = rows_all[1:] != rows_all[:-1]
    return rows_all[first], gains_all[first]


def build_world(
    n_items: int = 20_000, n_tasks: int = 10_000, seed: int = 0, ood_departments: int = 3
) -> World:
    """Generate the shop world.

    Args:
        n_items: catalog size (1,000 to 1,000,000 are practical).
        n_tasks: requests over all splits (60% train, 10% each val, test, test_ood_category,
            test_ood_phrasing).
        seed: the only source of randomness.
        ood_departments: how many departments are held out of train/val/test (their requests
            form test_ood_category; their items stay in the catalog).
    """
    if not isinstance(n_items, int) or n_items < 100:
        raise ValueError(f"n_items must be an integer >= 100, got {n_items!r}")
    if not isinstance(n_tasks, int) or n_tasks < 10:
        raise ValueError(f"n_tasks must be an integer >= 10, got {n_tasks!r}")
    lex = load_lexicon()
    if not 1 <= ood_departments < len(lex.departments):
        raise ValueError(f"ood_departments must be in [1, {len(lex.departments) - 1}]")
    rng = np.random.default_rng(seed)
    catalog, attributes, item_type, item_brand, item_attr, price = _generate_items(
        lex, n_items, rng
    )
    types = lex.types
    dept_ids = [d.id for d in lex.departments]
    held_out = sorted(rng.choice(dept_ids, size=ood_departments, replace=False).tolist())
    type_held = np.array([t.department in held_out for t in types])
    by_type = [np.flatnonzero(item_type == t) for t in range(len(types))]

    counts = {s: round(f * n_tasks) for s, f in SPLIT_FRACTIONS.items()}
    counts["train"] = n_tasks - sum(v for s, v in counts.items() if s != "train")
    plan = [s for s in SPLIT_FRACTIONS for _ in range(counts[s])]
    # People ask for popular things more often: targets are drawn by sqrt(popularity).
    weight = np.sqrt(catalog.popularity)
    ood_request = np.array([s == "test_ood_category" for s in plan])
    targets = np.zeros(len(plan), dtype=np.int64)
    for mask, pool in ((~ood_request, ~type_held[item_type]), (ood_request, type_held[item_type])):
        items = np.flatnonzero(pool)
        targets[mask] = rng.choice(
            items, size=int(mask.sum()), p=weight[items] / weight[items].sum()
        )

    index = ShopIndex(lex, types, attributes, item_type, item_brand, item_attr, price, targets)
    ood_phrasing = np.array([s == "test_ood_phrasing" for s in plan])
    style_in = rng.choice(list(IN_STYLES), size=len(plan), p=list(IN_STYLES.values()))
    style_ood = rng.choice(list(OOD_STYLES), size=len(plan), p=list(OOD_STYLES.values()))
    styles = np.where(ood_phrasing, style_ood, style_in)
    n_attrs = rng.choice(4, size=len(plan), p=[0.15, 0.4, 0.3, 0.15])
    judged: dict[tuple, ArrayJudgments] = {}  # requests for the same thing share judgments
    tasks = []
    for n, split in enumerate(plan):
        target, style = int(targets[n]), str(styles[n])
        t = int(item_type[target])
        ptype = types[t]
        n_attr = min(len(ptype.attributes), int(n_attrs[n]))
        chosen = sorted(rng.choice(len(ptype.attributes), size=n_attr, replace=False).tolist())
        wanted, phrases, fields_attrs = {}, [], {}
        for j in chosen:
            a = ptype.attributes[j]
            c = attributes.index(a)
            value = lex.attributes[a][item_attr[target, c]]
            wanted[c] = int(item_attr[target, c])
            words = value.catalog if rng.random() < P_CATALOG_WORDS else value.shopper
            phrases.append((a, _pick(rng, words)))
            fields_attrs[a] = value.id
        request = _render_request(style, ptype, phrases, rng)
        key = (t, *sorted(wanted.items()))
        if key not in judged:
            judged[key] = ArrayJudgments(catalog.ids, *_judge(index, by_type, t, wanted))
        tasks.append(
            Task(
                id=f"shop-{n:06d}",
                request=request,
                split=split,
                judgments=judged[key],
                fields={
                    "department": ptype.department,
                    "product_type": ptype.id,
                    "attributes": fields_attrs,
                    "style": style,
                },
            )
        )
    task_set = TaskSet(tasks)

    def oracle(task: Task) -> str:
        """Every catalog term of the requested type and attribute values."""
        t = index.type_pos[task.fields["product_type"]]
        ptype = types[t]
        wanted = {
            a: next(j for j, v in enumerate(lex.attributes[a]) if v.id == vid)
            for a, vid in task.fields["attributes"].items()
        }
        named = [{a: v for a, v in n.items() if a in wanted} for n in _mentions(lex, ptype)]
        terms, _ = _nouns_for(ptype.catalog, named, wanted)
        for a, j in wanted.items():
            terms.extend(lex.attributes[a][j].catalog)
        return " ".join(terms)

    description = (
        f"Synthetic shop: {n_items:,} items of {len(types)} product types in "
        f"{len(lex.departments)} departments; {n_tasks:,} shopper requests "
        f"({', '.join(f'{s} {c:,}' for s, c in task_set.sizes().items())}). Held-out departments "
        f"(test_ood_category): {', '.join(held_out)}. Held-out phrasing styles "
        f"(test_ood_phrasing): {', '.join(OOD_STYLES)}. Gains: exact 1, substitute 0.1, "
        f"complement 0.01."
    )
    return World("shop", catalog, task_set, description=description, oracle=oracle, hidden=index)
