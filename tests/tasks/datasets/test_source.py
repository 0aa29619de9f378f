"""Split files (a missing split is named), numbered lines, seeded subsets."""

from __future__ import annotations

import pytest

from elmo.files import InputFileError
from elmo.tasks.datasets.source import numbered_lines, require_some, split_file, subsample


def test_a_missing_split_names_task_split_and_path(tmp_path):
    (tmp_path / "train.txt").write_text("x\n")
    assert split_file(str(tmp_path), "train.txt", "pos", "train") == tmp_path / "train.txt"
    with pytest.raises(FileNotFoundError, match=r"pos: the dev split is missing: .*dev\.txt"):
        split_file(str(tmp_path), "dev.txt", "pos", "dev")


def test_numbered_lines_strip_line_endings(tmp_path):
    path = tmp_path / "f.txt"
    path.write_bytes(b"a\r\nb\n\nc")
    assert list(numbered_lines(path)) == [(1, "a"), (2, "b"), (3, ""), (4, "c")]


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda path: None, r"f\.txt: no such file"),
        (lambda path: path.mkdir(), r"f\.txt: is a directory, not a text file"),
        (lambda path: path.write_bytes(b""), r"f\.txt: the file is empty"),
        (
            lambda path: path.write_bytes(b"fine\nnot \xe9 UTF-8\n"),
            r"f\.txt:2: invalid UTF-8 \(byte 0xe9 at column 5\)",
        ),
    ],
)
def test_a_file_that_cannot_be_read_is_named(tmp_path, make, message):
    path = tmp_path / "f.txt"
    make(path)
    with pytest.raises(InputFileError, match=message):
        list(numbered_lines(path))


def test_require_some_names_the_file_without_records(tmp_path):
    assert require_some([1], tmp_path / "f.txt", "pairs") == [1]
    with pytest.raises(InputFileError, match=r"f\.txt: no pairs in the file"):
        require_some([], tmp_path / "f.txt", "pairs")


def test_subsample_is_seeded_and_keeps_file_order():
    items = list(range(100))
    chosen = subsample(items, 10, seed=3)
    assert len(chosen) == 10 and chosen == sorted(chosen)
    assert chosen == subsample(items, 10, seed=3) and chosen != subsample(items, 10, seed=4)
    assert subsample(items, None, seed=0) == items and subsample(items, 500, seed=0) == items
    with pytest.raises(ValueError, match="must be > 0"):
        subsample(items, 0, seed=0)
