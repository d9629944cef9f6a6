"""The on-disk index cache: keys, atomic entries, damage detection, locking, memory mapping, CLI."""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import cache_fakes
import numpy as np
import pytest
from cache_fakes import FakeRetriever, catalog, is_mapped

from recgym import cache
from recgym.cache import IndexCacheWarning, build_index, cache_key
from recgym.cli import main

HERE = Path(__file__).resolve().parent


def entry_of(directory, retriever, cat):
    return Path(directory) / f"{retriever.name}-{cache_key(retriever, cat)}"


def build(directory, cat=None, **kwargs):
    fake = FakeRetriever(**kwargs)
    status = build_index(fake, cat or catalog(), directory)
    return fake, status


def test_build_then_load_from_memory_mapped_files(tmp_path):
    cold, status = build(tmp_path)
    assert status == "built" and cold.n_index_calls == 1
    warm, status = build(tmp_path)
    assert status == "loaded" and warm.n_index_calls == 0
    assert is_mapped(warm.vectors) and not warm.vectors.flags.writeable
    reference = FakeRetriever()
    reference.index(catalog())
    for r in (cold, warm):  # the builder switched to the mapped copy too
        assert is_mapped(r.vectors)
        queries = ["a e i", "word word"]
        for got, want in zip(r.search(queries, 5), reference.search(queries, 5)):
            assert np.array_equal(got, want)


def test_entry_layout_and_meta(tmp_path):
    fake, _ = build(tmp_path)
    entry = entry_of(tmp_path, fake, catalog())
    assert sorted(p.name for p in entry.iterdir()) == ["meta.json", "vectors.npy"]
    meta = json.loads((entry / "meta.json").read_text())
    assert meta["format"] == cache.FORMAT_VERSION and meta["retriever"] == "fake"
    assert meta["config"] == fake.config() and meta["catalog"] == catalog().content_hash()
    assert meta["arrays"]["vectors"]["bytes"] == (entry / "vectors.npy").stat().st_size
    assert not list(tmp_path.glob("**/*.tmp-*"))


def test_key_depends_on_catalog_content_and_config():
    fake = FakeRetriever()
    key = cache_key(fake, catalog())
    assert key == cache_key(FakeRetriever(), catalog()) and len(key) == 32
    assert key != cache_key(fake, catalog(salt="x"))
    assert key != cache_key(FakeRetriever(scale=2.0), catalog())


def test_key_depends_on_the_retriever_source(tmp_path, monkeypatch):
    # An index laid out by older code must not be read by newer code, even when nobody bumped the
    # retriever's version: the same class from two copies of its module that differ by one
    # line gets two keys.
    source = Path(cache_fakes.__file__).read_text()
    keys = []
    for i, text in enumerate([source, source + "\n# changed\n"]):
        path = tmp_path / f"fakes_{i}.py"
        path.write_text(text)
        spec = importlib.util.spec_from_file_location(f"fakes_{i}", path)
        module = importlib.util.module_from_spec(spec)
        monkeypatch.setitem(sys.modules, f"fakes_{i}", module)
        spec.loader.exec_module(module)
        keys.append(cache_key(module.FakeRetriever(), catalog()))
    assert keys[0] != keys[1]
    assert keys[0] == cache_key(FakeRetriever(), catalog())  # same source, same key


def test_cache_dir_default_and_env_var(monkeypatch, tmp_path):
    monkeypatch.delenv("RECGYM_CACHE_DIR")
    assert cache.cache_dir() == Path.home() / ".cache" / "recgym"
    monkeypatch.setenv("RECGYM_CACHE_DIR", str(tmp_path / "x"))
    assert cache.cache_dir() == tmp_path / "x"
    _, status = build(None)
    assert status == "built" and len(cache.list_entries()) == 1


def damage_truncate(entry):
    path = entry / "vectors.npy"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def damage_flip(entry):
    path = entry / "vectors.npy"
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF
    path.write_bytes(bytes(data))


def damage_version(entry):
    meta = json.loads((entry / "meta.json").read_text())
    meta["format"] = 0
    (entry / "meta.json").write_text(json.dumps(meta))


def damage_meta(entry):
    (entry / "meta.json").write_text('{"format": 1, "arr')


def damage_interrupted(entry):
    (entry / "meta.json").unlink()


def damage_shape(entry):
    np.save(entry / "vectors.npy", np.zeros((4, 2), dtype=np.float32))
    meta = json.loads((entry / "meta.json").read_text())
    meta["arrays"]["vectors"].update(bytes=(entry / "vectors.npy").stat().st_size,
                                     blake2b=cache._checksum(entry / "vectors.npy"))
    (entry / "meta.json").write_text(json.dumps(meta))


