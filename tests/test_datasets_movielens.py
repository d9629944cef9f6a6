"""recgym.datasets.movielens on csv / dat / 100k files written by the tests and on
ml-latest-small."""

import csv
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from dataset_fixtures import interactions, movies, write_movielens_csv

from recgym.catalog import assign_splits
from recgym.datasets import DataFormatError, MissingDataError
from recgym.datasets.movielens import load, split_year

pytestmark = pytest.mark.filterwarnings("ignore::recgym.datasets.DataWarning")
ML_SMALL = Path(__file__).parents[2] / "shared" / "data" / "movielens-small"


def test_split_year():
    assert split_year("Toy Story (1995)") == ("Toy Story", "1995")
    assert split_year("Babylon 5") == ("Babylon 5", "")
    assert split_year("Fawlty Towers (1975-1979)") == ("Fawlty Towers", "1975")
    assert split_year("Matrix, The (1999) ") == ("Matrix, The", "1999")


def test_csv_items_text_and_popularity(tmp_path):
    world = load(write_movielens_csv(tmp_path))
    cat = world.catalog
    assert world.name == "movielens" and len(cat) == 40 and world.oracle is None
    _, title, genres = movies()[0]
    assert cat.ids[0] == "1" and cat.titles[0] == split_year(title)[0]
    assert cat.fields["year"][0] == split_year(title)[1]
    assert cat.fields["genres"][0] == genres.replace("|", ", ")
    assert cat.fields["tags"][:3] == ["mind-bending, twist", "funny, dark", ""]
    assert cat.categories[0] == genres.split("|")[0]
    counts = Counter(str(i) for _, i, _, _ in interactions())
    assert cat.popularity.tolist() == [float(counts[i]) for i in cat.ids.tolist()]


def test_csv_histories_are_chronological_leave_last_out(tmp_path):
    world = load(write_movielens_csv(tmp_path), max_history=3)
    rows = [r for r in interactions() if r[0] == 1]
    rows.sort(key=lambda r: r[3])  # the file is in movie order, the history in time order
    task = world.tasks[world.tasks.row("1")]
    assert list(task.judgments) == [str(rows[-1][1])]
    assert task.fields["history"] == [str(r[1]) for r in rows[-4:-1]]
    titles = {str(m): t for m, t, _ in movies()}
    assert task.request.splitlines() == [f"{titles[str(r[1])]} (rated {r[2]:g})"
                                         for r in rows[-4:-1]]
    users = [str(u) for u in range(1, 31)]
    expected = dict(zip(users, assign_splits(users, {"train": 0.8, "val": 0.1, "test": 0.1}, 0),
                        strict=True))
    assert all(t.split == expected[t.id] for t in world.tasks)


def test_options(tmp_path):
    folder = write_movielens_csv(tmp_path)
    last_out = load(folder, scheme="last_out", show_ratings=False)
    assert world_sizes(last_out) == {"test": 30, "val": 30, "train": 30}
    assert "rated" not in last_out.tasks[0].request
    liked = load(folder, min_rating=4.0, min_history=2)
    for task in liked.tasks:
        assert task.fields["n_history"] >= 2
        shown = [float(line.rsplit("rated ", 1)[1][:-1]) for line in task.request.splitlines()]
        assert min(shown) >= 4
    assert "tags" not in load(folder, max_tags=0).catalog.fields
    with pytest.raises(ValueError, match="unknown MovieLens format 'xml'"):
        load(folder, format="xml")


def world_sizes(world):
    return dict(world.tasks.sizes())


def test_dat_format_latin1(tmp_path):
    lines = [f"{m}::{t}::{g}" for m, t, g in movies()]
    lines[1] = "2::Misérables, Les (1995)::Drama|Musical"
    (tmp_path / "movies.dat").write_bytes(("\n".join(lines) + "\n").encode("latin-1"))
    (tmp_path / "ratings.dat").write_text("".join(
        f"{u}::{i}::{int(r + 0.5)}::{t}\n" for u, i, r, t in interactions()))
    (tmp_path / "users.dat").write_text("1::F::1::10::48067\n")
    world = load(tmp_path)
    assert world.catalog.titles[1] == "Misérables, Les"
    assert world.catalog.fields["year"][1] == "1995"
    assert world.catalog.fields["genres"][1] == "Drama, Musical"
    assert "tags" not in world.catalog.fields and len(world.tasks) == 30
    with pytest.raises(DataFormatError, match="encoding='latin-1'"):
        load(tmp_path, encoding="utf-8")


