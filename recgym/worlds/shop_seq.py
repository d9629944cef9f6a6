"""The sequential shop: generated users whose purchase histories predict their next purchase.

The catalog is the shop world's (same ``n_items`` and ``seed``, same items). Each user has latent
tastes: two or three favourite departments, a favourite brand in each, a price tier and a favourite
colour. A history (5 to 30 purchases, oldest first) follows patterns seen in real purchase logs:

* **taste**: an item of a favourite department, favourite brand and price tier most of the time;
* **complement**: after a camera, a lens or a tripod (the lexicon's complement types);
* **replenishment**: a consumable bought again (the same item, or the same type and brand);
* **brand loyalty**: another type from a brand already bought;
* **drift**: halfway through, one favourite department may give way to another;
* **noise**: a tenth of purchases are popular items with no relation to the user.

The next purchase is the target. Judgments (documented gains, ESCI-style scale):

* ``1.0`` the target item itself;
* ``0.1`` another item of the target's type that shares its brand or every attribute value;
* ``0.01`` an item of a complement type of the target's type from the target's brand.

Splits are by user: ``train`` 60%, ``val`` 10%, ``test`` 10%, ``test_inductive`` 10% (users whose
target item appears in no training history or target: Rec-R1's inductive setting) and
``test_ood_category`` 10% (targets in the held-out departments of the shop world).
"""

from __future__ import annotations

import numpy as np

from recgym.catalog import ArrayJudgments, Task, TaskSet
from recgym.history import render_history
from recgym.worlds import World
from recgym.worlds.lexicon import load_lexicon
from recgym.worlds.shop import ShopIndex, _generate_items, _mentions, _nouns_for

__all__ = ["SEQ_GAINS", "build_seq_world"]

SEQ_GAINS = {"target": 1.0, "similar": 0.1, "complement": 0.01}
SEQ_SPLITS = {
    "train": 0.6,
    "val": 0.1,
    "test": 0.1,
    "test_inductive": 0.1,
    "test_ood_category": 0.1,
}
# How the next purchase is chosen (the rest is taste).
P_COMPLEMENT, P_REPLENISH, P_BRAND, P_NOISE = 0.25, 0.12, 0.13, 0.10
HEADER = "Purchase history, oldest first:\n"


