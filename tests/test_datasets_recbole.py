"""recgym.datasets.recbole on atomic files written by the tests."""

import pytest
from dataset_fixtures import interactions, movies, write_recbole

from recgym.datasets import DataFormatError, MissingDataError
from recgym.datasets.recbole import load

pytestmark = pytest.mark.filterwarnings("ignore::recgym.datasets.DataWarning")

ITEM_HEADER = ("item_id:token\ttitle:token_seq\tsales_rank:float\tcategories:token_seq\t"
               "brand:token\n")


def test_whole_inter_file_with_typed_headers(tmp_path):
    world = load(write_recbole(tmp_path), dataset="ml-tiny")
    cat = world.catalog
    _, title, genres = movies()[0]
    assert cat.titles[0] == title.split(" (")[0]  # movie_title:token_seq
    assert list(cat.fields) == ["release_year", "genre"]
    assert cat.texts()[0] == f"{title.split(' (')[0]} {title[-5:-1]} {genres.replace('|', ' ')}"
    assert world.tasks.sizes() == {"test": 30, "train": 30, "val": 30}
    seq = [str(i) for _, i, _, _ in sorted((r for r in interactions() if r[0] == 1),
                                           key=lambda r: r[3])]
    test = world.tasks[world.tasks.row("1/test")]
    assert list(test.judgments) == [seq[-1]] and test.fields["history"] == seq[:-1]
    assert "rated" not in test.request
    assert "rated" in load(tmp_path, dataset="ml-tiny", show_ratings=True).tasks[0].request
    by_user = load(tmp_path, dataset="ml-tiny", scheme="by_user")
    assert len(by_user.tasks) == 30


def test_dataset_name_is_found_or_inferred(tmp_path):
    write_recbole(tmp_path)
    assert len(load(tmp_path / "ml-tiny").catalog) == 40  # the only .item in that folder
    with pytest.raises(MissingDataError, match=r"pass dataset= to pick one.*found none"):
        load(tmp_path)
    with pytest.raises(MissingDataError, match=r"other.item not found"):
        load(tmp_path, dataset="other")


def write_split_files(folder, with_lists):
    folder.mkdir()
    (folder / "amz.item").write_text(ITEM_HEADER + "".join(
        f"i{k}\tproduct {k} \"quoted\"\t{k}.0\tBeauty Skin\tAcme\n" for k in range(8)))
    if with_lists:
        header = "user_id:token\titem_id_list:token_seq\titem_id:token\n"
        (folder / "amz.train.inter").write_text(header + "u1\ti0\ti1\nu1\ti0 i1\ti2\n")
        (folder / "amz.test.inter").write_text(header + "u1\ti0 i1 i2\ti3\nu2\ti4 i99 i5\ti6\n"
                                               "u3\ti1\tgone\n")
    else:
        header = "user_id:token\titem_id:token\ttimestamp:float\n"
        (folder / "amz.train.inter").write_text(header + "u1\ti1\t20\nu1\ti0\t10\nu1\ti2\t30\n"
                                                "u2\ti4\t5\nu2\ti5\t6\n")
        (folder / "amz.valid.inter").write_text(header + "u1\ti3\t40\nu1\ti6\t50\n")
        (folder / "amz.test.inter").write_text(header + "u1\ti7\t1\nu2\ti6\t7\n")
    return folder


def test_benchmark_split_files_with_item_lists(tmp_path):
    world = load(write_split_files(tmp_path / "amz", with_lists=True))
    assert world.tasks.sizes() == {"test": 2, "train": 2}  # no valid file: no val split
    first = world.tasks[world.tasks.row("train/2")]
    assert first.request == 'product 0 "quoted"' and dict(first.judgments) == {"i1": 1.0}
    u2 = world.tasks[world.tasks.row("test/3")]
    assert u2.fields["history"] == ["i4", "i5"] and dict(u2.judgments) == {"i6": 1.0}
    assert world.hidden.counts()["unknown_item"] == 2  # i99 in a history, "gone" as a target
    assert world.catalog.texts()[0] == 'product 0 "quoted" Beauty Skin Acme'  # no float field


def test_split_files_of_plain_interactions_continue_each_other(tmp_path):
    world = load(write_split_files(tmp_path / "amz", with_lists=False))
    tasks = {t.id: t for t in world.tasks}
    assert dict(tasks["u1/train"].judgments) == {"i2": 1.0}  # last training item
    assert tasks["u1/train"].fields["history"] == ["i0", "i1"]
    assert dict(tasks["u1/val"].judgments) == {"i3": 1.0}  # first validation item
    # the test file comes after the earlier files whatever its timestamps say
    assert dict(tasks["u1/test"].judgments) == {"i7": 1.0}
    assert tasks["u1/test"].fields["history"] == ["i0", "i1", "i2", "i3", "i6"]
    assert tasks["u2/test"].fields["history"] == ["i4", "i5"] and "u2/val" not in tasks
    assert world.catalog.popularity.tolist() == [1, 1, 1, 1, 1, 1, 2, 1]


def test_bad_headers_and_rows(tmp_path):
    folder = write_split_files(tmp_path / "amz", with_lists=False)
    (folder / "amz.item").write_text("item_id\ttitle\ni0\tx\n")
    with pytest.raises(DataFormatError, match=r"amz.item, line 1, column 'item_id': RecBole "
                                              r"headers name each column 'field:type'"):
        load(folder)
    (folder / "amz.item").write_text("id:token\ttitle:token_seq\ni0\tx\n")
    with pytest.raises(DataFormatError, match=r"column 'item_id:token': missing column"):
        load(folder)
    (folder / "amz.item").write_text(ITEM_HEADER + "i0\tx\t1\n")
    with pytest.raises(DataFormatError, match=r"amz.item, line 2: expected 5 fields"):
        load(folder)
    rows = "".join(f"i{k}\tx{k}\t1\ty\tz\n" for k in range(8))
    (folder / "amz.item").write_text(ITEM_HEADER + rows + "i0\tdup\t2\ty\tz\n")
    world = load(folder)
    assert world.catalog.titles[0] == "x0" and world.hidden.counts() == {"duplicate_item": 1}
    with pytest.raises(DataFormatError, match="no such field"):
        load(folder, text_fields=["colour"])
    assert list(load(folder, text_fields=["brand"]).catalog.fields) == ["brand"]
    (folder / "amz.train.inter").write_text("user_id:token\ttimestamp:float\nu1\t1\n")
    with pytest.raises(DataFormatError, match=r"amz.train.inter, line 1, column 'item_id:token'"):
        load(folder)
    with pytest.raises(MissingDataError, match=r"recbole.io"):
        load()