@pytest.mark.parametrize("damage, reason", [
    (damage_truncate, "truncated"),
    (damage_flip, "checksum"),
    (damage_version, "cache format 0"),
    (damage_meta, "unreadable meta.json"),
    (damage_interrupted, "incomplete"),
    (damage_shape, "does not fit this retriever"),
])
def test_damaged_entry_warns_once_and_is_rebuilt(tmp_path, damage, reason):
    fake, _ = build(tmp_path)
    damage(entry_of(tmp_path, fake, catalog()))
    with pytest.warns(IndexCacheWarning) as record:
        rebuilt, status = build(tmp_path)
    assert status == "built" and rebuilt.n_index_calls == 1
    assert len(record) == 1 and reason in str(record[0].message)
    assert "\n" not in str(record[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again, status = build(tmp_path)
    assert status == "loaded" and np.array_equal(again.vectors, rebuilt.vectors)


def test_cache_folder_that_cannot_be_created_warns_and_builds_in_memory(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.warns(IndexCacheWarning, match="building the index in memory") as record:
        fake, status = build(blocker / "cache")
    assert status == "memory" and fake.n_index_calls == 1 and len(record) == 1
    assert fake.search(["a"], 3)[0].shape == (1, 3)


@pytest.fixture
def read_only(tmp_path):
    """A folder nobody may write to: chmod for a normal user, chattr +i for root."""
    path = tmp_path / "ro"
    path.mkdir()

    def lock():
        if os.geteuid() != 0:
            path.chmod(0o555)
        elif shutil.which("chattr") is None or subprocess.run(
                ["chattr", "+i", str(path)], capture_output=True).returncode != 0:
            pytest.skip("cannot make a read-only folder as root here (no chattr +i)")

    yield path, lock
    if os.geteuid() == 0:
        subprocess.run(["chattr", "-i", str(path)], capture_output=True)
    path.chmod(0o755)


def test_cache_folder_without_write_permission(read_only):
    path, lock = read_only
    lock()
    with pytest.warns(IndexCacheWarning, match="building the index in memory"):
        fake, status = build(path)
    assert status == "memory" and fake.n_index_calls == 1


def test_read_only_folder_still_serves_its_entries(read_only):
    path, lock = read_only
    build(path)
    lock()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fake, status = build(path)
    assert status == "loaded" and fake.n_index_calls == 0


def test_two_processes_build_one_entry_once(tmp_path):
    log = tmp_path / "builds.log"
    env = dict(os.environ, FAKE_INDEX_LOG=str(log), PYTHONPATH=str(HERE))
    procs = [subprocess.Popen([sys.executable, str(HERE / "cache_fakes.py"), str(tmp_path / "c")],
                              env=env, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    statuses = sorted(p.communicate(timeout=120)[0].strip() for p in procs)
    assert statuses == ["built", "loaded"]
    assert len(log.read_text().split()) == 1
    assert build(tmp_path / "c")[1] == "loaded"


def test_composite_retrievers_are_cached_part_by_part(tmp_path):
    class Composite:
        name = "composite"

        def __init__(self):
            self.parts = (FakeRetriever(), FakeRetriever(scale=2.0))

        def config(self):
            return {"name": self.name}

    assert build_index(Composite(), catalog(), tmp_path) == "built+built"
    assert build_index(Composite(), catalog(), tmp_path) == "loaded+loaded"
    assert build_index(FakeRetriever(scale=2.0), catalog(), tmp_path) == "loaded"


def test_retriever_without_the_protocol_is_indexed_in_memory(tmp_path):
    class Plain(FakeRetriever):
        index_state = None
        load_index_state = None

    plain = Plain()
    assert build_index(plain, catalog(), tmp_path) == "memory"
    assert plain.n_index_calls == 1 and not list(tmp_path.iterdir())


def test_cli_cache_info_and_clear(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("RECGYM_CACHE_DIR", str(tmp_path))
    (tmp_path / "notes.txt").write_text("not ours")
    assert main(["cache", "info"]) == 0
    assert "no entries" in capsys.readouterr().out
    build(None)
    build(None, catalog(salt="b"))
    assert main(["cache", "info"]) == 0
    out = capsys.readouterr().out
    assert str(tmp_path) in out and out.count("| fake | 50 |") == 2 and "2 entries" in out
    assert main(["cache", "clear"]) == 0
    assert "removed 2" in capsys.readouterr().out
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]
