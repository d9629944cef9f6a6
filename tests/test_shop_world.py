"""The synthetic shop world: lexicon, determinism, splits, judgments."""

import os
import subprocess
import sys

import numpy as np
import pytest

from recgym.worlds import load_world
from recgym.worlds.lexicon import load_lexicon
from recgym.worlds.shop import GAINS, IN_STYLES, OOD_STYLES, build_world

SMALL = {"n_items": 3000, "n_tasks": 600, "seed": 1}


@pytest.fixture(scope="module")
def world():
    return load_world("shop", **SMALL)


def test_lexicon_size_and_partial_overlap():
    lex = load_lexicon()
    assert len(lex.departments) >= 15 and len(lex.types) >= 150
    shared = [bool(set(t.catalog) & set(t.shopper)) for t in lex.types]
    # Shopper and catalog terms overlap only in part: some types share a phrase, most differ.
    assert 0 < sum(shared) < len(shared)
    for t in lex.types:
        assert len(set(t.shopper) - set(t.catalog)) >= 2, t.id
    brands = [b for d in lex.departments for b in d.brands]
    assert len(brands) == len(set(brands))


def test_same_seed_same_world_in_any_process():
    code = (
        "from recgym.worlds.shop import build_world; import hashlib\n"
        "w = build_world(n_items=1000, n_tasks=100, seed=5)\n"
        "h = hashlib.sha256(); h.update(w.catalog.content_hash().encode())\n"
        "[h.update((t.id + t.request + t.split + repr(sorted(t.judgments.items()))).encode())"
        " for t in w.tasks.tasks]\n"
        "print(h.hexdigest())\n"
    )
    digests = {
        subprocess.run(
            [sys.executable, "-c", code],
            env=dict(os.environ, PYTHONHASHSEED=seed),
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("0", "1", "random")
    }
    assert len(digests) == 1
    other = build_world(n_items=1000, n_tasks=100, seed=6)
    assert other.tasks[0].request != build_world(n_items=1000, n_tasks=100, seed=5).tasks[0].request


def test_catalog_shape(world):
    cat = world.catalog
    assert len(cat) == 3000 and len(set(cat.ids.tolist())) == 3000
    assert set(cat.fields) == {"brand", "description"}
    assert all(title and title == " ".join(title.split()) for title in cat.titles)
    assert len(set(cat.categories.tolist())) >= 15
    pop = np.sort(cat.popularity)[::-1]
    assert pop[0] > 50 * pop[len(pop) // 2]  # Zipf: a few best-sellers


def test_splits(world):
    sizes = world.tasks.sizes()
    assert sizes == {
        "test": 60,
        "test_ood_category": 60,
        "test_ood_phrasing": 60,
        "train": 360,
        "val": 60,
    }
    tasks = world.tasks.tasks
    held = {t.fields["department"] for t in tasks if t.split == "test_ood_category"}
    seen = {t.fields["department"] for t in tasks if t.split in ("train", "val", "test")}
    assert held and not held & seen
    assert {t.fields["style"] for t in tasks if t.split == "test_ood_phrasing"} <= set(OOD_STYLES)
    assert {t.fields["style"] for t in tasks if t.split == "train"} <= set(IN_STYLES)


def test_judgments_follow_the_documented_gains(world):
    index = world.hidden
    for task in world.tasks.tasks[:100]:
        judged = dict(task.judgments)
        assert set(judged.values()) <= set(GAINS.values())
        t = index.types.index(next(p for p in index.types if p.id == task.fields["product_type"]))
        rows = world.catalog.rows(judged)
        exact = [r for r, g in zip(rows, judged.values()) if g == GAINS["exact"]]
        assert exact, task.id  # the target item itself is always an exact match
        for r in exact:
            assert index.item_type[r] == t
            for attr, value_id in task.fields["attributes"].items():
                c = index.attributes.index(attr)
                values = index.lexicon.attributes[attr]
                assert values[index.item_attr[r, c]].id == value_id


def test_requests_are_shopper_language(world):
    """Identity queries rarely equal the oracle: the request is not already in catalog terms."""
    same = sum(t.request == world.oracle(t) for t in world.tasks.tasks)
    assert same < 0.05 * len(world.tasks)


def test_bad_arguments():
    with pytest.raises(ValueError, match="n_items"):
        build_world(n_items=10)
    with pytest.raises(ValueError, match="ood_departments"):
        build_world(n_items=1000, n_tasks=100, ood_departments=0)