def test_100k_format(tmp_path):
    genres = ["unknown", "Action", "Comedy"]
    (tmp_path / "u.genre").write_text("".join(f"{g}|{i}\n" for i, g in enumerate(genres)) + "\n")
    (tmp_path / "u.item").write_bytes(
        "1|Toy Story (1995)|01-Jan-1995||http://x|0|0|1\n"
        "2|GoldenEye (1995)|01-Jan-1995||http://y|0|1|0\n"
        "3|Café au lait|01-Jan-1994||http://z|1|0|1\n".encode("latin-1"))
    (tmp_path / "u.data").write_text("1\t1\t5\t300\n1\t2\t3\t100\n1\t3\t4\t200\n2\t3\t4\t50\n"
                                     "2\t1\t2\t60\n")
    world = load(tmp_path, fractions={"train": 1.0})
    cat = world.catalog
    assert cat.titles == ["Toy Story", "GoldenEye", "Café au lait"]
    assert cat.fields["year"] == ["1995", "1995", "1994"]  # release date when the title has none
    assert cat.fields["genres"] == ["Comedy", "Action", "unknown, Comedy"]
    task = world.tasks[world.tasks.row("1")]
    assert task.request == "GoldenEye (1995) (rated 3)\nCafé au lait (1994) (rated 4)"
    assert dict(task.judgments) == {"1": 1.0}


def test_bad_input(tmp_path):
    folder = write_movielens_csv(tmp_path)
    with open(folder / "ratings.csv", "a") as fh:
        fh.write("1,999,4.0,5\n")
    with open(folder / "movies.csv", "a") as fh:
        fh.write("1,Duplicate (2000),Drama\n41,Silent Film (1920),\n")
    with open(folder / "tags.csv", "a") as fh:
        fh.write("1,555,orphan,9\n")
    world = load(folder)
    assert world.hidden.counts() == {"duplicate_item": 1, "unknown_item": 1, "unknown_tagged": 1}
    assert world.catalog.titles[0] != "Duplicate" and len(world.catalog) == 41
    assert world.catalog.fields["genres"][40] == ""
    with open(folder / "ratings.csv", "a") as fh:
        fh.write("2,3,four,6\n")
    with pytest.raises(DataFormatError, match=r"ratings.csv, line \d+, column 'rating': expected "
                                              r"a number, got 'four'"):
        load(folder)
    assert len(load(folder, on_bad_line="skip").tasks) == 30
    (folder / "ratings.csv").write_text("user,movieId,rating,timestamp\n1,1,4,5\n")
    with pytest.raises(DataFormatError, match=r"ratings.csv, line 1, column 'userId': missing"):
        load(folder)
    with pytest.raises(MissingDataError, match=r"movies.csv \+ ratings.csv.*grouplens.org"):
        load()
    (tmp_path / "empty").mkdir()
    with pytest.raises(MissingDataError, match="no known file pair"):
        load(tmp_path / "empty")


@pytest.mark.skipif(not ML_SMALL.exists(), reason="shared/data/movielens-small absent")
def test_ml_latest_small():
    world = load(ML_SMALL)
    assert len(world.catalog) == 9742 and len(world.tasks) == 610  # every user rated >= 20
    assert world.tasks.sizes() == {"test": 61, "train": 481, "val": 68}
    toy = world.catalog.rows(["1"])[0]
    assert world.catalog.titles[toy] == "Toy Story" and "pixar" in world.catalog.fields["tags"][toy]
    assert world.catalog.popularity[toy] == 215  # ratings of Toy Story in ml-latest-small
    with open(ML_SMALL / "ratings.csv") as fh:
        rows = [r for r in csv.DictReader(fh) if r["userId"] == "1"]
    last = max(rows, key=lambda r: (int(r["timestamp"]), -rows.index(r)))
    task = world.tasks[world.tasks.row("1")]
    assert list(task.judgments) == [last["movieId"]] and task.fields["n_history"] == len(rows) - 1
    assert len(task.request.splitlines()) == 20
    assert np.all([t.request.count("\n") <= 19 for t in world.tasks])
    last_shown = world.catalog.rows(task.fields["history"][-1:])[0]
    assert world.identity(task) == world.catalog.titles[last_shown]