class _Shopper:
    """Draws users' purchases from the catalog's hidden structure.

    ``allowed`` arguments are boolean masks over product types: where a purchase may come from
    (every type for a history, only some for the target of a held-out-department split).
    ``banned`` is a boolean mask over items a target must not be (the inductive split).
    """

    def __init__(self, index: ShopIndex, popularity: np.ndarray, rng: np.random.Generator) -> None:
        self.index, self.rng = index, rng
        self.by_type = [np.flatnonzero(index.item_type == t) for t in range(len(index.types))]
        self.weight = np.sqrt(popularity)
        self.depts = sorted({t.department for t in index.types})
        self.dept_types = {
            d: [i for i, t in enumerate(index.types) if t.department == d] for d in self.depts
        }
        colour = index.item_attr[:, index.attributes.index("color")]
        price_rank = np.zeros(len(popularity))
        for rows in self.by_type:  # price percentile within the item's type
            if len(rows):
                price_rank[rows] = np.argsort(np.argsort(index.price[rows])) / max(len(rows) - 1, 1)
        # Per type: (rows, base weight, brand, price rank, colour), gathered once.
        self.per_type = [
            (r, self.weight[r], index.item_brand[r], price_rank[r], colour[r]) for r in self.by_type
        ]
        self._pools: dict[bytes, tuple[np.ndarray, np.ndarray]] = {}

    def _draw(self, w: np.ndarray, cum: np.ndarray | None = None) -> int:
        """An index drawn with probability proportional to ``w`` (``cum``: its cumsum, if known)."""
        cum = np.cumsum(w) if cum is None else cum
        return int(np.searchsorted(cum, self.rng.random() * cum[-1], side="right"))

    def new_user(self) -> None:
        rng = self.rng
        self.favourite = list(rng.choice(self.depts, size=int(rng.integers(2, 4)), replace=False))
        self.brand = {d: int(rng.integers(8)) for d in self.depts}
        self.tier = float(rng.random())
        self.colour = int(rng.integers(12))

    def pick(
        self, t: int, brand: int | None = None, exclude: int = -1, banned: np.ndarray | None = None
    ) -> int:
        """An item of type ``t``, leaning to the user's brand, price tier and colour."""
        rows, base, brands, price, colour = self.per_type[t]
        want = self.brand[self.index.types[t].department] if brand is None else brand
        w = base * np.where(brands == want, 6.0, 1.0) * np.exp(-4.0 * np.abs(price - self.tier))
        w = w * np.where(colour == self.colour, 2.0, 1.0) * (rows != exclude)
        if banned is not None:
            w = w * ~banned[rows]
        if w.sum() <= 0:
            return -1
        return int(rows[self._draw(w)])

    def _types(self, dept: str, allowed: np.ndarray) -> list[int]:
        return [t for t in self.dept_types[dept] if allowed[t]]

    def taste(self, allowed: np.ndarray, banned: np.ndarray | None = None) -> int:
        depts = [d for d in self.favourite if self._types(d, allowed)]
        depts = depts or [d for d in self.depts if self._types(d, allowed)]
        types = self._types(depts[int(self.rng.integers(len(depts)))], allowed)
        return self.pick(types[int(self.rng.integers(len(types)))], banned=banned)

    def _noise(self, allowed: np.ndarray) -> int:
        key = allowed.tobytes()
        if key not in self._pools:
            pool = np.flatnonzero(allowed[self.index.item_type])
            self._pools[key] = (pool, np.cumsum(self.weight[pool]))
        pool, cum = self._pools[key]
        return int(pool[self._draw(cum, cum)])

    def next_item(
        self, history: list[int], allowed: np.ndarray, banned: np.ndarray | None = None
    ) -> int:
        rng, index = self.rng, self.index
        u = rng.random()
        earlier = history[int(rng.integers(len(history)))]
        item = -1
        if u < P_COMPLEMENT:
            pos = index.type_pos
            comps = [
                pos[c]
                for c in index.types[index.item_type[history[-1]]].complements
                if allowed[pos[c]]
            ]
            if comps:
                item = self.pick(comps[int(rng.integers(len(comps)))], banned=banned)
        elif u < P_COMPLEMENT + P_REPLENISH:
            if allowed[index.item_type[earlier]]:
                if rng.random() < 0.5:
                    item = earlier
                else:
                    item = self.pick(
                        int(index.item_type[earlier]),
                        int(index.item_brand[earlier]),
                        earlier,
                        banned,
                    )
        elif u < P_COMPLEMENT + P_REPLENISH + P_BRAND:
            types = self._types(index.types[index.item_type[earlier]].department, allowed)
            if types:
                item = self.pick(
                    types[int(rng.integers(len(types)))],
                    int(index.item_brand[earlier]),
                    banned=banned,
                )
        elif u < P_COMPLEMENT + P_REPLENISH + P_BRAND + P_NOISE:
            item = self._noise(allowed)
        if item < 0 or (banned is not None and banned[item]):
            item = self.taste(allowed, banned)
        return item

    def purchases(
        self, length: int, target_types: np.ndarray, banned: np.ndarray | None = None
    ) -> list[int]:
        """A new user's ``length`` purchases; the last comes from ``target_types``, not ``banned``.

        Returns an empty list when no allowed item is left for the target (the caller retries).
        """
        self.new_user()
        anything = np.ones(len(self.index.types), dtype=bool)
        items = [self.taste(anything)]
        while len(items) < length - 1:
            if len(items) == length // 2 and self.rng.random() < 0.3:  # taste drifts
                self.favourite[int(self.rng.integers(len(self.favourite)))] = self.depts[
                    int(self.rng.integers(len(self.depts)))
                ]
            items.append(self.next_item(items, anything))
        target = self.next_item(items, target_types, banned)
        return [*items, target] if target >= 0 else []


def _judge(
    index: ShopIndex, by_type: list[np.ndarray], target: int
) -> tuple[np.ndarray, np.ndarray]:
    t = int(index.item_type[target])
    same = by_type[t]
    alike = (index.item_brand[same] == index.item_brand[target]) | np.all(
        index.item_attr[same] == index.item_attr[target], axis=1
    )
    rows = [same[alike & (same != target)]]
    gains = [np.full(len(rows[0]), SEQ_GAINS["similar"])]
    for c in index.types[t].complements:
        cand = by_type[index.type_pos[c]]
        cand = cand[index.item_brand[cand] == index.item_brand[target]]
        rows.append(cand)
        gains.append(np.full(len(cand), SEQ_GAINS["complement"]))
    rows.append(np.array([target]))
    gains.append(np.array([SEQ_GAINS["target"]]))
    return np.concatenate(rows), np.concatenate(gains)


