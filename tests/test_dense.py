"""Dense retrieval with the real packaged model (all-MiniLM-L6-v2) on small catalogs."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from cache_fakes import is_mapped
from conftest import DENSE_WORLDS, needs_dense

from recgym.cache import IndexCacheWarning, build_index, cache_key
from recgym.catalog import Catalog
from recgym.worlds import load_world

pytestmark = needs_dense

TEXTS = [
    "stainless steel insulated travel mug 16 oz",
    "wireless optical mouse, black",
    "garden hose 50 ft with spray nozzle",
    "stainless steel insulated travel mug 16 oz",  # a duplicate: ties with row 0
    "cotton crew socks, 6 pairs",
    "ceramic coffee mug",
    "usb-c charging cable 2 m",
    "puffer jacket, navy, women's medium",
]
QUERIES = ["coffee cup for the car", "computer mouse", "socks", "warm winter coat", "hose",
           "cable to charge my phone", "mug", "a gift for my dad"]


def dense(**kwargs):
    from recgym.retrievers.dense import Dense

    return Dense(progress=False, **kwargs)


@pytest.fixture(scope="module")
def indexed():
    d = dense()
    d.index(TEXTS)
    return d


@pytest.fixture(scope="module")
def shop():
    return load_world("shop", **DENSE_WORLDS["shop"])


def test_scores_are_cosine_similarities_of_the_model(indexed):
    from sentence_transformers import SentenceTransformer

    peer = SentenceTransformer(str(indexed.model_path), device="cpu")
    items = peer.encode(TEXTS, normalize_embeddings=True)
    queries = peer.encode(QUERIES, normalize_embeddings=True)
    expected = queries @ items.T
    rows, scores = indexed.search(QUERIES, len(TEXTS))
    assert rows.dtype == np.int64 and scores.dtype == np.float32
    assert np.allclose(scores, np.take_along_axis(expected, rows, 1), atol=1e-5)
    assert np.all(np.diff(scores, axis=1) <= 0)
    assert rows[QUERIES.index("computer mouse"), 0] == 1
    assert rows[QUERIES.index("socks"), 0] == 4


def test_ties_break_by_the_lower_row_and_padding(indexed):
    rows, scores = indexed.search(["insulated mug", "", "   "], 12)
    assert rows.shape == (3, 12)
    first = rows[0].tolist()
    assert first.index(0) + 1 == first.index(3)
    assert scores[0, first.index(0)] == scores[0, first.index(3)]
    assert (rows[0, 8:] == -1).all() and np.isneginf(scores[0, 8:]).all()
    assert (rows[1:] == -1).all() and np.isneginf(scores[1:]).all()
    # The tie straddles the cut at k: the lower row is kept, whichever faiss found first.
    rows, _ = indexed.search(["insulated mug"], first.index(0) + 1)
    assert rows[0, -1] == 0


def test_a_query_ranks_the_same_alone_or_in_any_batch(indexed):
    uncached = dense(query_cache=0)
    uncached.load_index_state(indexed.index_state())
    batch = uncached.search(QUERIES * 5, 5)
    for i, q in enumerate(QUERIES):
        alone = uncached.search([q], 5)
        assert np.array_equal(alone[0][0], batch[0][i]) and np.array_equal(alone[1][0], batch[1][i])
        assert np.array_equal(alone[1][0], batch[1][i + len(QUERIES)])


def test_repeated_queries_are_encoded_once(indexed, monkeypatch):
    cached = dense(query_cache=3)
    cached.load_index_state(indexed.index_state())
    encoded = []
    encode = cached.encode
    monkeypatch.setattr(cached, "encode", lambda texts: encoded.extend(texts) or encode(texts))
    first = cached.search(["mug", "socks", "mug", "hose"], 4)
    assert encoded == ["mug", "socks", "hose"]
    again = cached.search(["hose", "mug", "cable"], 4)
    assert encoded[3:] == ["cable"] and list(cached._queries) == ["hose", "mug", "cable"]
    assert np.array_equal(again[0][1], first[0][0]) and np.array_equal(again[1][0], first[1][3])
    assert np.array_equal(indexed.search(["cable"], 4)[0], again[0][2:])


def test_thread_count_and_batch_size_do_not_change_embeddings(indexed):
    one = dense(threads=1, batch_size=3).encode(QUERIES)
    try:
        assert np.array_equal(one, indexed.encode(QUERIES))
    finally:
        indexed.encode([])  # restore this process's thread count


def test_hnsw_index_finds_the_flat_ranking_on_a_small_catalog(indexed):
    hnsw = dense(index_type="hnsw", hnsw_m=8)
    hnsw.index(TEXTS)
    assert np.array_equal(hnsw.search(QUERIES, 5)[0], indexed.search(QUERIES, 5)[0])
    again = dense(index_type="hnsw", hnsw_m=8)
    again.load_index_state(hnsw.index_state())
    assert np.array_equal(again.search(QUERIES, 5)[0], hnsw.search(QUERIES, 5)[0])
    assert hnsw.config()["hnsw_m"] == 8 and "hnsw_m" not in indexed.config()


def test_cold_build_and_warm_cache_give_the_same_results(tmp_path, indexed):
    catalog = Catalog(ids=[f"i{i}" for i in range(len(TEXTS))], titles=TEXTS)
    cold, warm = dense(), dense()
    assert build_index(cold, catalog, tmp_path) == "built"
    assert build_index(warm, catalog, tmp_path) == "loaded"
    assert is_mapped(warm._keep[0])  # faiss reads the mapped file in place
    expected = indexed.search(QUERIES, 6)
    for r in (cold, warm):
        got = r.search(QUERIES, 6)
        assert np.array_equal(got[0], expected[0]) and np.array_equal(got[1], expected[1])


def test_env_shares_the_cached_index(shop):
    import gymnasium as gym

    env = gym.make("RecQuery-Dense-v0", world_kwargs=DENSE_WORLDS["shop"]).unwrapped
    assert build_index(dense(), shop.catalog) == "loaded"  # the env wrote it
    rows = env.tasks.split("test")[:16].tolist()
    queries = [env.tasks[r].request for r in rows]
    rewards, infos = env.score(rows, queries)
    assert np.all(np.isfinite(rewards)) and rewards.mean() > 0.2
    assert infos[0]["retrieved"] and all(isinstance(i, str) for i in infos[0]["retrieved"])


def test_model_identity_is_part_of_the_key(tmp_path, indexed):
    copy = tmp_path / "model"
    for src in indexed.model_path.rglob("*"):
        dst = copy / src.relative_to(indexed.model_path)
        if src.is_dir():
            dst.mkdir(parents=True, exist_ok=True)
        else:
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.symlink_to(src)
    catalog = Catalog(ids=["a"], titles=["mug"])
    same = dense(model=copy)
    assert same.model_hash == indexed.model_hash
    config = json.loads((indexed.model_path / "config.json").read_text())
    (copy / "config.json").unlink()
    (copy / "config.json").write_text(json.dumps({**config, "note": "fine-tuned"}))
    changed = dense(model=copy)
    assert changed.model_hash != indexed.model_hash
    assert cache_key(changed, catalog) != cache_key(same, catalog)


# ---------------------------------------------------------------- bad input


def test_model_loads_quietly_and_keeps_the_progress_bar_setting(capfd):
    from transformers.utils import logging as hf_logging

    from recgym.retrievers.dense import _load_encoder, default_model_path

    for enabled in (True, False):
        (hf_logging.enable_progress_bar if enabled else hf_logging.disable_progress_bar)()
        _load_encoder.__wrapped__(str(default_model_path()), "float32")  # uncached: a real load
        assert "Loading weights" not in capfd.readouterr().err
        assert hf_logging.is_progress_bar_enabled() == enabled
    hf_logging.enable_progress_bar()


def test_missing_model_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"does not exist.*model="):
        dense(model=tmp_path / "nope")


def test_folder_that_is_not_a_model(tmp_path):
    with pytest.raises(ValueError, match="not a sentence-transformers model directory"):
        dense(model=tmp_path)
    (tmp_path / "config.json").write_text("{}")
    broken = dense(model=tmp_path)
    with pytest.raises(ValueError, match="could not load a sentence-transformers model"):
        broken.encode(["mug"])


def test_cached_index_of_another_embedding_size_is_rebuilt(tmp_path):
    import faiss

    from recgym.cache import _write

    catalog = Catalog(ids=["a", "b"], titles=["red mug", "blue kettle"])
    d = dense()
    key = cache_key(d, catalog)
    small = faiss.IndexFlatIP(16)
    small.add(np.eye(2, 16, dtype=np.float32))
    _write(tmp_path / f"dense-{key}", {"faiss_index": faiss.serialize_index(small),
                                       "rows": np.arange(2, dtype=np.int64)},
           {"format": 1, "key": key})
    with pytest.warns(IndexCacheWarning, match="16-dimensional vectors but the model"):
        assert build_index(d, catalog, tmp_path) == "built"
    assert d.search(["kettle"], 1)[0].tolist() == [[1]]


def test_load_index_state_rejects_foreign_arrays(indexed):
    with pytest.raises(ValueError, match="faiss_index and rows"):
        dense().load_index_state({"vectors": np.zeros(3)})
    with pytest.raises(ValueError, match="not a readable faiss index"):
        dense().load_index_state({"faiss_index": np.arange(100, dtype=np.uint8),
                                  "rows": np.arange(2, dtype=np.int64)})
    with pytest.raises(ValueError, match="IndexFlatIP"):
        dense(index_type="hnsw").load_index_state(indexed.index_state())


def test_empty_catalog(tmp_path):
    empty = Catalog(ids=[], titles=[])
    d = dense()
    assert build_index(d, empty, tmp_path) == "built"
    rows, scores = d.search(["mug"], 3)
    assert (rows == -1).all() and np.isneginf(scores).all()
    assert build_index(dense(), empty, tmp_path) == "loaded"


def test_items_with_empty_text_are_never_retrieved():
    d = dense()
    with pytest.warns(UserWarning, match="1 of 3 items have empty text"):
        d.index(["red mug", "  ", "blue kettle"])
    rows, _ = d.search(["mug", "anything at all"], 3)
    assert 1 not in rows and (rows[:, 2] == -1).all()


def test_text_that_is_not_valid_unicode(tmp_path):
    catalog = Catalog(ids=["a", "b"], titles=["red mug \ud800", "\udfff blue kettle"])
    d = dense()
    assert build_index(d, catalog, tmp_path) == "built"
    rows, scores = d.search(["kettle \ud83d", "\udc00"], 2)
    assert rows[0, 0] == 1 and np.isfinite(scores).all()


def test_search_errors(indexed):
    with pytest.raises(RuntimeError, match="before index"):
        dense().search(["mug"], 3)
    with pytest.raises(TypeError, match="sequence of query strings"):
        indexed.search("mug", 3)
    with pytest.raises(ValueError, match="k must be >= 1"):
        indexed.search(["mug"], 0)
    with pytest.raises(TypeError, match="texts must be str"):
        indexed.search([b"mug"], 3)


@pytest.mark.parametrize("kwargs, match", [
    ({"index_type": "hnws"}, "Did you mean 'hnsw'"),
    ({"precision": "half"}, "valid dense precisions"),
    ({"hnsw_m": 0}, "hnsw_m must be a positive integer"),
    ({"threads": 0}, "threads must be a positive integer"),
    ({"query_cache": -1}, "query_cache must be an integer >= 0"),
])
def test_invalid_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        dense(**kwargs)


def test_missing_extra_names_it(monkeypatch):
    from recgym.retrievers import make_retriever

    monkeypatch.setitem(sys.modules, "faiss", None)
    for name in ("dense", "hybrid"):
        with pytest.raises(ImportError, match=r"recgym\[dense\].*missing: faiss") as exc:
            make_retriever(name)
        assert "constraints.txt" in str(exc.value)


def test_core_install_does_not_import_torch():
    code = (
        "import sys, gymnasium as gym, recgym, recgym.cache, recgym.retrievers\n"
        "env = gym.make('RecQuery-v0', world_kwargs={'n_items': 300, 'n_tasks': 50})\n"
        "obs, _ = env.reset(seed=0); env.step(obs)\n"
        "heavy = ('torch', 'faiss', 'sentence_transformers')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=dict(os.environ), check=True).stdout
    assert out.strip() == "[]"
