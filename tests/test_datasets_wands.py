"""recgym.datasets.wands on tab-separated files in WANDS' format, written by the tests."""

import shutil

import pytest
from dataset_fixtures import SHARED, WANDS_HEADER, WANDS_PRODUCTS, write_wands

from recgym.catalog import assign_splits
from recgym.datasets import DataFormatError, MissingDataError
from recgym.datasets.wands import load

pytestmark = pytest.mark.filterwarnings("ignore::recgym.datasets.DataWarning")


def test_products_queries_and_gains(tmp_path):
    world = load(write_wands(tmp_path))
    assert world.name == "wands" and len(world.catalog) == 5
    cat = world.catalog
    assert cat.texts()[1] == ("all-clad 7 qt . slow cooker Slow Cookers this slow cooker is a "
                              "kitchen workhorse capacityquarts:7; programmable:yes")
    assert cat.categories.tolist()[:2] == ["Beds", "Slow Cookers"]
    assert cat.popularity.tolist() == [15.0, 100.0, 0.0, 7.0, 3.0]  # empty rating_count -> 0
    tasks = {t.id: t for t in world.tasks}
    assert dict(tasks["1"].judgments) == {"3": 2.0, "0": 1.0}
    assert tasks["1"].request == "smart coffee table"
    assert tasks["1"].fields == {"query_class": "Coffee Tables"}
    assert "5" not in tasks and world.hidden.counts() == {"no_relevant": 1}  # only Irrelevant
    assert "2" not in tasks  # no label at all


def test_queries_split_by_id_reproducibly(tmp_path):
    folder = write_wands(tmp_path)
    world = load(folder, seed=3)
    ids = [t.id for t in world.tasks]
    assert [t.split for t in world.tasks] == assign_splits(
        ids, {"train": 0.6, "val": 0.2, "test": 0.2}, 3).tolist()
    assert [t.split for t in load(folder, seed=3).tasks] == [t.split for t in world.tasks]
    half = load(folder, fractions={"train": 0.5, "test": 0.5})
    assert set(half.tasks.split_names) <= {"train", "test"}


def test_gain_override(tmp_path):
    world = load(write_wands(tmp_path), gains={"Partial": 0.5})
    assert dict(world.tasks[world.tasks.row("1")].judgments) == {"3": 2.0, "0": 0.5}
    with pytest.raises(ValueError, match=r"unknown WANDS label 'Partal'.*Did you mean 'Partial'"):
        load(tmp_path, gains={"Partal": 1})


def test_bad_input(tmp_path):
    folder = write_wands(tmp_path)
    with open(folder / "label.csv", "a") as fh:
        fh.write("12\t0\t999\tExact\n13\t77\t1\tExact\n14\t1\t3\tPartial\n")
    world = load(folder)
    counts = world.hidden.counts()
    assert counts["unknown_item"] == 1 and counts["unknown_request"] == 1
    assert counts["duplicate_judgment"] == 1  # (1, 3) judged Exact and Partial: Exact kept
    assert dict(world.tasks[world.tasks.row("1")].judgments)["3"] == 2.0
    with open(folder / "label.csv", "a") as fh:
        fh.write("15\t1\t3\tExcellent\n")
    with pytest.raises(DataFormatError, match=r"label.csv, line 17, column 'label': unknown label "
                                              r"'Excellent'"):
        load(folder)
    folder = write_wands(tmp_path / "b")
    (folder / "product.csv").write_text(WANDS_HEADER.replace("product_name", "name") + "\n")
    with pytest.raises(DataFormatError, match=r"product.csv, line 1, column 'product_name'"):
        load(folder)
    rows = [*WANDS_PRODUCTS, "5\tbroken row"]
    (folder / "product.csv").write_text("\n".join([WANDS_HEADER, *rows]) + "\n")
    with pytest.raises(DataFormatError, match=r"product.csv, line 7: expected 9 fields"):
        load(folder)
    assert len(load(folder, on_bad_line="skip").catalog) == 5
    cp1252 = "\n".join([WANDS_HEADER, *WANDS_PRODUCTS]).encode("cp1252")
    (folder / "product.csv").write_bytes(cp1252)
    with pytest.raises(DataFormatError, match=r"product.csv, line 6: .*encoding='latin-1'"):
        load(folder)
    assert load(folder, encoding="cp1252").catalog.fields["class"][4] == "Accent Pillows"
    with pytest.raises(MissingDataError, match=r"product.csv, query.csv and label.csv.*"
                                               r"github.com/wayfair/WANDS"):
        load()


def test_duplicate_products_keep_the_first(tmp_path):
    folder = write_wands(tmp_path)
    rows = [*WANDS_PRODUCTS, "1\tother cooker\tSlow Cookers\t\t\t\t\t\t"]
    (folder / "product.csv").write_text("\n".join([WANDS_HEADER, *rows]) + "\n")
    world = load(folder)
    assert world.catalog.titles[1] == "all-clad 7 qt . slow cooker" and len(world.catalog) == 5
    assert world.hidden.counts()["duplicate_item"] == 1


WANDS_QUERIES = SHARED / "wands-queries" / "query.csv"


@pytest.mark.skipif(not WANDS_QUERIES.exists(), reason="shared/data/wands-queries absent")
def test_the_published_query_file_parses(tmp_path):
    """WANDS' published query.csv (480 queries, UTF-8, tab-separated) with fixture products and
    one Exact label per query."""
    folder = write_wands(tmp_path, queries="")
    shutil.copy(WANDS_QUERIES, folder / "query.csv")
    lines = WANDS_QUERIES.read_text(encoding="utf-8").splitlines()[1:]
    (folder / "label.csv").write_text("id\tquery_id\tproduct_id\tlabel\n" + "".join(
        f"{i}\t{line.split(chr(9))[0]}\t{i % 5}\tExact\n" for i, line in enumerate(lines)))
    world = load(folder)
    assert len(world.tasks) == len(lines) == 480
    salon = world.tasks[world.tasks.row("0")]
    assert salon.request == "salon chair" and salon.fields == {"query_class": "Massage Chairs"}
    assert world.tasks[world.tasks.row("2")].fields["query_class"] == "Kids Wall Décor"
    sizes = world.tasks.sizes()
    assert sizes["train"] > sizes["val"] > 50 and sizes["test"] > 50