def build_seq_world(
    n_items: int = 20_000,
    n_users: int = 4_000,
    seed: int = 0,
    max_history: int = 20,
    ood_departments: int = 3,
    show_ratings: bool = False,
) -> World:
    """Generate the sequential shop.

    Args:
        n_items: catalog size (the shop world's catalog for the same ``seed``).
        n_users: users over all splits (one task each).
        seed: the only source of randomness.
        max_history: the request shows only the newest ``max_history`` purchases.
        ood_departments: departments whose items are never a target outside test_ood_category.
        show_ratings: add the user's star rating (3 to 5) to each purchase line.
    """
    if not isinstance(n_users, int) or n_users < 10:
        raise ValueError(f"n_users must be an integer >= 10, got {n_users!r}")
    if not isinstance(max_history, int) or isinstance(max_history, bool) or max_history < 1:
        raise ValueError(f"max_history must be a positive integer, got {max_history!r}")
    lex = load_lexicon()
    rng = np.random.default_rng(seed)
    catalog, attributes, item_type, item_brand, item_attr, price = _generate_items(
        lex, n_items, rng
    )
    types = lex.types
    held_out = sorted(
        rng.choice([d.id for d in lex.departments], size=ood_departments, replace=False).tolist()
    )
    type_held = np.array([t.department in held_out for t in types])
    counts = {s: round(f * n_users) for s, f in SEQ_SPLITS.items()}
    counts["train"] = n_users - sum(v for s, v in counts.items() if s != "train")
    index = ShopIndex(
        lex,
        types,
        attributes,
        item_type,
        item_brand,
        item_attr,
        price,
        target=np.zeros(0, dtype=np.int64),
    )
    shopper = _Shopper(index, catalog.popularity, rng)
    by_type = shopper.by_type

    def user(ood: bool = False, banned: np.ndarray | None = None) -> list[int]:
        # 5 to 30 purchases before the target; the target's department decides the split.
        items: list[int] = []
        while not items:
            items = shopper.purchases(
                int(rng.integers(6, 32)), type_held if ood else ~type_held, banned
            )
        return items

    users = {split: [] for split in SEQ_SPLITS}
    users["train"] = [user() for _ in range(counts["train"])]
    users["test_ood_category"] = [user(ood=True) for _ in range(counts["test_ood_category"])]
    seen = np.zeros(n_items, dtype=bool)
    seen[[i for h in users["train"] for i in h]] = True
    users["test_inductive"] = [user(banned=seen) for _ in range(counts["test_inductive"])]
    users["val"] = [user() for _ in range(counts["val"])]
    users["test"] = [user() for _ in range(counts["test"])]

    ratings_rng = np.random.default_rng([seed, 1])
    tasks, targets = [], []
    judged: dict[int, ArrayJudgments] = {}
    for split in SEQ_SPLITS:
        for items in users[split]:
            *history, target = items
            shown = history[-max_history:]
            ratings = ratings_rng.integers(3, 6, size=len(shown)).tolist() if show_ratings else None
            request = HEADER + render_history(
                [catalog.titles[r] for r in shown], ratings, max_history
            )
            if target not in judged:
                judged[target] = ArrayJudgments(catalog.ids, *_judge(index, by_type, target))
            tasks.append(
                Task(
                    id=f"user-{len(tasks):06d}",
                    request=request,
                    split=split,
                    judgments=judged[target],
                    fields={
                        "n_history": len(history),
                        "history": catalog.ids[shown].tolist(),
                        "department": types[item_type[target]].department,
                    },
                )
            )
            targets.append(target)
    index = ShopIndex(
        lex, types, attributes, item_type, item_brand, item_attr, price, target=np.array(targets)
    )
    task_set = TaskSet(tasks)
    row_of_task = {t.id: n for n, t in enumerate(tasks)}

    def identity(task: Task) -> str:
        """The title of the last purchase."""
        return catalog.titles[catalog.rows(task.fields["history"][-1:])[0]]

    def oracle(task: Task) -> str:
        """The target item in catalog terms: its type's words, brand and attribute values."""
        target = int(index.target[row_of_task[task.id]])
        t = int(item_type[target])
        values = {a: int(item_attr[target, attributes.index(a)]) for a in types[t].attributes}
        nouns, _ = _nouns_for(types[t].catalog, _mentions(lex, types[t]), values)
        words = [*nouns, catalog.fields["brand"][target]]
        words += [lex.attributes[a][j].catalog[0] for a, j in values.items()]
        return " ".join(words)

    description = (
        f"Sequential shop: {n_items:,} items, {n_users:,} users with purchase histories of 5-30 "
        f"items (shown: the newest {max_history}); the next purchase is the target "
        f"({', '.join(f'{s} {c:,}' for s, c in task_set.sizes().items())}). Held-out departments "
        f"(test_ood_category): {', '.join(held_out)}. Gains: target 1, same type and brand or "
        f"attributes 0.1, same-brand complement 0.01."
    )
    return World(
        "shop_seq",
        catalog,
        task_set,
        description=description,
        oracle=oracle,
        identity=identity,
        hidden=index,
    )
