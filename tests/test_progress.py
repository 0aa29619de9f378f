"""Progress: a tqdm bar with its total on a terminal; elsewhere, log lines with the counts."""

from __future__ import annotations

import logging
import time

import pytest
from progress_log import log_every_update, progress_lines
from tqdm import tqdm

import elmo.progress as progress_module
from elmo.progress import LogProgress, duration, heartbeat, progress


@pytest.fixture
def clock(monkeypatch):
    """A clock the test moves: ``clock.now = 12.0``; stderr is not a terminal."""

    class Clock:
        now = 0.0

    monkeypatch.setattr(progress_module, "_now", lambda: Clock.now)
    monkeypatch.setattr(progress_module, "_is_terminal", lambda: False)
    return Clock


@pytest.fixture
def lines(caplog):
    caplog.set_level(logging.INFO, logger="elmo.progress")
    return lambda: progress_lines(caplog)


def test_on_a_terminal_it_is_a_tqdm_bar_with_its_total(monkeypatch):
    monkeypatch.setattr(progress_module, "_is_terminal", lambda: True)
    with progress(total=40, desc="scoring", unit="tokens") as bar:
        assert isinstance(bar, tqdm) and bar.total == 40 and not bar.disable
    assert progress(range(7), desc="x").total == 7  # the iterable's length
    assert progress(total=3, enabled=False).disable


def test_elsewhere_a_line_every_tenth_of_the_total(clock, lines):
    for _ in progress(range(100), desc="counting the words", unit="lines"):
        clock.now += 1.0  # 100 s in all
    written = lines()
    assert len(written) == 10
    assert written[0].startswith("counting the words: 10/100 lines (10%), 10 s, 1 lines/s, about ")
    assert written[4].startswith("counting the words: 50/100 lines (50%), 50 s, 1 lines/s")
    assert "about 50 s left" in written[4]
    assert written[-1].startswith("counting the words: 100/100 lines (100%), 1 min 40 s")


def test_without_a_total_a_line_every_30_seconds_and_one_at_the_end(clock, lines):
    with progress(desc="reading", unit="lines") as bar:
        for _ in range(100):
            clock.now += 1.0
            bar.update(2)
    written = lines()
    assert [line.split(",")[0] for line in written] == [
        "reading: 60 lines", "reading: 120 lines", "reading: 180 lines", "reading: 200 lines"
    ]  # fmt: skip
    assert written[0] == "reading: 60 lines, 30 s, 2 lines/s"
    assert written[-1].endswith(", done")


def test_a_short_pass_writes_nothing(clock, lines):
    for _ in progress(range(1000), desc="quick"):
        clock.now += 0.004  # 4 s in all, under QUIET_S
    assert lines() == []


def test_postfix_values_and_a_resumed_count(clock, lines):
    bar = progress(total=200, initial=100, desc="training", unit="steps")
    clock.now = 40.0
    bar.set_postfix(loss="2.310", lr="0.001")
    bar.update(10)
    assert lines() == [
        "training: 110/200 steps (55%), 40 s, 0.25 steps/s, about 6 min 00 s left, loss=2.310, "
        + "lr=0.001"
    ]  # the rate counts only this run's steps


def test_bytes_are_scaled():
    line = LogProgress(total=3 * 2**20, unit="B", unit_scale=True, unit_divisor=1024)
    line.n = 2**20
    assert line.line(now=line._started + 2).startswith("1.00M/3.00M B (33%), 2 s, 512k B/s")


def test_disabled_writes_nothing(clock, lines):
    for _ in progress(range(10), enabled=False):
        clock.now += 60
    assert lines() == []


def test_the_helper_for_other_tests(monkeypatch, caplog):
    log_every_update(monkeypatch, caplog)
    for _ in progress(range(3), total=3, desc="each"):
        pass
    assert [line.split(",")[0] for line in progress_lines(caplog, "each")] == [
        "each: 1/3 it (33%)", "each: 2/3 it (67%)", "each: 3/3 it (100%)"
    ]  # fmt: skip


def test_a_heartbeat_while_work_that_cannot_count_runs(monkeypatch, lines):
    monkeypatch.setattr(progress_module, "EVERY_S", 0.02)
    monkeypatch.setattr(progress_module, "QUIET_S", 0.0)
    with heartbeat("training the sentencepiece model"):
        time.sleep(0.2)  # releases the GIL, as sentencepiece's training does
    written = lines()
    assert len(written) >= 2
    assert written[0].startswith("training the sentencepiece model: still at it, 0 s")
    assert written[-1] == "training the sentencepiece model: done in 0 s"


@pytest.mark.parametrize(
    "seconds, text", [(4.4, "4 s"), (59.6, "1 min 00 s"), (187, "3 min 07 s"), (7500, "2 h 05 min")]
)
def test_duration(seconds, text):
    assert duration(seconds) == text
