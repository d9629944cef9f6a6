"""The loaders' shared plumbing: files, encodings, gzip, bad lines, reports, judgments."""

import gzip
import warnings

import numpy as np
import pytest

from recgym.catalog import Catalog, Task
from recgym.datasets import DataFormatError, DataWarning, LoadReport, MissingDataError
from recgym.datasets._common import (
    find_file,
    group_judgments,
    iter_jsonl,
    iter_lines,
    make_world,
    read_numeric,
    read_table,
    require_data_dir,
)


def test_require_data_dir_says_what_and_where(tmp_path):
    with pytest.raises(MissingDataError, match=r"needs data_dir.*corpus.jsonl.*published at "
                                               r"https://example.org.*world_kwargs"):
        require_data_dir(None, "BEIR", "corpus.jsonl", "https://example.org")
    with pytest.raises(MissingDataError, match="is not a folder"):
        require_data_dir(tmp_path / "nope", "BEIR", "corpus.jsonl", "https://example.org")
    assert require_data_dir(str(tmp_path), "BEIR", "x", "y") == tmp_path


def test_find_file_takes_gz_and_suggests_close_names(tmp_path):
    (tmp_path / "corpus.jsonl.gz").write_bytes(gzip.compress(b"{}\n"))
    (tmp_path / "querys.jsonl").write_text("")
    assert find_file(tmp_path, "corpus.jsonl", dataset="BEIR") == tmp_path / "corpus.jsonl.gz"
    assert find_file(tmp_path, "corpus.jsonl", dataset="BEIR", compressed=False,
                     required=False) is None
    with pytest.raises(MissingDataError, match=r"did you mean 'querys.jsonl'"):
        find_file(tmp_path, "queries.jsonl", dataset="BEIR")


def test_gzip_is_detected_by_content_not_name(tmp_path):
    path = tmp_path / "ratings.csv"  # gzipped under a plain name
    path.write_bytes(gzip.compress(b"a,b\n1,2\n"))
    assert list(iter_lines(path)) == [(1, "a,b"), (2, "1,2")]
    truncated = tmp_path / "t.csv.gz"
    truncated.write_bytes(gzip.compress(b"a,b\n" * 1000)[:40])
    with pytest.raises(DataFormatError, match="corrupt or truncated gzip"):
        list(iter_lines(truncated))


def test_encodings(tmp_path):
    path = tmp_path / "movies.dat"
    path.write_bytes("1::Toy Story\n2::Misérables, Les\n".encode("latin-1"))
    with pytest.raises(DataFormatError, match=r"movies.dat, line 2: byte b'\\xe9'.*not valid "
                                              r"utf-8; pass encoding='latin-1'"):
        list(iter_lines(path))
    assert list(iter_lines(path, "latin-1"))[1][1] == "2::Misérables, Les"
    assert list(iter_lines(path, "auto"))[1][1] == "2::Misérables, Les"
    bom = tmp_path / "bom.csv"
    bom.write_bytes("\ufeffa,b\r\n1,2\r\n".encode())
    assert list(iter_lines(bom)) == [(1, "a,b"), (2, "1,2")]
    with pytest.raises(ValueError, match="unknown encoding"):
        list(iter_lines(bom, "klingon"))
    with pytest.raises(ValueError, match=r"not ASCII-compatible.*convert"):
        list(iter_lines(bom, "utf-16"))


def test_read_table_names_file_line_and_column(tmp_path):
    path = tmp_path / "label.csv"
    path.write_text("id\tquery_id\tprodcut_id\tlabel\n0\t1\t2\tExact\n")
    with pytest.raises(DataFormatError, match=r"label.csv, line 1, column 'product_id': missing "
                                              r"column.*did you mean 'prodcut_id'"):
        read_table(path, required=("query_id", "product_id"))
    path.write_text("id\tquery_id\tproduct_id\tlabel\n0\t1\t2\tExact\n1\t1\tExact\n2\t3\t4\tPartial\n")
    with pytest.raises(DataFormatError, match=r"line 3: expected 4 fields .*got 3"):
        read_table(path, required=("query_id", "product_id"))
    report = LoadReport("t")
    table = read_table(path, required=("product_id",), optional=("label", "absent"),
                       on_bad_line="skip", report=report)
    assert table["product_id"] == ["2", "4"] and table.lines == [2, 4] and "absent" not in table
    assert report.counts() == {"bad_line": 1} and "label.csv:3" in report.summary()
    with pytest.raises(ValueError, match="Did you mean 'skip'"):
        read_table(path, on_bad_line="skp")


