import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from recgym.spaces import AnyText


@given(st.text(max_size=200))
def test_any_str_within_bounds_is_contained(text):
    assert AnyText(max_length=200).contains(text)


def test_bounds_and_types():
    space = AnyText(max_length=5, min_length=2)
    assert space.contains("ab") and space.contains("a b c"[:5])
    assert not space.contains("a") and not space.contains("abcdef")
    assert not space.contains(b"abc") and not space.contains(3) and not space.contains(None)


def test_unicode_punctuation_and_spaces_are_contained():
    space = AnyText(max_length=100)
    for text in ["insulated travel mug, 16 oz!", "café crème ☕", "title:(a OR b)^3", "\t\n", ""]:
        assert space.contains(text), text


def test_sample_is_reproducible_printable_and_contained():
    a, b = AnyText(max_length=40, seed=7), AnyText(max_length=40, seed=7)
    samples = [a.sample() for _ in range(50)]
    assert samples == [b.sample() for _ in range(50)]
    assert all(a.contains(s) and s.isprintable() for s in samples)
    assert len(set(samples)) > 40
    assert AnyText(max_length=40, seed=8).sample() != samples[0]


def test_equality():
    assert AnyText(10) == AnyText(10)
    assert AnyText(10) != AnyText(11)
    assert np.all([AnyText(3).contains("abc")])
