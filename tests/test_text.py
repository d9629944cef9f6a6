"""The tokenizer: folding, splitting, stopwords, stemming, garbage input, bulk encoding."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recgym import text as text_module
from recgym.text import ENGLISH_STOPWORDS, Tokenizer, Vocabulary

PLAIN = Tokenizer(stopwords=None, stemmer=None)


def test_defaults_fold_lowercase_stop_stem():
    out = Tokenizer().tokenize("The Café's Running Shoes, for Men")
    assert out == ["cafe", "s", "run", "shoe", "men"]


def test_unicode_folding():
    assert PLAIN.tokenize("Café NAÏVE Ångström") == ["cafe", "naive", "angstrom"]
    assert PLAIN.tokenize("ﬁsh ① Ⅻ ｆｕｌｌｗｉｄｔｈ") == ["fish", "1", "xii", "fullwidth"]
    assert Tokenizer(fold_unicode=False, stopwords=None, stemmer=None).tokenize("Café") == ["café"]
    assert Tokenizer(lowercase=False, stopwords=None, stemmer=None).tokenize("Café") == ["Cafe"]


def test_split_on_non_alphanumerics():
    assert PLAIN.tokenize("16oz wi-fi USB_C 3.5mm") == ["16oz", "wi", "fi", "usb", "c", "3", "5mm"]
    assert PLAIN.tokenize("  \t\n ") == []
    # letters and digits of any script; in-word marks (Devanagari vowel signs) stay in the word
    assert PLAIN.tokenize("日本語 мир 123") == ["日本語", "мир", "123"]
    assert len(PLAIN.tokenize("हिन्दी पुस्तक")) == 2


def test_stopwords():
    assert Tokenizer(stemmer=None).tokenize("the cat and the hat") == ["cat", "hat"]
    assert PLAIN.tokenize("the cat") == ["the", "cat"]
    custom = Tokenizer(stopwords={"cat"}, stemmer=None)
    assert custom.tokenize("the cat") == ["the"]
    assert custom.stopwords == frozenset({"cat"})
    assert "the" in ENGLISH_STOPWORDS and len(ENGLISH_STOPWORDS) == 33
    # stopwords are matched after folding and lowercasing, before stemming
    assert Tokenizer(stemmer=None).tokenize("THE Thé") == []


def test_stemming():
    assert Tokenizer().tokenize("running runs ran shoes") == ["run", "run", "ran", "shoe"]
    assert Tokenizer(stemmer=None).tokenize("running") == ["running"]
    tok = Tokenizer()
    assert tok.normalize_token("running") == "run"
    assert tok._cache["running"] == "run"  # stems are cached per unique token


def test_max_token_length_splits_long_runs():
    tok = Tokenizer(stopwords=None, stemmer=None, max_token_length=4)
    assert tok.tokenize("abcdefghij") == ["abcd", "efgh", "ij"]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "\ud800",
        "lone \udfff surrogate",
        "\x00\x01\x1f\x7f control",
        "emoji 🎉👍🏽 ok",
        'title:(a OR b)^3 *?~ "quoted" -not +must [1 TO 5] {x} a\\b',
        "<script>alert(1)</script>",
        "\u200b\u200d zero width",
        "ǅungla",
    ],
)
def test_garbage_never_raises(text):
    for tok in (Tokenizer(), PLAIN, Tokenizer(fold_unicode=False, lowercase=False)):
        out = tok.tokenize(text)
        assert isinstance(out, list) and all(isinstance(t, str) and t for t in out)


def test_lucene_syntax_is_just_text():
    assert PLAIN.tokenize("title:(a OR b)^3 *?~") == ["title", "a", "or", "b", "3"]


def test_megabyte_input_is_fast():
    text = ("lorem-ipsum dolor_sit amet 16oz Café 🎉 " * 30_000)[:1_000_000]
    start = time.perf_counter()
    out = Tokenizer().tokenize(text)
    assert len(out) > 100_000
    one_token = Tokenizer().tokenize("a" * 1_000_000)  # one run: split into 255-char pieces
    assert len(one_token) == -(-1_000_000 // 255)
    assert time.perf_counter() - start < 5


def test_type_and_config_errors():
    with pytest.raises(TypeError):
        Tokenizer().tokenize(b"bytes")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Tokenizer(stopwords="klingon")
    with pytest.raises(ValueError):
        Tokenizer(stemmer="klingon")
    with pytest.raises(ValueError):
        Tokenizer(max_token_length=0)


def test_frozen_hashable_and_config():
    tok = Tokenizer()
    assert tok == Tokenizer() and hash(tok) == hash(Tokenizer())
    with pytest.raises(AttributeError):
        tok.lowercase = False  # type: ignore[misc]
    assert tok.config() == {
        "lowercase": True,
        "fold_unicode": True,
        "stopwords": "english",
        "stemmer": "english",
        "max_token_length": 255,
    }
    assert Tokenizer(stopwords={"b", "a"}).config()["stopwords"] == ["a", "b"]


def test_tokenize_batch():
    tok = Tokenizer()
    texts = ["Running shoes", "", "the"]
    assert tok.tokenize_batch(texts) == [["run", "shoe"], [], []]


def _decode(vocab: Vocabulary, ids, pos, n):
    terms = {i: t for t, i in vocab.terms.items()}
    out: list[list[str]] = [[] for _ in range(n)]
    for i, p in zip(ids.tolist(), pos.tolist()):
        out[p].append(terms[i])
    return out


@contextmanager
def _split_by(arrow: bool) -> Iterator[None]:
    """Force Vocabulary.encode_batch's steps through pyarrow or through str.split."""
    old = text_module._ARROW_MIN_CHARS
    text_module._ARROW_MIN_CHARS = 0 if arrow else sys.maxsize
    try:
        yield
    finally:
        text_module._ARROW_MIN_CHARS = old


