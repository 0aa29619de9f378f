"""Helpers for tests of progress reporting: ``elmo.progress`` as log lines, one per update."""

from __future__ import annotations

import itertools
import logging

import elmo.progress as progress_module


def log_every_update(monkeypatch, caplog) -> None:
    """Make ``elmo.progress`` report as log lines (stderr is no terminal) and write one at every
    update (its clock jumps a minute at each reading), captured by ``caplog``."""
    ticks = itertools.count(step=60.0)
    monkeypatch.setattr(progress_module, "_is_terminal", lambda: False)
    monkeypatch.setattr(progress_module, "_now", lambda: next(ticks))
    caplog.set_level(logging.INFO, logger="elmo.progress")


def progress_lines(caplog, start: str = "") -> list[str]:
    """The progress lines captured so far (those that begin with ``start``)."""
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "elmo.progress" and record.getMessage().startswith(start)
    ]
