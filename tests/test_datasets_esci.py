"""recgym.datasets.esci on parquet files in the official schema, written by the tests."""

import json

import numpy as np
import pytest
from dataset_fixtures import ESCI_EXAMPLES, ESCI_PRODUCTS, SHARED, write_esci

from recgym.datasets import DataFormatError, DataWarning, MissingDataError
from recgym.datasets.esci import load

pytestmark = pytest.mark.filterwarnings("ignore::recgym.datasets.DataWarning")


def test_locale_small_version_official_split_and_gains(tmp_path):
    world = load(write_esci(tmp_path))
    assert world.name == "esci" and world.oracle is None
    assert world.catalog.ids.tolist() == ["B01", "B02", "B03", "B04", "B05", "B06"]  # us only
    tasks = {t.id: t for t in world.tasks}
    assert set(tasks) == {"1", "2", "5"}  # 3: large version only; 4: nothing relevant; 6: es
    assert dict(tasks["1"].judgments) == {"B01": 1.0, "B02": 0.1, "B03": 0.01, "B05": 0.0}
    assert tasks["1"].request == "travel mug" and tasks["1"].split == "train"
    assert tasks["2"].split == "test" and dict(tasks["5"].judgments) == {"B03": 1.0}
    assert world.hidden.counts() == {"unknown_item": 1, "no_relevant": 1, "empty_text": 1}


def test_product_text_fields_in_order_without_html(tmp_path):
    world = load(write_esci(tmp_path))
    text = world.catalog.texts()[0]
    assert text.split() == ["Stainless", "steel", "travel", "mug", "16", "oz", "Contigo", "Silver",
                            "Vacuum", "insulated", "Leak", "proof", "lid", "Keeps", "coffee",
                            "hot", "for", "6", "hours"]
    assert world.catalog.texts()[1] == "Ceramic coffee mug Bodum White Dishwasher safe"


def test_options(tmp_path):
    folder = write_esci(tmp_path)
    large = load(folder, small_version=False)
    assert "3" in {t.id for t in large.tasks}
    es = load(folder, locale="es")
    assert es.catalog.ids.tolist() == ["B01"] and [t.request for t in es.tasks] == ["taza de viaje"]
    judged = load(folder, catalog="judged")
    assert judged.catalog.ids.tolist() == ["B01", "B02", "B03", "B04", "B05"]
    graded = load(folder, gains={"S": 0.5, "C": 0})
    assert dict(graded.tasks[graded.tasks.row("1")].judgments)["B02"] == 0.5
    with pytest.raises(ValueError, match="unknown ESCI locale 'uk'"):
        load(folder, locale="uk")
    with pytest.raises(ValueError, match="unknown ESCI label 'X'"):
        load(folder, gains={"X": 1})
    with pytest.raises(ValueError, match="gain of 'E' must be a finite number >= 0"):
        load(folder, gains={"E": -1})
    with pytest.raises(ValueError, match="unknown ESCI catalog mode"):
        load(folder, catalog="some")


def test_duplicate_products_keep_the_first_row(tmp_path):
    products = [*ESCI_PRODUCTS, ("B02", "us", "Other mug", None, None, None, None)]
    world = load(write_esci(tmp_path, products=products))
    assert world.catalog.titles[1] == "Ceramic coffee mug"
    assert world.hidden.counts()["duplicate_item"] == 1


def test_bad_files_are_named(tmp_path):
    with pytest.raises(DataFormatError, match=r"examples.parquet, column 'esci_label': missing "
                                              r"column"):
        load(write_esci(tmp_path / "a", drop_column="esci_label"))
    examples = [*ESCI_EXAMPLES, (9, "q", "B01", "us", "X", 1, "train")]
    with pytest.raises(DataFormatError, match=r"label outside E, S, C, I, e.g. 'X' \(query_id 9\)"):
        load(write_esci(tmp_path / "b", examples=examples))
    folder = write_esci(tmp_path / "c")
    (folder / "shopping_queries_dataset_products.parquet").write_text("not parquet")
    with pytest.raises(DataFormatError, match="not a readable parquet file"):
        load(folder)
    with pytest.raises(MissingDataError, match=r"shopping_queries_dataset_examples.parquet and "
                                               r".*github.com/amazon-science/esci-data"):
        load()
    (folder / "shopping_queries_dataset_products.parquet").unlink()
    with pytest.raises(MissingDataError, match=r"'shopping_queries_dataset_products.parquet' not "
                                               "found"):
        load(folder)


ESCI_SAMPLE = SHARED / "esci-judgments-sample" / "esci_us_judgments.json"


@pytest.mark.skipif(not ESCI_SAMPLE.exists(), reason="shared/data/esci-judgments-sample absent")
def test_realistic_judgments_from_the_opensearch_esci_sample(tmp_path):
    """Real ESCI queries and judgments (no product text is published with them): examples rebuilt
    from the sample's 100/10/1/0 ratings, products for every other judged ASIN."""
    sample = json.loads(ESCI_SAMPLE.read_text())["judgmentRatings"]
    label = {100: "E", 10: "S", 1: "C", 0: "I"}
    examples, asins = [], []
    for qid, entry in enumerate(sample):
        for r in entry["ratings"]:
            split = "test" if qid % 5 == 0 else "train"
            examples.append((qid, entry["query"], r["docId"], "us",
                             label[round(float(r["rating"]))], 1, split))
            asins.append(r["docId"])
    asins = sorted(set(asins))
    present = set(asins[::2])
    products = [(a, "us", f"product {a}", None, None, None, None) for a in asins[::2]]
    with pytest.warns(DataWarning, match="judgments naming items not in the catalog"):
        world = load(write_esci(tmp_path, products=products, examples=examples))
    missing = sum(e[2] not in present for e in examples)
    assert world.hidden.counts()["unknown_item"] == missing
    kept = [e for e in examples if e[2] in present]
    answerable = {e[0] for e in kept if e[4] != "I"}
    assert len(world.tasks) == len(answerable)
    gains = np.concatenate([t.judgments.gains for t in world.tasks])
    expected = [{"E": 1.0, "S": 0.1, "C": 0.01, "I": 0.0}[e[4]] for e in kept if e[0] in answerable]
    assert sorted(gains.tolist()) == sorted(expected)
    assert set(world.tasks.split_names) == {"train", "test"}