TOKENIZERS = [
    Tokenizer(),
    PLAIN,
    Tokenizer(lowercase=False, stopwords=None, stemmer=None),
    Tokenizer(fold_unicode=False, stopwords=None, stemmer=None),
]

# whitespace that str.split splits on and pyarrow's ASCII split does not (\x1c-\x1f, \x85,
# \u2003, \u3000), text separators as words and inside words, a lone surrogate, fullwidth and
# accented capitals (folded and lowercased by Python, not by pyarrow), marks, long runs
AWKWARD_TEXTS = [
    "Wi-Fi router, 16oz!",
    "",
    "   ",
    "the and",
    "Café\x00au lait",
    "running runs",
    "a \x00 b\x00",
    "tab\there\nnew\rline\x0bv\x0cf",
    "fs\x1cgs\x1drs\x1eus\x1fend",
    "nel\x85em\u2003space\u3000ideographic\u00a0nbsp",
    "lone\ud800surrogate \udfff",
    "ＡＢＣ ÀÉÎ ǅungla ẞig ΣΟΦΊΑ",
    "नमस्ते दुनिया",
    "x" * 300 + " " + "é" * 300,
    "UPPER lower MiXeD",
]


@pytest.mark.parametrize("arrow", [False, True], ids=["str.split", "pyarrow"])
@pytest.mark.parametrize("tok", TOKENIZERS, ids=["default", "plain", "no-lowercase", "no-fold"])
def test_vocabulary_encodes_like_tokenize(tok, arrow):
    vocab = Vocabulary(tok)
    with _split_by(arrow):
        ids, pos = vocab.encode_batch(AWKWARD_TEXTS, grow=True)
        tokens = tok.tokenize_batch(AWKWARD_TEXTS)
        assert _decode(vocab, ids, pos, len(AWKWARD_TEXTS)) == tokens
        assert list(vocab.terms) == list(dict.fromkeys(t for text in tokens for t in text))
        # without grow, unknown terms are dropped and the vocabulary is unchanged
        size = len(vocab)
        ids, pos = vocab.encode_batch(["router zebra", "zebra"])
        assert _decode(vocab, ids, pos, 2) == [["router"], []]
        assert len(vocab) == size


@pytest.mark.parametrize("arrow", [False, True], ids=["str.split", "pyarrow"])
def test_vocabulary_encodes_numpy_string_arrays(arrow):
    # pyarrow's own numpy conversion would cut each string at its first "\x00"
    texts = np.array(["x\x00zebra crossing", "Zebra\x00", "plain text"] * 50)
    tok = Tokenizer()
    vocab = Vocabulary(tok)
    with _split_by(arrow):
        ids, pos = vocab.encode_batch(texts, grow=True)
    assert _decode(vocab, ids, pos, len(texts)) == tok.tokenize_batch(texts.tolist())


