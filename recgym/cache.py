"""The on-disk index cache: each index is built once per catalog and configuration, then mapped.

A retriever that implements :class:`recgym.retrievers.base.IndexState` is cached by
:func:`build_index` (``recgym.env`` indexes every environment's catalog through it):

- **Key**: ``blake2b(catalog.content_hash(), retriever.config(), the source of the retriever's
  module, cache format)``. A retriever's ``config()`` names everything that changes its index
  (the dense retriever includes the model's path and a hash of its files), so a changed catalog,
  setting or model is a different entry. The module's source is part of the key because a
  forgotten version bump would otherwise let new code read an index laid out by older code.
- **Where**: ``$RECGYM_CACHE_DIR`` if set, else ``~/.cache/recgym``. One folder per entry,
  ``<retriever name>-<key>/``, holding one ``.npy`` file per array and ``meta.json`` (format
  version, retriever config, catalog hash, creation time, and each file's size and blake2b
  checksum). ``recgym cache info`` lists the entries, ``recgym cache clear`` removes them.
- **Atomic**: every file is written to a temporary name, flushed, and moved into place with
  ``os.replace``; ``meta.json`` goes last, so a crash leaves no entry that looks complete.
- **Concurrent**: a ``filelock`` per entry is held while it is checked, built or written, so two
  processes that need the same index build it once (the second waits, then loads).
- **Checked**: a missing file, a wrong size (a truncated file), a checksum mismatch (a corrupted
  one), another format version, or arrays the retriever rejects are reported in one
  :class:`IndexCacheWarning` line and the entry is rebuilt.
- **Shared**: arrays are loaded with ``np.load(mmap_mode="r")``; processes that load one entry
  (vector-env workers) share its pages instead of holding a copy each.
- **Unwritable**: if the cache folder cannot be created, locked or written, one warning says so
  and the index is built in memory.

Example::

    from recgym.cache import build_index
    build_index(retriever, catalog)   # "loaded", "built" (and saved) or "memory" (not cacheable)
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import re
import shutil
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from filelock import FileLock

from recgym.catalog import Catalog
from recgym.retrievers.base import IndexState, Retriever

__all__ = [
    "CACHE_DIR_ENV", "FORMAT_VERSION", "CacheEntry", "IndexCacheWarning", "build_index",
    "cache_dir", "cache_key", "clear", "list_entries", "supports_index_state",
]

CACHE_DIR_ENV = "RECGYM_CACHE_DIR"
#: Bumped when the layout of an entry changes; entries of another version are rebuilt.
FORMAT_VERSION = 1
_META = "meta.json"
_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
_ENTRY = re.compile(r"^[A-Za-z0-9_.-]+-[0-9a-f]{32}$")
_CHUNK = 1 << 22


class IndexCacheWarning(UserWarning):
    """An index cache entry was unusable (and rebuilt), or the cache folder is not writable."""


class _Unusable(Exception):
    """An entry that exists but cannot be used; the message says why."""


def cache_dir() -> Path:
    """The cache folder: ``$RECGYM_CACHE_DIR`` if set, else ``~/.cache/recgym``."""
    configured = os.environ.get(CACHE_DIR_ENV)
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "recgym"


def cache_key(retriever: Retriever, catalog: Catalog) -> str:
    """The entry key of ``retriever``'s index of ``catalog`` (32 hex digits)."""
    try:
        config = json.dumps(retriever.config(), sort_keys=True)
    except TypeError as exc:
        raise TypeError(f"{type(retriever).__name__}.config() must be JSON data: {exc}") from None
    payload = f"{FORMAT_VERSION}\x00{catalog.content_hash()}\x00{config}\x00"
    payload += _source_hash(type(retriever))
    return hashlib.blake2b(payload.encode(), digest_size=16).hexdigest()


def _source_hash(cls: type) -> str:
    """A hash of the file that defines ``cls`` (empty if it has none, e.g. typed in a REPL)."""
    try:
        source = Path(inspect.getfile(cls)).read_bytes()
    except (OSError, TypeError):
        return ""
    return hashlib.blake2b(source, digest_size=16).hexdigest()


def supports_index_state(retriever: object) -> bool:
    """Whether the cache can save and load ``retriever``'s index (see ``IndexState``)."""
    return isinstance(retriever, IndexState)


