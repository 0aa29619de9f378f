"""Locating a task's split files, reading them line by line, and naming the bad line on error."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TypeVar

from elmo.files import InputFileError, decode_line
from elmo.hub import resolve_data_path

Item = TypeVar("Item")


class DataFormatError(InputFileError):
    """A line of a task file that does not follow the format; the message names file and line.

    An InputFileError (``elmo.files``), the one error type for a bad user input file.
    """

    def __init__(self, path: str | os.PathLike, line_number: int, message: str) -> None:
        super().__init__(f"{path}:{line_number}: {message}")
        self.path = str(path)
        self.line_number = line_number


def split_file(data_dir: str, file_name: str, task: str, split: str) -> Path:
    """The file of one split (``data_dir/file_name``, relative paths as in ``resolve_data_path``).

    Raises:
        FileNotFoundError: naming the task, the split and every place that was tried.
    """
    try:
        return Path(resolve_data_path(os.path.join(data_dir, file_name)))
    except FileNotFoundError as error:
        raise FileNotFoundError(f"{task}: the {split} split is missing: {error}") from None


def numbered_lines(path: str | os.PathLike) -> Iterator[tuple[int, str]]:
    """``(line number from 1, line without its line ending)`` for every line of a UTF-8 file.

    Raises:
        InputFileError: a missing file, a directory, an empty file, or a line that is not UTF-8
            (naming the file, line and byte).
    """
    if os.path.isdir(path):
        raise InputFileError(f"{path}: is a directory, not a text file")
    if not os.path.isfile(path):
        raise InputFileError(f"{path}: no such file")
    if os.path.getsize(path) == 0:
        raise InputFileError(f"{path}: the file is empty")
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            yield number, decode_line(raw, path, number).rstrip("\r\n")


def sentence_blocks(path: str | os.PathLike) -> Iterator[list[tuple[int, str]]]:
    """The sentences of a one-token-a-line file (CoNLL-U, CoNLL-2000): each run of non-blank
    lines, as ``(line number from 1, line)`` pairs; blank lines (spaces alone too) end one, and
    the last needs none after it. Raises as ``numbered_lines``."""
    block: list[tuple[int, str]] = []
    for number, line in numbered_lines(path):
        if line.strip():
            block.append((number, line))
        elif block:
            yield block
            block = []
    if block:  # a file without its final blank line
        yield block


def require_some(items: list[Item], path: str | os.PathLike, what: str) -> list[Item]:
    """``items`` read from ``path``; InputFileError naming the file when there are none (a file of
    blank lines or comments, or a header alone), before any model work starts."""
    if not items:
        raise InputFileError(f"{path}: no {what} in the file")
    return items


def subsample(items: Sequence[Item], max_items: int | None, seed: int) -> list[Item]:
    """At most ``max_items`` of ``items``, drawn at random (seeded) and kept in their file order.

    ``None`` keeps everything. Drawing at random rather than taking the head matters for files
    sorted by source (SST-2's train phrases come tree by tree, EWT by document).
    """
    if max_items is None or max_items >= len(items):
        return list(items)
    if max_items <= 0:
        raise ValueError(f"a maximum number of examples must be > 0 or null, got {max_items}")
    chosen = sorted(random.Random(seed).sample(range(len(items)), max_items))
    return [items[i] for i in chosen]
