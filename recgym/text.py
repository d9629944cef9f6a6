"""Text analysis shared by the lexical retrievers: one :class:`Tokenizer` for documents and queries.

The default pipeline mirrors Lucene's ``EnglishAnalyzer`` (the BM25 baseline of Anserini/Pyserini),
with the Snowball English (Porter2) stemmer of PyStemmer in place of Porter v1:

1. ``fold_unicode``: NFKD compatibility decomposition, then every combining mark with a non-zero
   canonical combining class is removed ("Café" -> "Cafe", "ﬁ" -> "fi", "①" -> "1").
2. ``lowercase``.
3. Split into maximal runs of letters and digits of any script (``str.isalnum``) plus the
   spacing/vowel marks that scripts such as Devanagari need inside words. Everything else (space,
   punctuation, symbols, emoji, control characters, lone surrogates, ``_``) separates tokens, so
   "16oz" is one token and "wi-fi" is two. Runs longer than ``max_token_length`` are cut into
   pieces of that length, as Lucene's ``StandardTokenizer`` does.
4. Drop ``stopwords`` (Lucene's English stop set by default), then ``stemmer``.

Any ``str`` is accepted, from ``""`` to megabytes of garbage; the output is always a list of
non-empty ``str``. Stemming, the hot path, is cached per unique token.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import chain, islice, repeat
from typing import Any

import numpy as np

__all__ = ["ENGLISH_STOPWORDS", "Tokenizer", "Vocabulary"]

#: Lucene's ``EnglishAnalyzer.ENGLISH_STOP_WORDS_SET`` (also Anserini's and Elasticsearch's
#: ``_english_`` default): 33 function words. Deliberately small: "no", "not", "with", "for" are
#: the only ones that ever carry meaning in a product query, and BM25's idf discounts frequent
#: words anyway.
# fmt: off
ENGLISH_STOPWORDS: frozenset[str] = frozenset({
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is", "it",
    "no", "not", "of", "on", "or", "such", "that", "the", "their", "then", "there", "these", "they",
    "this", "to", "was", "will", "with",
})
# fmt: on

# Separates texts inside one joined string (Vocabulary.encode_batch of a few texts). It is not
# alphanumeric, so it never occurs inside a token; when a text holds it as a word of its own, the
# texts are joined again with every occurrence replaced by a space.
_SEP = "\x00"
_WORD = r"[^\W_]"  # one alphanumeric character of any script (\w minus "_")
_MAX_CACHE = 1 << 21  # unique tokens kept in the stem cache before it is cleared
_LOCK = threading.Lock()
_NEW = -(1 << 62)  # not analysed yet: a word's code during Vocabulary encoding, a token's term
# Vocabulary.encode_batch steps of at least this many characters are split by pyarrow, smaller
# ones (a batch of queries) by str.split: below it, pyarrow's start-up costs more than it saves.
_ARROW_MIN_CHARS = 100_000
_SURROGATES = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class Tokenizer:
    """Lowercase, fold, split, drop stopwords, stem.

    Attributes:
        lowercase: lowercase every token.
        fold_unicode: NFKD-decompose and strip combining marks ("Café" -> "cafe").
        stopwords: ``"english"`` (:data:`ENGLISH_STOPWORDS`), ``None`` (keep everything), or any
            collection of words. Stopwords are matched after lowercasing/folding, before stemming.
        stemmer: ``"english"`` (Snowball English via PyStemmer), any other Snowball language name
            PyStemmer knows, or ``None``.
        max_token_length: longer alphanumeric runs are split into pieces of this length.
    """

    lowercase: bool = True
    fold_unicode: bool = True
    stopwords: str | Collection[str] | None = "english"
    stemmer: str | None = "english"
    max_token_length: int = 255
    _stop: frozenset[str] = field(init=False, repr=False, compare=False)
    _stem: Any = field(init=False, repr=False, compare=False)
    _stem_many: Any = field(init=False, repr=False, compare=False)
    _cache: dict[str, str | None] = field(init=False, repr=False, compare=False)
    _words: dict[str, tuple[str, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.stopwords, str):
            if self.stopwords != "english":
                raise ValueError(
                    f"unknown stopword list {self.stopwords!r}; use 'english', None or a set"
                )
            stop = ENGLISH_STOPWORDS
        elif self.stopwords is None:
            stop = frozenset()
        else:
            stop = frozenset(self.stopwords)
            object.__setattr__(self, "stopwords", stop)  # hashable and immutable
        if self.max_token_length < 1:
            raise ValueError("max_token_length must be >= 1")
        stem = stem_many = None
        if self.stemmer is not None:
            import Stemmer  # PyStemmer

            try:
                # No PyStemmer cache: each distinct token reaches it once (cached in _cache),
                # and its own cache of 10,000 words only thrashes on larger vocabularies.
                stemmer = Stemmer.Stemmer(self.stemmer, 0)
            except KeyError:
                raise ValueError(
                    f"unknown stemmer {self.stemmer!r}; PyStemmer knows "
                    f"{', '.join(Stemmer.algorithms())}"
                ) from None
            stem, stem_many = stemmer.stemWord, stemmer.stemWords
        object.__setattr__(self, "_stop", stop)
        object.__setattr__(self, "_stem", stem)
        object.__setattr__(self, "_stem_many", stem_many)
        object.__setattr__(self, "_cache", {})
        object.__setattr__(self, "_words", _WordMemo(self))

    # -- public API ------------------------------------------------------------------------------

    def tokenize(self, text: str) -> list[str]:
        """The terms of one text, in order (repeats kept)."""
        if not isinstance(text, str):
            raise TypeError(f"Tokenizer expects str, got {type(text).__name__}")
        words = self._words
        if len(words) >= _MAX_CACHE:
            words.clear()
        return list(chain.from_iterable(map(words.__getitem__, self._fold_lower(text).split())))

    def tokenize_batch(self, texts: Iterable[str]) -> list[list[str]]:
        """:meth:`tokenize` of each text."""
        return [self.tokenize(text) for text in texts]

    def split(self, text: str) -> list[str]:
        """Fold, lowercase and split one text; no stopword removal or stemming."""
        if not isinstance(text, str):
            raise TypeError(f"Tokenizer expects str, got {type(text).__name__}")
        out: list[str] = []
        max_len = self.max_token_length
        for word in self._fold_lower(text).split():
            if len(word) <= max_len and word.isalnum():
                out.append(word)  # the common case: no regex needed
            else:
                out.extend(self._split_word(word))
        return out

    def normalize_token(self, token: str) -> str | None:
        """Stopword filter and stem of one split token (``None`` for a stopword); cached."""
        cache = self._cache
        try:
            return cache[token]
        except KeyError:
            pass
        if token in self._stop:
            out = None
        elif self._stem is not None:
            out = self._stem(token) or token
        else:
            out = token
        if len(cache) >= _MAX_CACHE:
            cache.clear()
        cache[token] = out
        return out

    def _normalize_many(self, tokens: list[str]) -> list[str | None]:
        """:meth:`normalize_token` of each token, the uncached ones stemmed in one call (the
        same rules, in bulk: for the many new words of a :class:`Vocabulary`). The answers are
        kept here, not re-read from the shared cache, which another thread may clear."""
        cache = self._cache
        if len(cache) + len(tokens) > _MAX_CACHE:
            cache.clear()
        known = {t: cache.get(t, _NEW) for t in dict.fromkeys(tokens)}
        new = [t for t, term in known.items() if term is _NEW]
        if new:
            stop = self._stop
            todo = [t for t in new if t not in stop]
            stems = self._stem_many(todo) if self._stem_many is not None else todo
            found: dict[str, str | None] = dict.fromkeys(new)  # stopwords -> None
            found.update(zip(todo, [s or t for s, t in zip(stems, todo)]))
            cache.update(found)  # at once: other threads never see a half-done entry
            known.update(found)
        return [known[t] for t in tokens]

    def config(self) -> dict[str, Any]:
        """The settings, JSON-friendly (part of a retriever's index cache key)."""
        stop = self.stopwords
        if stop is not None and not isinstance(stop, str):
            stop = sorted(stop)
        return {
            "lowercase": self.lowercase,
            "fold_unicode": self.fold_unicode,
            "stopwords": stop,
            "stemmer": self.stemmer,
            "max_token_length": self.max_token_length,
        }

    # -- internals -------------------------------------------------------------------------------

    def _fold_lower(self, text: str) -> str:
        if self.fold_unicode and not text.isascii():
            text = unicodedata.normalize("NFKD", text)
            marks = [c for c in set(text) if unicodedata.combining(c)]
            if marks:
                text = re.sub("[" + re.escape("".join(marks)) + "]", "", text)
        if self.lowercase:
            text = text.lower()
        return text

    def _split_word(self, word: str) -> list[str]:
        """Split one whitespace-free string that is not a plain alphanumeric token."""
        return _pattern(_marks_of(word), self.max_token_length).findall(word)


class Vocabulary:
    """Term ids of a tokenizer's output, for bulk encoding of many texts.

    Texts are folded, lowercased and split on whitespace; each distinct whitespace-delimited word
    is then analysed once (split further on punctuation, stopword-filtered, stemmed) and memoised
    as its term id(s). Identical to :meth:`Tokenizer.tokenize` followed by a vocabulary lookup.

    Large batches (a catalog) go through pyarrow's compiled kernels: lowercasing, splitting and
    finding the distinct words with their positions (``dictionary_encode``) create no Python
    object per word, and Python looks up only the distinct words of each step. Small batches (a
    batch of queries) are joined into one string and split by ``str.split``, one C-level dict
    lookup per word, which costs less than pyarrow's start-up.

    Attributes:
        tokenizer: the tokenizer.
        terms: term -> id, ids ``0..len(terms)-1`` in order of first appearance.
    """

    def __init__(self, tokenizer: Tokenizer) -> None:
        self.tokenizer = tokenizer
        self.terms: dict[str, int] = {}
        self._grow = _Memo(self, grow=True)
        self._lookup = _Memo(self, grow=False)

    def __len__(self) -> int:
        return len(self.terms)

    def encode_batch(
        self, texts: Sequence[str], grow: bool = False, chunk: int = 65_536
    ) -> tuple[np.ndarray, np.ndarray]:
        """Term ids of many texts at once.

        Args:
            texts: the texts.
            grow: add unseen terms to the vocabulary (indexing); otherwise they are dropped
                (searching).
            chunk: texts analysed per step (bounds the memory of the intermediate arrays).

        Returns:
            ``(ids, pos)``: the int64 term ids of all kept tokens in text order (stopwords and
            unknown terms dropped) and the int64 position in ``texts`` of the text each came from.
        """
        if not all(map(isinstance, texts, repeat(str))):
            i, text = next((i, t) for i, t in enumerate(texts) if not isinstance(t, str))
            raise TypeError(f"Tokenizer expects str, got {type(text).__name__} at position {i}")
        if chunk < 1:
            raise ValueError(f"chunk must be >= 1, got {chunk}")
        # A memo is never cleared in place: searches in other threads may be using it. A full
        # one, or the look-up memo when the vocabulary grows (its "unknown" words may become
        # known), is replaced by a new one.
        if grow:
            memo = self._grow
            self._lookup = _Memo(self, grow=False)
        else:
            memo = self._lookup
            if len(memo) > _MAX_CACHE:
                memo = self._lookup = _Memo(self, grow=False)
        ids, pos = [], []
        for start in range(0, len(texts), chunk):
            i, p = memo.encode(texts[start : start + chunk])
            ids.append(i)
            pos.append(p + start)
        if not ids:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        return np.concatenate(ids), np.concatenate(pos)


_SEP_WORD = f" {_SEP} "


class _WordMemo(dict):
    """whitespace-delimited word (folded, lowercased) -> its terms."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        super().__init__()
        self.tokenizer = tokenizer

    def __missing__(self, word: str) -> tuple[str, ...]:
        tok = self.tokenizer
        plain = len(word) <= tok.max_token_length and word.isalnum()
        parts = [word] if plain else tok._split_word(word)
        terms = tuple(t for t in map(tok.normalize_token, parts) if t is not None)
        self[word] = terms
        return terms


class _Memo(dict):
    """word -> code: a term id ``>= 0``; ``-1`` no term (stopwords, punctuation, unknown terms);
    ``-2`` the text separator; ``<= -3`` several terms, listed in ``_multi[-3 - code]``."""

    def __init__(self, vocab: Vocabulary, grow: bool) -> None:
        super().__init__()
        self.vocab = vocab
        self.grow = grow
        self[_SEP] = -2
        self._multi: list[list[int]] = []
        self._arrays: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def learn(self, words: Iterable[str]) -> None:
        """Analyse new words, all at once, in order: term ids are handed out in order of first
        appearance, and only once (hence the lock: searches may run in several threads; entries
        are only ever added, never changed or removed)."""
        tok = self.vocab.tokenizer
        max_len = tok.max_token_length
        vocab = self.vocab.terms
        with _LOCK:
            words = [w for w in words if w not in self]
            plain = [len(w) <= max_len and w.isalnum() for w in words]
            if all(plain):  # one token per word: the usual case
                parts, tokens = None, words
            else:
                parts = [[w] if p else tok._split_word(w) for w, p in zip(words, plain)]
                tokens = [t for p in parts for t in p]
            terms = tok._normalize_many(tokens)
            if self.grow:
                ids = [-1 if t is None else vocab.setdefault(t, len(vocab)) for t in terms]
            else:
                ids = [-1 if t is None else vocab.get(t, -1) for t in terms]
            if parts is None:
                self.update(zip(words, ids))
                return
            next_ids = iter(ids)
            multi = self._multi
            for word, p in zip(words, parts):
                got = [i for i in islice(next_ids, len(p)) if i >= 0]
                if len(got) <= 1:
                    self[word] = got[0] if got else -1
                else:
                    multi.append(got)  # first: a search in another thread may meet the code
                    self[word] = -3 - (len(multi) - 1)
                    self._arrays = None

    def encode(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        if len(texts) == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        if sum(map(len, texts)) >= _ARROW_MIN_CHARS:
            codes, pos = self._codes_arrow(texts)
        else:
            codes, pos = self._codes_joined(texts)
        keep = (codes >= 0) | (codes <= -3)
        if not keep.all():
            keep = np.flatnonzero(keep)  # take: faster than a boolean mask, as in bm25_search
            codes, pos = codes.take(keep), pos.take(keep)
        multi = codes <= -3
        if not multi.any():
            return codes, pos
        # Expand the words that hold several terms (e.g. "wi-fi") in place.
        arrays = self._arrays
        if arrays is None or len(arrays[1]) <= int(-3 - codes.min()):
            multi_ids = list(self._multi)
            lens = np.array([len(m) for m in multi_ids], dtype=np.int64)
            flat = np.array([i for m in multi_ids for i in m], dtype=np.int64)
            arrays = self._arrays = (np.cumsum(lens) - lens, lens, flat)
        starts, lens, flat = arrays
        which = np.where(multi, -3 - codes, 0)
        n_out = np.where(multi, lens[which], 1)
        src = np.repeat(np.arange(len(codes)), n_out)
        within = np.arange(len(src)) - np.repeat(np.cumsum(n_out) - n_out, n_out)
        ids = np.where(multi[src], flat[starts[which[src]] + within], codes[src])
        return ids, pos[src]

    def _codes_joined(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """The code of each word of the texts and the text it is in (the separator word gets
        the next text's), from the texts joined by the separator word, folded, lowercased and
        split by ``str.split``: the fastest way for a few texts, such as a batch of queries."""
        words = self._fold_lower_split(_SEP_WORD.join(texts))
        codes = self._codes(words)
        pos = np.cumsum(codes == -2)
        if (pos[-1] if len(pos) else 0) != len(texts) - 1:  # a text holds a separator word
            words = self._fold_lower_split(_SEP_WORD.join(t.replace(_SEP, " ") for t in texts))
            codes = self._codes(words)
            pos = np.cumsum(codes == -2)
        return codes, pos

    def _codes_arrow(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`_codes_joined` for many texts, in pyarrow's compiled kernels: lowercase, split
        and distinct words with their positions (``dictionary_encode``); Python sees only the
        distinct words. pyarrow splits on ASCII whitespace only and lowercases only ASCII, so
        texts with other characters are folded, lowercased and split (into words joined by
        spaces) here first. Whitespace that pyarrow does not split on in ASCII texts
        (``\x1c``-``\x1f``) stays inside words, where the analysis of a word splits on it: every
        character that is not a letter, digit or mark separates tokens, so a word split at one or
        kept whole gives the same tokens."""
        import pyarrow as pa
        import pyarrow.compute as pc

        tok = self.vocab.tokenizer
        if isinstance(texts, np.ndarray):
            texts = texts.tolist()  # pyarrow's numpy conversion cuts strings at a "\x00"
        if not all(map(str.isascii, texts)):
            # Python's folding and lowercasing; other whitespace becomes spaces, so that
            # pyarrow's split keeps words (the memo's keys) short
            texts = [t if t.isascii() else " ".join(tok._fold_lower(t).split()) for t in texts]
        try:
            array = pa.array(texts, type=pa.large_string())
        except UnicodeEncodeError:  # lone surrogates (no UTF-8): separators, as a space is
            texts = [t if t.isascii() else _SURROGATES.sub(" ", t) for t in texts]
            array = pa.array(texts, type=pa.large_string())
        if tok.lowercase:
            array = pc.ascii_lower(array)
        split = pc.ascii_split_whitespace(array)
        distinct = pc.dictionary_encode(split.flatten())
        codes = self._codes(distinct.dictionary.to_pylist())
        n_words = np.diff(split.offsets.to_numpy())
        return codes[distinct.indices.to_numpy()], np.repeat(np.arange(len(texts)), n_words)

    def _fold_lower_split(self, joined: str) -> list[str]:
        return self.vocab.tokenizer._fold_lower(joined).split()

    def _codes(self, words: list[str]) -> np.ndarray:
        """The code of each word (folded, lowercased, whitespace-free), new words analysed."""
        # The dict lookups of all words in one C loop; new words are analysed afterwards, together.
        codes = np.fromiter(map(self.get, words, repeat(_NEW)), dtype=np.int64, count=len(words))
        new = np.flatnonzero(codes == _NEW).tolist()
        if new:
            new_words = [words[i] for i in new]
            self.learn(dict.fromkeys(new_words))
            codes[new] = np.fromiter(map(self.__getitem__, new_words), np.int64, len(new))
        return codes


_PATTERNS: dict[tuple[str, int], re.Pattern[str]] = {}


def _marks_of(text: str) -> str:
    """The combining/spacing marks (Unicode category M) present in ``text``, sorted."""
    if text.isascii():
        return ""
    return "".join(sorted(c for c in set(text) if unicodedata.category(c)[0] == "M"))


def _pattern(marks: str, max_len: int) -> re.Pattern[str]:
    """Runs of alphanumerics (plus ``marks``) of at most ``max_len`` characters."""
    key = (marks, max_len)
    pat = _PATTERNS.get(key)
    if pat is None:
        unit = f"(?:{_WORD}|[{re.escape(marks)}])" if marks else _WORD
        source = f"{unit}{{1,{max_len}}}"
        if len(_PATTERNS) > 256:
            _PATTERNS.clear()
        pat = _PATTERNS[key] = re.compile(source)
    return pat