def test_both_splits_give_the_same_arrays_on_a_catalog():
    from recgym.worlds import load_world

    # the shop world's titles and descriptions, several lines each
    texts = [t.replace(". ", ".\n") for t in load_world("shop", n_items=3_000).catalog.texts()]
    out = []
    for arrow in (False, True):
        vocab = Vocabulary(Tokenizer())
        with _split_by(arrow):
            out.append((*vocab.encode_batch(texts, grow=True, chunk=1_000), list(vocab.terms)))
    (ids_a, pos_a, terms_a), (ids_b, pos_b, terms_b) = out
    assert len(ids_a) > 50_000
    assert ids_a.dtype == ids_b.dtype == pos_a.dtype == pos_b.dtype == np.int64
    assert np.array_equal(ids_a, ids_b) and np.array_equal(pos_a, pos_b) and terms_a == terms_b


def test_large_batches_are_split_by_pyarrow_and_queries_by_str_split(monkeypatch):
    calls: list[str] = []
    for name in ("_codes_arrow", "_codes_joined"):
        method = getattr(text_module._Memo, name)

        def spy(self, texts, _method=method, _name=name):
            calls.append(_name)
            return _method(self, texts)

        monkeypatch.setattr(text_module._Memo, name, spy)
    vocab = Vocabulary(Tokenizer())
    vocab.encode_batch(["cotton shirt with long sleeves"] * 10_000, grow=True)
    vocab.encode_batch(["cotton shirt"] * 1_000)
    assert calls == ["_codes_arrow", "_codes_joined"]


# every code point, lone surrogates included
any_text = st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=200)


@settings(max_examples=150, deadline=None)
@given(any_text)
def test_tokenize_any_string(text):
    for tok in (Tokenizer(), PLAIN):
        out = tok.tokenize(text)
        assert isinstance(out, list)
        assert all(isinstance(t, str) and t and not any(c.isspace() for c in t) for t in out)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(any_text, max_size=8),
    st.integers(1, 3),
    st.sampled_from(range(len(TOKENIZERS))),
    st.booleans(),
)
def test_vocabulary_matches_tokenize_on_any_strings(texts, chunk, which, arrow):
    tok = TOKENIZERS[which]
    vocab = Vocabulary(tok)
    with _split_by(arrow):
        ids, pos = vocab.encode_batch(texts, grow=True, chunk=chunk)
    tokens = tok.tokenize_batch(texts)
    assert _decode(vocab, ids, pos, len(texts)) == tokens
    # term ids are handed out in order of first appearance
    assert list(vocab.terms) == list(dict.fromkeys(t for text in tokens for t in text))


def test_vocabulary_rejects_a_chunk_below_one():
    with pytest.raises(ValueError, match="chunk must be >= 1"):
        Vocabulary(Tokenizer()).encode_batch(["a b"], chunk=0)


def test_a_shared_tokenizer_never_shows_half_analysed_words():
    # A Vocabulary analyses its new words in bulk into the tokenizer's cache while another
    # thread tokenizes with the same tokenizer: no word may look like a stopword meanwhile.
    tok = Tokenizer(stemmer=None)
    words = [f"w{i}x" for i in range(100_000)]
    wrong: list[str] = []
    go = threading.Event()

    def reader() -> None:
        go.wait()
        wrong.extend(w for w in reversed(words) if tok.tokenize(w) != [w])

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        thread = threading.Thread(target=reader)
        thread.start()
        go.set()
        Vocabulary(tok).encode_batch([" ".join(words)], grow=True)
        thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert wrong == []


def test_concurrent_encodings_while_the_lookup_memo_is_replaced(monkeypatch):
    # A full look-up memo is replaced, not cleared, so that other threads' encodings go on.
    monkeypatch.setattr(text_module, "_MAX_CACHE", 200)
    vocab = Vocabulary(Tokenizer(stemmer=None))
    vocab.encode_batch([" ".join(f"t{i}" for i in range(1000))], grow=True)
    errors: list[str] = []
    wrong: list[int] = []

    def worker(k: int) -> None:
        try:
            for r in range(100):
                ids, pos = vocab.encode_batch([" ".join(f"q{k}_{r}_{j} t{j}" for j in range(150))])
                if ids.tolist() != list(range(150)) or set(pos.tolist()) != {0}:
                    wrong.append(r)
        except Exception as e:  # reported by the assertion below
            errors.append(repr(e))

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert errors == [] and wrong == []
