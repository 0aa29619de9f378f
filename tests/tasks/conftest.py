"""Fixtures of the task tests: the tiny biLM saved as a model directory, and tiny task files."""

from __future__ import annotations

from pathlib import Path

import pytest

from elmo.pretrained import save_pretrained


@pytest.fixture
def tiny_model_dir(tmp_path: Path, tiny_bilm) -> Path:
    """The conftest tiny biLM as our pretrained directory (no softmax, so no vocabulary)."""
    return save_pretrained(tiny_bilm, tmp_path / "model")


@pytest.fixture
def write_file(tmp_path: Path):
    """``write_file("name", ["line", ...])`` writes UTF-8 lines under tmp_path; returns the path."""

    def write(name: str, lines: list[str], final_newline: bool = True) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + ("\n" if final_newline else ""), encoding="utf-8")
        return path

    return write