def build_index(
    retriever: Retriever, catalog: Catalog, directory: str | os.PathLike | None = None
) -> str:
    """Index ``catalog`` with ``retriever``, through the on-disk cache when the retriever can be.

    Args:
        retriever: any retriever; one without the ``IndexState`` protocol is indexed in memory,
            a composite (a ``parts`` attribute) part by part.
        catalog: the catalog to index.
        directory: the cache folder (default: :func:`cache_dir`).

    Returns:
        How the index was obtained: ``"loaded"`` (from the cache), ``"built"`` (built and
        saved), or ``"memory"`` (built, not saved); a composite's parts' answers joined by ``+``.
    """
    if not supports_index_state(retriever):
        parts = getattr(retriever, "parts", None)
        if parts is None:
            retriever.index(catalog)
            return "memory"
        return "+".join(build_index(part, catalog, directory) for part in parts)
    root = Path(directory) if directory is not None else cache_dir()
    key = cache_key(retriever, catalog)
    entry = root / f"{_safe_name(retriever.name)}-{key}"
    try:
        root.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(entry) + ".lock")
        lock.acquire()
    except OSError as exc:
        try:  # a read-only cache folder still serves the entries it has
            retriever.load_index_state(_read(entry, key, verify=True))
            return "loaded"
        except (OSError, ValueError, _Unusable):
            pass
        _warn(f"cannot use the cache folder {root} ({_reason(exc)}); building the index in "
              f"memory (set {CACHE_DIR_ENV} to a writable folder)", stacklevel=3)
        retriever.index(catalog)
        return "memory"
    try:
        return _load_or_build(retriever, catalog, entry, key)
    finally:
        lock.release()


def _load_or_build(retriever: Any, catalog: Catalog, entry: Path, key: str) -> str:
    try:
        retriever.load_index_state(_read(entry, key, verify=True))
        return "loaded"
    except FileNotFoundError:
        pass  # no entry yet
    except _Unusable as exc:
        _warn(f"index cache entry {entry} is {exc}; rebuilding it")
    except ValueError as exc:
        _warn(f"index cache entry {entry} does not fit this retriever ({_one_line(exc)}); "
              "rebuilding it")
    retriever.index(catalog)
    meta = {
        "format": FORMAT_VERSION, "key": key, "retriever": retriever.name,
        "config": retriever.config(), "catalog": catalog.content_hash(), "n_items": len(catalog),
        "created": time.time(),
    }
    try:
        _write(entry, retriever.index_state(), meta)
    except OSError as exc:
        _warn(f"cannot write the index cache entry {entry} ({_reason(exc)}); keeping the index "
              "in memory only")
        return "memory"
    # Switch to the memory-mapped copy, so that this process shares it with later ones.
    retriever.load_index_state(_read(entry, key, verify=False))
    return "built"


def _write(entry: Path, arrays: Mapping[str, np.ndarray], meta: dict[str, Any]) -> None:
    entry.mkdir(exist_ok=True)
    (entry / _META).unlink(missing_ok=True)  # the entry is incomplete until meta.json is back
    files: dict[str, dict[str, Any]] = {}
    for name, value in arrays.items():
        if not _NAME.match(name):
            raise ValueError(f"index state array name {name!r} must match {_NAME.pattern}")
        array = np.ascontiguousarray(value)
        if array.dtype.hasobject:
            raise ValueError(f"index state array {name!r} has dtype object; use numeric arrays")
        path = entry / f"{name}.npy"
        _atomic(path, lambda f, a=array: np.save(f, a, allow_pickle=False))
        files[name] = {"bytes": path.stat().st_size, "data_bytes": int(array.nbytes),
                       "blake2b": _checksum(path)}
    for stale in entry.glob("*.npy"):
        if stale.stem not in files:
            stale.unlink()
    meta = {**meta, "arrays": files}
    _atomic(entry / _META, lambda f: f.write(json.dumps(meta, indent=1, sort_keys=True).encode()))


