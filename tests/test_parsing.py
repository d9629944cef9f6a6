import pytest
from hypothesis import given
from hypothesis import strategies as st

from recgym.parsing import (
    cap_query,
    check_action,
    make_parser,
    parse_batch,
    parse_raw,
    parse_rec_r1,
)


def r1(think="ok", answer='{"query": "travel mug"}'):
    return f"<think>{think}</think><answer>{answer}</answer>"


def test_raw_takes_the_whole_text():
    assert parse_raw("black travel mug").query == "black travel mug"
    assert parse_raw("  ").invalid_reason == "empty_query"
    assert parse_raw("").invalid_reason == "empty_query"


def test_rec_r1_well_formed():
    parsed = parse_rec_r1(r1())
    assert parsed.valid and parsed.query == "travel mug"
    assert parse_rec_r1("prefix " + r1() + " suffix").query == "travel mug"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("travel mug", "missing_tag:<think>"),
        ("<think>a</think>", "missing_tag:<answer>"),
        (r1() + "<think>again</think>", "repeated_tag:<think>"),
        ('<answer>{"query": "x"}</answer><think>a</think>', "tags_out_of_order"),
        (r1(answer="travel mug"), "answer_not_json"),
        (r1(answer='{"q": "travel mug"}'), "answer_without_query_key"),
        (r1(answer='["travel mug"]'), "answer_without_query_key"),
        (r1(answer='{"query": 3}'), "query_not_a_string"),
        (r1(answer='{"query": "   "}'), "empty_query"),
        (r1(answer="[" * 100000), "answer_not_json"),
    ],
)
def test_rec_r1_malformed(text, reason):
    assert parse_rec_r1(text).invalid_reason == reason


@given(st.text(max_size=300))
def test_parsers_never_raise_on_text(text):
    for name in ("raw", "rec-r1"):
        parsed = make_parser(name)(text)
        assert isinstance(parsed.query, str)
        assert parsed.valid == (parsed.invalid_reason is None)


def test_check_action_names_the_type():
    assert check_action("q") == "q"
    for bad in (3, None, b"bytes", ["q"]):
        with pytest.raises(TypeError, match="expected a str"):
            check_action(bad)


def test_unknown_parser_lists_choices():
    with pytest.raises(ValueError, match="raw, rec-r1"):
        make_parser("recr1")


def test_caps():
    assert cap_query("a b c", 10, 5) == ("a b c", None)
    assert cap_query("a b c d", 100, 2) == ("a b", {"chars": 7, "terms": 4})
    query, capped = cap_query("x" * 1_000_000, 256, 32)
    assert len(query) == 256 and capped == {"chars": 1_000_000, "terms": 1}
    query, capped = cap_query("ab " * 500, 30, 32)
    assert query == " ".join(["ab"] * 10) and capped["chars"] == 1500


@given(st.text(alphabet=" \t\u3000ab", max_size=120), st.integers(1, 60), st.integers(1, 8))
def test_cap_query_caps_exactly_when_needed(text, max_chars, max_terms):
    query, capped = cap_query(text, max_chars, max_terms)
    needed = len(text) > max_chars or len(text.split()) > max_terms
    if needed:
        assert capped == {"chars": len(text), "terms": len(text.split())}
        assert query == " ".join(text[:max_chars].split()[:max_terms])
    else:
        assert (query, capped) == (text, None)


@given(st.lists(st.one_of(st.text(max_size=20), st.sampled_from(["", " \x1c\u3000", r1()]))))
def test_parse_batch_equals_parsing_one_by_one(texts):
    for parser in (parse_raw, parse_rec_r1):
        one_by_one = [parser(t) for t in texts]
        assert parse_batch(parser, texts) == (
            [p.query for p in one_by_one],
            [p.invalid_reason for p in one_by_one],
        )


def test_parse_batch_rejects_non_strings():
    with pytest.raises(TypeError, match=r"expected a str .* got int"):
        parse_batch(parse_raw, ["ok", 3])
