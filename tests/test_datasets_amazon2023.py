"""recgym.datasets.amazon2023 on JSON-lines files in the 2023 release's format, written by tests."""

import gzip
import json

import pytest
from dataset_fixtures import interactions, write_amazon2023, write_jsonl

from recgym.datasets import DataFormatError, MissingDataError
from recgym.datasets.amazon2023 import load

pytestmark = pytest.mark.filterwarnings("ignore::recgym.datasets.DataWarning")


def test_items_histories_and_last_out_splits(tmp_path):
    world = load(write_amazon2023(tmp_path))  # gzipped, category inferred
    cat = world.catalog
    assert world.name == "amazon2023" and len(cat) == 40 and cat.ids[0] == "P001"
    assert list(cat.fields) == ["features", "description"]
    assert cat.texts()[0].startswith(cat.titles[0] + " sulfate free ")
    assert cat.categories[0] == "All Beauty"
    assert world.tasks.sizes() == {"test": 30, "train": 30, "val": 30}
    seq = [f"P{i:03d}" for _, i, _, _ in sorted((r for r in interactions() if r[0] == 1),
                                                key=lambda r: r[3])]
    tasks = {t.id: t for t in world.tasks}
    assert list(tasks["U001/test"].judgments) == [seq[-1]]
    assert list(tasks["U001/val"].judgments) == [seq[-2]]
    assert list(tasks["U001/train"].judgments) == [seq[-3]]
    assert tasks["U001/train"].fields["history"] == seq[:-3]
    titles = dict(zip(cat.ids.tolist(), cat.titles, strict=True))
    assert tasks["U001/test"].request.splitlines() == [titles[i] for i in seq[:-1]]


def test_options_and_explicit_category(tmp_path):
    write_amazon2023(tmp_path, category="Toys_and_Games", gz=False)
    write_amazon2023(tmp_path, category="All_Beauty")
    with pytest.raises(MissingDataError, match=r"pass category=.*All_Beauty, Toys_and_Games"):
        load(tmp_path)
    world = load(tmp_path, category="Toys_and_Games", scheme="by_user", show_ratings=True,
                 max_history=2)
    assert len(world.tasks) == 30 and "(rated " in world.tasks[0].request
    assert all(t.request.count("\n") <= 1 for t in world.tasks)


def test_bad_input(tmp_path):
    folder = write_amazon2023(tmp_path, gz=False)
    meta = folder / "meta_All_Beauty.jsonl"
    with open(meta, "a") as fh:
        fh.write(json.dumps({"parent_asin": "P001", "title": "duplicate"}) + "\n")
        fh.write(json.dumps({"parent_asin": "P900", "title": None, "features": [],
                             "description": []}) + "\n")
    with open(folder / "All_Beauty.jsonl", "a") as fh:
        fh.write(json.dumps({"user_id": "U001", "parent_asin": "NOPE", "timestamp": 1}) + "\n")
    world = load(folder)
    assert world.hidden.counts() == {"duplicate_item": 1, "unknown_item": 1, "empty_text": 1}
    assert world.catalog.titles[0] != "duplicate"
    reviews = folder / "All_Beauty.jsonl"
    good = reviews.read_text()
    reviews.write_text(good + '{"user_id": "U001", "parent_asin": "P001", "timestamp": "now"}\n')
    with pytest.raises(DataFormatError, match=r"All_Beauty.jsonl, line 201, column 'timestamp': "
                                              r"expected a number, got 'now'"):
        load(folder)
    reviews.write_text(good + '{"user_id": "U002", "timestamp": 5}\n')
    with pytest.raises(DataFormatError, match=r"line 201, column 'parent_asin': missing field"):
        load(folder)
    bad_time = '{"user_id": "U1", "parent_asin": "P1", "timestamp": "x"}\n'
    reviews.write_text(good + '{"broken\n' + bad_time)
    with pytest.raises(DataFormatError, match=r"line 201: not valid JSON"):
        load(folder)
    skipped = load(folder, on_bad_line="skip")
    assert skipped.hidden.counts()["bad_line"] == 2
    write_jsonl(meta, [], gz=False)
    meta.write_bytes(gzip.compress(b'{"parent_asin": "P1"}\n')[:25])
    with pytest.raises(DataFormatError, match="corrupt or truncated gzip"):
        load(folder)
    meta.unlink()
    with pytest.raises(MissingDataError, match="amazon-reviews-2023"):
        load(folder)
    with pytest.raises(MissingDataError, match=r"<Category>.jsonl and meta_<Category>.jsonl"):
        load()