def _atomic(path: Path, write: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _read(entry: Path, key: str, verify: bool) -> dict[str, np.ndarray]:
    """The arrays of an entry, memory-mapped; ``FileNotFoundError`` if there is no entry."""
    if not entry.exists():
        raise FileNotFoundError(entry)
    try:
        meta = json.loads((entry / _META).read_bytes())
    except FileNotFoundError:
        raise _Unusable(f"incomplete (no {_META}: a write was interrupted)") from None
    except (OSError, ValueError) as exc:
        raise _Unusable(f"corrupted (unreadable {_META}: {_one_line(exc)})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_VERSION:
        version = meta.get("format") if isinstance(meta, dict) else None
        raise _Unusable(f"of cache format {version!r}, this recgym reads format {FORMAT_VERSION}")
    if meta.get("key") != key or not isinstance(meta.get("arrays"), dict):
        raise _Unusable(f"corrupted ({_META} does not describe this entry)")
    arrays = {}
    for name, info in meta["arrays"].items():
        path = entry / f"{name}.npy"
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            raise _Unusable(f"incomplete ({path.name} is missing)") from None
        if size != info.get("bytes"):
            raise _Unusable(f"truncated or damaged ({path.name} has {size} bytes, "
                            f"{info.get('bytes')} were written)")
        if verify and _checksum(path) != info.get("blake2b"):
            raise _Unusable(f"corrupted ({path.name} does not match its checksum)")
        try:
            # np.memmap cannot map zero bytes: empty arrays are read.
            array = np.load(path, mmap_mode="r" if info.get("data_bytes") else None,
                            allow_pickle=False)
            # A plain ndarray view of the same mapped pages: slicing an np.memmap subclass costs
            # microseconds of Python per slice, which dominated BM25 search.
            arrays[name] = array.view(np.ndarray) if isinstance(array, np.memmap) else array
        except (OSError, ValueError) as exc:
            raise _Unusable(f"corrupted ({path.name}: {_one_line(exc)})") from None
    return arrays


def _checksum(path: Path) -> str:
    h = hashlib.blake2b(digest_size=16)
    buf = bytearray(_CHUNK)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buf):
            h.update(view[:n])
    return h.hexdigest()


@dataclass(frozen=True)
class CacheEntry:
    """One entry of the cache folder, as ``recgym cache info`` lists it."""

    path: Path
    retriever: str
    n_items: int | None
    n_bytes: int
    created: float
    complete: bool


def list_entries(directory: str | os.PathLike | None = None) -> list[CacheEntry]:
    """The entries of the cache folder, oldest first (incomplete ones included, marked so)."""
    root = Path(directory) if directory is not None else cache_dir()
    if not root.is_dir():
        return []
    out = []
    for path in root.iterdir():
        if not (path.is_dir() and _ENTRY.match(path.name)):
            continue
        files = [p for p in path.iterdir() if p.is_file()]
        try:
            meta = json.loads((path / _META).read_bytes())
            complete = isinstance(meta, dict) and meta.get("format") == FORMAT_VERSION
        except (OSError, ValueError):
            meta, complete = {}, False
        meta = meta if isinstance(meta, dict) else {}
        out.append(CacheEntry(
            path=path,
            retriever=str(meta.get("retriever", path.name.rsplit("-", 1)[0])),
            n_items=meta.get("n_items"),
            n_bytes=sum(p.stat().st_size for p in files),
            created=float(meta.get("created") or max((p.stat().st_mtime for p in files),
                                                      default=0)),
            complete=complete,
        ))
    return sorted(out, key=lambda e: (e.created, e.path.name))


def clear(directory: str | os.PathLike | None = None) -> int:
    """Remove every cache entry (and its lock file); return how many entries were removed.

    Only what the cache wrote is removed (``<name>-<key>`` folders and their ``.lock`` files), so
    pointing ``RECGYM_CACHE_DIR`` at a folder that holds other files is harmless.
    """
    root = Path(directory) if directory is not None else cache_dir()
    n = 0
    for entry in list_entries(root):
        with FileLock(str(entry.path) + ".lock"):
            shutil.rmtree(entry.path, ignore_errors=True)
        Path(str(entry.path) + ".lock").unlink(missing_ok=True)
        n += 1
    return n


def _safe_name(name: str) -> str:
    return name if _NAME.match(name) else re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def _reason(exc: OSError) -> str:
    return exc.strerror or _one_line(exc)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def _warn(message: str, stacklevel: int = 4) -> None:
    """One warning line, attributed to the caller of ``build_index``."""
    warnings.warn(message, IndexCacheWarning, stacklevel=stacklevel)
