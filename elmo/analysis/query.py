"""A query sentence with one marked word: ``"I live near the [bank] of America"``.

The marker is a whole whitespace-separated token in square brackets. Its brackets are removed,
so the sentence the model sees is the plain text, and the marked token's position is kept.
"""

from __future__ import annotations

from typing import NamedTuple


class MarkedQuery(NamedTuple):
    tokens: list[str]  # the sentence, split on whitespace, brackets removed
    position: int  # index of the marked token in ``tokens``

    @property
    def word(self) -> str:
        """The marked word."""
        return self.tokens[self.position]

    @property
    def left(self) -> list[str]:
        """The tokens before the marked word."""
        return self.tokens[: self.position]

    @property
    def right(self) -> list[str]:
        """The tokens after the marked word."""
        return self.tokens[self.position + 1 :]

    def __str__(self) -> str:
        return mark(self.tokens, self.position)


def parse_marked_query(query: str) -> MarkedQuery:
    """Split ``query`` on whitespace and find its single ``[word]`` marker.

    Raises:
        ValueError: no marker, several markers, or a bracket that is not a whole-token marker
            (e.g. ``[river bank]`` or ``[bank],``); the message quotes the query.
    """
    if not isinstance(query, str):
        raise TypeError(f"a query must be a str, got {type(query).__name__}: {query!r}")
    tokens = query.split()
    markers = [i for i, token in enumerate(tokens) if _is_marker(token)]
    stray = [t for i, t in enumerate(tokens) if i not in markers and ("[" in t or "]" in t)]
    if stray:
        raise ValueError(
            f"query {query!r}: {stray[0]!r} is not a marker; mark exactly one whole word as "
            "[word], with spaces around it"
        )
    if not markers:
        raise ValueError(f"query {query!r} has no marked word; put one word in brackets: [word]")
    if len(markers) > 1:
        marked = ", ".join(tokens[i] for i in markers)
        raise ValueError(f"query {query!r} marks {len(markers)} words ({marked}); mark exactly one")
    position = markers[0]
    tokens[position] = tokens[position][1:-1]
    return MarkedQuery(tokens, position)


def mark(tokens: list[str], position: int) -> str:
    """The sentence as text with ``tokens[position]`` in brackets."""
    return " ".join(f"[{t}]" if i == position else t for i, t in enumerate(tokens))


def _is_marker(token: str) -> bool:
    inner = token[1:-1]
    return (
        len(token) > 2
        and token[0] == "["
        and token[-1] == "]"
        and "[" not in inner
        and "]" not in inner
    )