def test_read_table_quoting_and_multiline_fields(tmp_path):
    path = tmp_path / "movies.csv"
    path.write_text('movieId,title\n1,"Matrix, The (1999)"\n2,"two\nlines"\n3,plain "quote"\n')
    table = read_table(path, delimiter=",", required=("movieId", "title"))
    assert table["title"] == ["Matrix, The (1999)", "two\nlines", 'plain "quote"']
    assert table.lines == [2, 3, 5]
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DataFormatError, match="empty; expected a header"):
        read_table(empty, required=("a",))


def test_read_numeric_fast_and_slow_paths(tmp_path):
    path = tmp_path / "ratings.dat"
    path.write_text("1::10::4.5::100\n2::20::3::200\n")
    cols = ("user", "item", "rating", "time")
    out = read_numeric(path, delimiter="::", names=cols, required=cols)
    assert out["rating"].tolist() == [4.5, 3.0] and out["time"].dtype == np.float64
    path.write_text("1::10::4.5::100\n2::20::x::200\n3::30::1::300\n")
    with pytest.raises(DataFormatError, match=r"line 2, column 'rating': expected a number"):
        read_numeric(path, delimiter="::", names=cols, required=cols)
    report = LoadReport("t")
    out = read_numeric(path, delimiter="::", names=cols, required=cols, on_bad_line="skip",
                       report=report)
    assert out["user"].tolist() == [1.0, 3.0] and report.counts() == {"bad_line": 1}
    header = tmp_path / "ratings.csv"
    header.write_text("userId,movieId\n")
    assert read_numeric(header, delimiter=",", required=("userId",))["userId"].shape == (0,)


def test_iter_jsonl_bad_lines(tmp_path):
    path = tmp_path / "corpus.jsonl"
    path.write_text('{"_id": "a"}\n\n{"_id": "b"\n["x"]\n{"title": "no id"}\n')
    with pytest.raises(DataFormatError, match=r"corpus.jsonl, line 3: not valid JSON"):
        list(iter_jsonl(path, required=("_id",)))
    report = LoadReport("t")
    rows = list(iter_jsonl(path, required=("_id",), on_bad_line="skip", report=report))
    assert rows == [(1, {"_id": "a"})] and report.counts() == {"bad_line": 3}
    path.write_text('{"title": "no id"}\n')
    with pytest.raises(DataFormatError, match=r"line 1, column '_id': missing field"):
        list(iter_jsonl(path, required=("_id",)))


def test_group_judgments_counts_unknown_items_and_keeps_the_highest_duplicate():
    catalog = Catalog(ids=["a", "b", "c"], titles=["A", "B", "C"])
    report = LoadReport("t")
    grouped = group_judgments(["q2", "q1", "q1", "q1", "q2"], ["a", "b", "zz", "b", "c"],
                              np.array([1.0, 0.1, 1.0, 0.5, 0.0]), catalog, report)
    assert list(grouped) == ["q2", "q1"]  # order of first judgment
    assert dict(grouped["q1"]) == {"b": 0.5} and dict(grouped["q2"]) == {"a": 1.0, "c": 0.0}
    assert report.counts() == {"unknown_item": 1, "duplicate_judgment": 1}
    assert "'zz'" in report.summary() and "'q1/b'" in report.summary()


def test_make_world_reports_items_without_text_once():
    catalog = Catalog(ids=["a", "b"], titles=["A", " "], fields={"text": ["x", ""]})
    report = LoadReport("toy")
    report.add("unknown_item", "judgments naming items not in the catalog (dropped)", 2, ["z"])
    with pytest.warns(DataWarning, match=r"toy: 2 judgments.*; 1 items without any text"):
        world = make_world("toy", catalog, [Task("t", "a", {"a": 1.0}, "test")], "Toy.", report)
    assert world.hidden is report and world.oracle is None
    assert world.description.startswith("Toy. 2 items; requests: 1 test.\nLoad report:")
    with pytest.raises(DataFormatError, match="no request has a usable judgment"):
        make_world("toy", catalog, [], "Toy.", LoadReport("toy"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        make_world("toy", Catalog(ids=["a"], titles=["A"]), [Task("t", "a", {"a": 1.0}, "test")],
                   "Toy.", LoadReport("toy"))
