"""recgym.datasets.beir on BEIR folders written by the tests."""

import json

import pytest
from dataset_fixtures import BEIR_CORPUS, write_beir

from recgym.datasets import DataFormatError, DataWarning, MissingDataError
from recgym.datasets.beir import load


def test_loads_items_requests_and_graded_judgments(tmp_path):
    world = load(write_beir(tmp_path / "scifact"))
    assert world.name == "beir" and world.oracle is None and len(world.catalog) == 6
    assert world.tasks.sizes() == {"test": 3, "train": 3}
    # BEIR's flat BM25 document: title + " " + text; no title -> the text alone.
    texts = world.catalog.texts()
    assert texts[0] == ("Aspirin and heart attacks Low dose aspirin reduces the risk of "
                        "myocardial infarction.")
    assert texts[2] == "Statins lower LDL cholesterol levels."
    q2 = world.tasks[world.tasks.row("q2")]
    assert q2.request == "vitamin d bone health" and q2.split == "test"
    assert dict(q2.judgments) == {"d2": 2.0, "d4": 1.0}
    assert "title + text" in world.description and "scifact" in world.description


def test_a_folder_with_only_some_splits_and_split_selection(tmp_path):
    world = load(write_beir(tmp_path / "nfcorpus", splits=("test",)))
    assert world.tasks.split_names == ["test"]
    world = load(write_beir(tmp_path / "both"), splits=["train"])
    assert world.tasks.split_names == ["train"]
    with pytest.raises(ValueError, match=r"unknown BEIR split 'dev'.*splits: test, train"):
        load(tmp_path / "both", splits=["dev"])


def test_gzipped_files_load_the_same(tmp_path):
    plain = load(write_beir(tmp_path / "plain"))
    gz = load(write_beir(tmp_path / "gz", gz=True))
    assert plain.catalog.texts() == gz.catalog.texts()
    assert [t.request for t in plain.tasks] == [t.request for t in gz.tasks]


def test_query_judged_in_two_splits_gets_one_task_per_split(tmp_path):
    folder = write_beir(tmp_path / "d")
    (folder / "qrels" / "dev.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq6\td6\t1\n")
    world = load(folder)
    ids = {t.id for t in world.tasks}
    assert {"dev/q1", "test/q1", "dev/q6", "train/q6", "q2"} <= ids and "q1" not in ids


def test_bad_input_is_named_counted_or_resolved(tmp_path):
    folder = write_beir(tmp_path / "d")
    corpus = [*BEIR_CORPUS, {"_id": "d7"}, {"_id": "d1", "title": "duplicate", "text": "x"}]
    (folder / "corpus.jsonl").write_text("".join(json.dumps(r) + "\n" for r in corpus))
    with open(folder / "qrels" / "test.tsv", "a") as fh:
        fh.write("q1\tmissing-doc\t1\nq9\td1\t1\nq3\td6\t-1\n")
    with pytest.warns(DataWarning) as caught:
        world = load(folder)
    report = world.hidden.counts()
    assert report == {"duplicate_item": 1, "unknown_request": 1, "unknown_item": 1,
                      "empty_text": 1}
    message = str(caught[0].message)
    assert "'missing-doc'" in message and "'q9'" in message and "'d7'" in message
    assert world.catalog.titles[0] == "Aspirin and heart attacks"  # first d1 kept
    assert dict(world.tasks[world.tasks.row("q3")].judgments) == {"d3": 1.0, "d6": 0.0}
    assert "Load report" in world.description


def test_malformed_files_name_file_line_and_column(tmp_path):
    folder = write_beir(tmp_path / "d")
    with open(folder / "corpus.jsonl", "a") as fh:
        fh.write('{"_id": "d9", "text": "unterminated\n')
    with pytest.raises(DataFormatError, match=r"corpus.jsonl, line 7: not valid JSON"):
        load(folder)
    with pytest.warns(DataWarning, match="1 malformed lines skipped"):
        assert len(load(folder, on_bad_line="skip").catalog) == 6
    folder = write_beir(tmp_path / "e")
    (folder / "qrels" / "test.tsv").write_text("query-id\tdoc-id\tscore\nq1\td1\t1\n")
    with pytest.raises(DataFormatError, match=r"test.tsv, line 1, column 'corpus-id': missing"):
        load(folder)
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\thigh\n")
    with pytest.raises(DataFormatError, match=r"line 2, column 'score': expected a number"):
        load(folder)
    (folder / "queries.jsonl").write_bytes('{"_id": "q1", "text": "caf\xe9"}\n'.encode("latin-1"))
    with pytest.raises(DataFormatError, match=r"queries.jsonl, line 1: .*encoding='latin-1'"):
        load(folder)


def test_missing_data_says_what_is_expected_and_where(tmp_path):
    with pytest.raises(MissingDataError, match=r"corpus.jsonl, queries.jsonl and "
                                               r"qrels/<split>.tsv.*github.com/beir-cellar/beir"):
        load()
    (tmp_path / "corpus.jsonl").write_text("")
    with pytest.raises(MissingDataError, match=r"no qrels/<split>.tsv"):
        load(tmp_path)
    write_beir(tmp_path)
    (tmp_path / "queries.jsonl").unlink()
    with pytest.raises(MissingDataError, match=r"'queries.jsonl' \(optionally .gz\) not found"):
        load(tmp_path)
