"""MovieLens: next-movie tasks from users' rating histories.

Formats (detected from the files present, or named with ``format=``):

* ``csv``: ml-latest-small, ml-latest, ml-32m, ml-25m, ml-20m: ``movies.csv`` (movieId, title,
  genres), ``ratings.csv`` (userId, movieId, rating, timestamp), optional ``tags.csv`` (userId,
  movieId, tag, timestamp); UTF-8 with a header.
* ``dat``: ml-1m, ml-10m: ``movies.dat`` (MovieID::Title::Genres), ``ratings.dat``
  (UserID::MovieID::Rating::Timestamp), optional ``tags.dat`` (ml-10m); ``::``-separated, no header.
* ``100k``: ml-100k: ``u.item`` (``|``-separated: id, title, release date, video release date,
  IMDb URL, 19 genre flags), ``u.data`` (tab-separated user, item, rating, timestamp), optional
  ``u.genre``.

The ``dat`` and ``100k`` files are latin-1 (ml-10m's are UTF-8): their default encoding ``"auto"``
decodes each line as UTF-8 and falls back to latin-1.

Field choices:

* items = movies; title without its trailing ``(year)``; indexed text = title, ``year`` (from the
  title, or from ml-100k's release date), ``genres`` (``", "``-joined; "(no genres listed)" is
  empty), ``tags`` (the movie's ``max_tags`` most frequent user tags, case-folded, where a tags file
  exists). Display title (in requests) = ``"Title (year)"``. Category = first genre; popularity =
  number of ratings.
* histories = each user's ratings in timestamp order (ties in file order), optionally only those
  ``>= min_rating``; requests render the newest ``max_history`` with their ratings
  (:func:`recgym.history.render_history`); the judged item is the next movie (gain 1).
* splits: ``scheme="by_user"`` (default) assigns users to ``train`` / ``val`` / ``test``
  (0.8 / 0.1 / 0.1) by :func:`recgym.catalog.assign_splits`; ``scheme="last_out"`` gives every
  user a test, val and train task (:mod:`recgym.history`).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from recgym.catalog import Catalog, choice_error
from recgym.datasets._common import (
    LoadReport,
    MissingDataError,
    find_file,
    first_rows,
    make_world,
    read_numeric,
    read_table,
    require_data_dir,
)
from recgym.history import (
    DEFAULT_FRACTIONS,
    group_histories,
    last_item_query,
    next_item_tasks,
)
from recgym.worlds import World

__all__ = ["FORMATS", "PUBLISHED", "load", "split_year"]

FORMATS = ("csv", "dat", "100k")
PUBLISHED = ("https://grouplens.org/datasets/movielens/ (e.g. ml-latest-small.zip, ml-25m.zip, "
             "ml-1m.zip)")
_EXPECTED = ("movies.csv + ratings.csv (ml-latest-small, ml-25m, ...), movies.dat + ratings.dat "
             "(ml-1m, ml-10m) or u.item + u.data (ml-100k)")
_FILES = {"csv": ("movies.csv", "ratings.csv"), "dat": ("movies.dat", "ratings.dat"),
          "100k": ("u.item", "u.data")}
_GENRES_100K = ("unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
                "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
                "Romance", "Sci-Fi", "Thriller", "War", "Western")
_YEAR = re.compile(r"^(.*?)\s*\((\d{4})(?:\s*[-–]\s*\d{0,4})?\)\s*$")
_RATING_COLUMNS = ("userId", "movieId", "rating", "timestamp")


def split_year(title: str) -> tuple[str, str]:
    """``"Toy Story (1995)"`` -> ``("Toy Story", "1995")``; ``("Babylon 5", "")`` without a year."""
    match = _YEAR.match(title)
    return (match.group(1), match.group(2)) if match else (title.strip(), "")


def load(
    data_dir: str | Path | None = None, *, format: str | None = None, max_history: int = 20,
    scheme: str = "by_user", fractions: Mapping[str, float] = DEFAULT_FRACTIONS, seed: int = 0,
    min_rating: float | None = None, min_history: int = 1, show_ratings: bool = True,
    max_tags: int = 10, encoding: str | None = None, on_bad_line: str = "error",
) -> World:
    """Load a MovieLens folder (ml-latest-small, ml-25m, ml-1m, ml-100k, ...).

    Args:
        data_dir: the unzipped folder.
        format: ``"csv"``, ``"dat"`` or ``"100k"``; detected from the files by default.
        max_history: a request shows the user's newest ``max_history`` ratings.
        scheme: ``"by_user"`` or ``"last_out"`` (:mod:`recgym.history`).
        fractions, seed: the split of users under ``"by_user"``.
        min_rating: keep only ratings ``>= min_rating`` in histories (default: all).
        min_history: judge an item only when at least this many ratings precede it.
        show_ratings: render the rating after each title.
        max_tags: how many of a movie's user tags join its text (0: none).
        encoding: text encoding (default ``"utf-8"`` for csv, ``"auto"`` for dat and 100k).
        on_bad_line: ``"error"`` or ``"skip"`` malformed lines.
    """
    folder = require_data_dir(data_dir, "MovieLens", _EXPECTED, PUBLISHED)
    fmt = format or _detect(folder)
    if fmt not in FORMATS:
        raise choice_error("MovieLens format", fmt, FORMATS)
    enc = encoding or ("utf-8" if fmt == "csv" else "auto")
    report = LoadReport("movielens")
    opts = {"encoding": enc, "on_bad_line": on_bad_line, "report": report}
    movies_file, ratings_file = (find_file(folder, f, dataset="MovieLens") for f in _FILES[fmt])
    ids, titles, years, genres = _MOVIE_READERS[fmt](folder, movies_file, opts)

    keep = first_rows(ids, report, "movies")
    ids, titles, years, genres = ids[keep], [titles[i] for i in keep], [years[i] for i in keep], [
        genres[i] for i in keep]
    ratings = _read_ratings(fmt, ratings_file, opts)
    tags = _read_tags(folder, fmt, ids, max_tags, opts) if max_tags > 0 else None

    rows = _rows_of(ids, ratings["movieId"])
    unknown = rows < 0
    report.add("unknown_item", "ratings of movies absent from the movies file (dropped)",
               int(unknown.sum()),
               dict.fromkeys(f"{m:g}" for m in ratings["movieId"][unknown][:50]))
    popularity = np.bincount(rows[~unknown], minlength=len(ids)).astype(np.float64)
    fields = {"year": years, "genres": [", ".join(g) for g in genres]}
    if tags is not None:
        fields["tags"] = tags
    catalog = Catalog(ids=ids, titles=titles, fields=fields,
                      categories=np.array([g[0] if g else "" for g in genres], dtype=str),
                      popularity=popularity)

    keep_rating = ~unknown
    if min_rating is not None:
        keep_rating &= ratings["rating"] >= min_rating
    users = ratings["userId"][keep_rating].astype(np.int64)
    histories = group_histories(users, rows[keep_rating], ratings["timestamp"][keep_rating],
                                ratings["rating"][keep_rating])
    display = [f"{t} ({y})" if y else t for t, y in zip(titles, years, strict=True)]
    tasks = next_item_tasks(histories, catalog.ids, display, scheme=scheme, max_history=max_history,
                            min_history=min_history, fractions=fractions, seed=seed,
                            show_ratings=show_ratings)
    description = (
        f"MovieLens ({fmt} files in {folder.name!r}): each request is a user's rating history "
        f"(newest {max_history}, newest last{', with ratings' * show_ratings}); the judged "
        f"item is the next movie they rated (gain 1); movies indexed as title, year, genres"
        f"{', tags' if tags is not None else ''}; {scheme} split."
    )
    return make_world("movielens", catalog, tasks, description, report, last_item_query(catalog))


def _detect(folder: Path) -> str:
    for fmt, (movies, ratings) in _FILES.items():
        found = [find_file(folder, name, dataset="MovieLens", required=False)
                 for name in (movies, ratings)]
        if all(found):
            return fmt
    raise MissingDataError(f"MovieLens: no known file pair in {folder}; expected {_EXPECTED} "
                           f"(published at {PUBLISHED})")


def _rows_of(ids: np.ndarray, movie_ids: np.ndarray) -> np.ndarray:
    """Catalog row of each rated movie id (a float from the ratings file), -1 when unknown."""
    if not len(ids):
        return np.full(len(movie_ids), -1, dtype=np.int64)
    keys = np.array([int(i) if i.isdigit() else -1 for i in ids.tolist()], dtype=np.int64)
    order = np.argsort(keys, kind="stable")
    wanted = np.where(np.mod(movie_ids, 1) == 0, movie_ids, -2).astype(np.int64)
    pos = np.minimum(np.searchsorted(keys[order], wanted), len(keys) - 1)
    return np.where((keys[order][pos] == wanted) & (wanted >= 0), order[pos], -1)


def _movies_csv(folder: Path, path: Path, opts: dict):
    table = read_table(path, delimiter=",", required=("movieId", "title"), optional=("genres",),
                       **opts)
    return _movies(table["movieId"], table["title"], table["genres"] if "genres" in table
                   else [""] * len(table))


def _movies_dat(folder: Path, path: Path, opts: dict):
    table = read_table(path, delimiter="::", names=("movieId", "title", "genres"),
                       required=("movieId", "title", "genres"), quoting=False, **opts)
    return _movies(table["movieId"], table["title"], table["genres"])


def _movies_100k(folder: Path, path: Path, opts: dict):
    genre_file = find_file(folder, "u.genre", dataset="MovieLens", required=False)
    names = list(_GENRES_100K)
    if genre_file is not None:
        genre_table = read_table(genre_file, delimiter="|", names=("genre", "index"),
                                 required=("genre", "index"), quoting=False, **opts)
        names = [g for _, g in sorted(zip(genre_table.numbers("index"), genre_table["genre"],
                                          strict=True))]
    columns = ("movieId", "title", "release", "video_release", "url", *(f"g{i}" for i in
                                                                         range(len(names))))
    table = read_table(path, delimiter="|", names=columns, required=columns, quoting=False, **opts)
    flags = zip(*(table[f"g{i}"] for i in range(len(names))), strict=True)
    genres = ["|".join(n for n, f in zip(names, row, strict=True) if f.strip() == "1")
              for row in flags]
    ids, titles, years, genre_lists = _movies(table["movieId"], table["title"], genres)
    for i, release in enumerate(table["release"]):
        if not years[i] and release.strip()[-4:].isdigit():
            years[i] = release.strip()[-4:]
    return ids, titles, years, genre_lists


def _movies(ids: list[str], raw_titles: list[str], raw_genres: list[str]):
    titles, years = [], []
    for raw in raw_titles:
        title, year = split_year(raw)
        titles.append(title)
        years.append(year)
    genres = [[g for g in raw.split("|") if g and g != "(no genres listed)"] for raw in raw_genres]
    return np.array([i.strip() for i in ids], dtype=str), titles, years, genres


_MOVIE_READERS = {"csv": _movies_csv, "dat": _movies_dat, "100k": _movies_100k}


def _read_ratings(fmt: str, path: Path, opts: dict) -> dict[str, np.ndarray]:
    if fmt == "csv":
        return read_numeric(path, delimiter=",", required=_RATING_COLUMNS, **opts)
    delimiter = "::" if fmt == "dat" else "\t"
    return read_numeric(path, delimiter=delimiter, names=_RATING_COLUMNS, required=_RATING_COLUMNS,
                        **opts)


def _read_tags(folder: Path, fmt: str, ids: np.ndarray, max_tags: int, opts: dict
               ) -> list[str] | None:
    """Each movie's ``max_tags`` most frequent tags (case-folded, ties by first use), or None."""
    if fmt == "100k":
        return None
    name = "tags.csv" if fmt == "csv" else "tags.dat"
    path = find_file(folder, name, dataset="MovieLens", required=False)
    if path is None:
        return None
    if fmt == "csv":
        table = read_table(path, delimiter=",", required=("movieId", "tag"), **opts)
    else:
        table = read_table(path, delimiter="::", names=("userId", "movieId", "tag", "timestamp"),
                           required=("movieId", "tag"), quoting=False, **opts)
    counts: dict[str, Counter[str]] = {}
    for movie, tag in zip(table["movieId"], table["tag"], strict=True):
        tag = " ".join(tag.casefold().split())
        if tag:
            counts.setdefault(movie.strip(), Counter())[tag] += 1
    known = set(ids.tolist())
    unknown = [m for m in counts if m not in known]
    opts["report"].add("unknown_tagged", "tagged movies absent from the movies file (tags ignored)",
                       len(unknown), unknown)
    return [", ".join(t for t, _ in counts[m].most_common(max_tags)) if m in counts else ""
            for m in ids.tolist()]
