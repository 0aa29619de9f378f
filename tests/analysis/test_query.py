"""Parsing a query with one [word] marker."""

from __future__ import annotations

import pytest

from elmo.analysis.query import mark, parse_marked_query


def test_the_marker_is_removed_and_its_position_kept():
    query = parse_marked_query("I live near the [bank] of America")
    assert query.tokens == ["I", "live", "near", "the", "bank", "of", "America"]
    assert (query.position, query.word) == (4, "bank")
    assert query.left == ["I", "live", "near", "the"] and query.right == ["of", "America"]
    assert str(query) == "I live near the [bank] of America"


@pytest.mark.parametrize("text, position", [("[bank] of the river", 0), ("the river [bank]", 2)])
def test_the_marker_may_be_first_or_last(text, position):
    query = parse_marked_query(text)
    assert query.position == position and query.word == "bank"
    assert mark(query.tokens, query.position) == text


@pytest.mark.parametrize(
    "text, message",
    [
        ("the bank of the river", "has no marked word"),
        ("", "has no marked word"),
        ("the [bank] of the [river]", "marks 2 words"),
        ("the [river bank] is steep", "is not a marker"),
        ("the [bank], by the river", "is not a marker"),
        ("the [[bank]] here", "is not a marker"),
    ],
)
def test_bad_queries_name_the_query(text, message):
    with pytest.raises(ValueError, match=message) as error:
        parse_marked_query(text)
    assert repr(text) in str(error.value)
