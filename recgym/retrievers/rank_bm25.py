"""The reference BM25: the ``rank_bm25`` package configured to the formula, tokenizer and tie-break
of :class:`~recgym.retrievers.bm25.BM25`. Slow (pure Python, every query scores every item); it
exists to check the fast backend.

``rank_bm25.BM25Okapi`` differs from Lucene's BM25 in two places, both fixed here:

* its idf is ``ln((N - df + 0.5) / (df + 0.5))``, floored at ``epsilon * mean idf`` where
  negative; :class:`RankBM25` overrides ``_calc_idf`` with Lucene's
  ``ln(1 + (N - df + 0.5) / (df + 0.5))`` (always positive, no floor);
* its term weight keeps the classic ``(k1 + 1)`` factor in the numerator, which Lucene (since 8)
  drops. The factor is the same for every term and item, so rankings agree; :class:`RankBM25`
  divides the scores by ``k1 + 1`` so that they agree too.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import rank_bm25

from recgym.catalog import Catalog
from recgym.retrievers.base import check_search, empty_results
from recgym.retrievers.bm25 import _texts, bm25_config, bm25_settings
from recgym.text import Tokenizer

__all__ = ["LuceneBM25Okapi", "RankBM25"]


class LuceneBM25Okapi(rank_bm25.BM25Okapi):
    """``rank_bm25.BM25Okapi`` with Lucene's idf (scores still carry the ``k1 + 1`` factor)."""

    def _calc_idf(self, nd: dict[str, int]) -> None:
        n = self.corpus_size
        for word, freq in nd.items():
            self.idf[word] = math.log(1.0 + (n - freq + 0.5) / (freq + 0.5))
        self.average_idf = sum(self.idf.values()) / len(self.idf) if self.idf else 0.0


class RankBM25:
    """BM25 on rank_bm25, with the constructor and results of :class:`~recgym.retrievers.bm25.BM25`
    (scores equal up to float32 rounding; ranked by the float32 score, ties by the lower row).

    An empty catalog (or one without a single indexed term) can be indexed; every search then
    returns only ``-1`` rows and ``-inf`` scores, as does a query with no indexed term.
    """

    name = "rank_bm25"

    def __init__(
        self,
        k1: float = 0.9,
        b: float = 0.4,
        tokenizer: Tokenizer | Mapping[str, Any] | None = None,
        fields: Sequence[str] | None = None,
    ) -> None:
        self.k1, self.b, self.tokenizer, self.fields = bm25_settings(k1, b, tokenizer, fields)
        self.n_items = 0
        self._model: LuceneBM25Okapi | None = None
        self._indexed = False

    def config(self) -> dict[str, Any]:
        return bm25_config(self)

    def index(self, catalog: Catalog | Sequence[str]) -> None:
        """Tokenize and index a catalog (or a plain sequence of texts, one per row)."""
        texts = _texts(catalog, self.fields)
        corpus = self.tokenizer.tokenize_batch(texts)
        self.n_items = len(corpus)
        # rank_bm25 divides by the corpus size and by the mean length: leave degenerate corpora
        # (nothing to find in them anyway) unindexed.
        has_terms = any(corpus)
        self._model = LuceneBM25Okapi(corpus, k1=self.k1, b=self.b) if has_terms else None
        self._indexed = True

    def search(self, queries: Sequence[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` rows and scores of each query; ``-1`` / ``-inf`` where fewer items match."""
        if not self._indexed:
            raise RuntimeError("RankBM25.search called before index()")
        k = check_search(queries, k)
        rows, scores = empty_results(len(queries), k)
        if self._model is None:
            return rows, scores
        for i, query in enumerate(queries):
            terms = [t for t in self.tokenizer.tokenize(query) if t in self._model.idf]
            if not terms:
                continue
            s = (self._model.get_scores(terms) / (self.k1 + 1.0)).astype(np.float32)
            hit = np.flatnonzero(s > 0)
            top = hit[np.lexsort((hit, -s[hit]))][:k]  # score descending, then row ascending
            rows[i, : len(top)] = top
            scores[i, : len(top)] = s[top]
        return rows, scores
