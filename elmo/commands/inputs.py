"""Reading a user's text file of sentences, with errors that name the file and line."""

from __future__ import annotations

import os
from pathlib import Path

from elmo.files import InputFileError, decode_line  # defined once, for every reader of user files

__all__ = ["InputFileError", "read_sentence_lines"]


def read_sentence_lines(path: str | os.PathLike, allow_blank: bool = False) -> list[str]:
    """The stripped lines of a UTF-8 text file, one sentence per line.

    Raises:
        InputFileError: missing or empty file, invalid UTF-8, or (unless ``allow_blank``) a
            blank line, naming the file and the 1-based line number.
    """
    path = Path(path)
    if path.is_dir():
        raise InputFileError(f"{path}: is a directory, not a text file")
    if not path.is_file():
        raise InputFileError(f"{path}: no such file")
    data = path.read_bytes()
    if not data.strip():
        raise InputFileError(f"{path}: the file is empty (expected one sentence per line)")
    lines = []
    for number, raw in enumerate(data.split(b"\n"), start=1):
        lines.append(decode_line(raw, path, number).strip())
    if lines and lines[-1] == "" and data.endswith(b"\n"):
        lines.pop()  # the final newline ends the last line; it is not a blank line
    if not allow_blank:
        for number, line in enumerate(lines, start=1):
            if not line:
                raise InputFileError(f"{path}:{number}: blank line (every line must hold a sentence)")
    return lines
