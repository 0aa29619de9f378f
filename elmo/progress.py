"""Progress of a long pass: a tqdm bar on a terminal, periodic log lines anywhere else.

Everything in elmo that makes a user wait (training, scoring a text, counting a vocabulary,
embedding, downloading) reports through ``progress``. On a terminal (stderr is a tty) that is a
tqdm bar. Where stderr is a file or a pipe (a batch job, ``nohup``, CI), a bar would be either
silent (tqdm's ``disable=None``) or a stream of carriage returns; instead a ``LogProgress`` writes
an INFO line to the ``elmo.progress`` logger every ``EVERY_FRACTION`` of the total or every
``EVERY_S`` seconds, whichever comes first, with the count, the total, the rate and the time
left. A pass that ends within ``QUIET_S`` writes no line at all. Work that cannot count its
progress runs inside ``heartbeat``: a line every ``EVERY_S`` seconds that says it is still going.

Imports nothing else of elmo and no torch, so every layer may use it.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

log = logging.getLogger(__name__)

EVERY_S = 30.0  # a log line at least this often (seconds) ...
EVERY_FRACTION = 0.1  # ... and at every tenth of a known total
QUIET_S = 5.0  # no line for a pass that has run less than this (seconds)

_now = time.monotonic  # the clock (tests replace it)


def progress(
    iterable: Iterable | None = None,
    *,
    total: float | None = None,
    desc: str = "",
    unit: str = "it",
    initial: float = 0,
    enabled: bool = True,
    leave: bool = True,
    unit_scale: bool = False,
    unit_divisor: int = 1000,
) -> Any:
    """A progress reporter over ``iterable`` (iterate it) or driven by ``update(n)``.

    Returns an object with tqdm's interface as far as elmo uses it: iteration, ``update(n)``,
    ``set_postfix(**values)``, ``close()``, and use as a context manager.

    Args:
        iterable: what to iterate (its length is the total when it has one and ``total`` is None).
        total: the count at which the pass is complete; None when unknown.
        desc: what is being done ("scoring valid"), the start of every line.
        unit: what is counted ("batch", "line", "B").
        initial: the count already done (a resumed pass).
        enabled: False reports nothing (e.g. on every process of a run but the main one).
        leave: keep the tty bar on screen once closed.
        unit_scale, unit_divisor: counts as 1.2k / 3.4M (divisor 1024 for bytes).
    """
    from tqdm import tqdm

    if total is None and iterable is not None and hasattr(iterable, "__len__"):
        total = len(iterable)
    if enabled and not _is_terminal():
        return LogProgress(iterable, total=total, desc=desc, unit=unit, initial=initial,
                           unit_scale=unit_scale, unit_divisor=unit_divisor)  # fmt: skip
    return tqdm(iterable, total=total, desc=desc, unit=unit, initial=initial, leave=leave,
                unit_scale=unit_scale, unit_divisor=unit_divisor, disable=not enabled,
                dynamic_ncols=True, file=sys.stderr)  # fmt: skip


def _is_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced by an object without it, or closed
        return False


class LogProgress:
    """Progress as log lines (see the module docstring for when a line is written).

    A line reads ``scoring valid: 120,000/434,000 tokens (28%), 1 min 05 s, 1,846 tokens/s,
    about 2 min 50 s left`` (without a total: the count, the time and the rate), followed by the
    values of ``set_postfix``.
    """

    def __init__(
        self,
        iterable: Iterable | None = None,
        *,
        total: float | None = None,
        desc: str = "",
        unit: str = "it",
        initial: float = 0,
        unit_scale: bool = False,
        unit_divisor: int = 1000,
    ) -> None:
        self.iterable = iterable
        self.total = total
        self.desc = desc
        self.unit = unit.strip()
        self.n = self.initial = initial
        self.unit_scale, self.unit_divisor = unit_scale, unit_divisor
        self.postfix = ""
        self.lines = 0  # log lines written so far
        self._started = self._last_time = _now()
        self._last_n = initial
        self._next_mark = self._mark_after(initial)
        self._closed = False

    def __iter__(self) -> Iterator:
        for item in self.iterable:
            yield item
            self.update(1)
        self.close()

    def __enter__(self):  # -> Self (typing.Self needs Python 3.11)
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def update(self, n: float = 1) -> None:
        """Count ``n`` more; write a line when one is due."""
        self.n += n
        now = _now()
        if now - self._started < QUIET_S:
            return
        if now - self._last_time >= EVERY_S or (
            self._next_mark is not None and self.n >= self._next_mark
        ):
            self._write(now)

    def set_postfix(self, ordered_dict: dict | None = None, refresh: bool = True, **values) -> None:
        """Values shown at the end of the next lines (``loss=2.31``), as tqdm's."""
        values = {**(ordered_dict or {}), **values}
        self.postfix = ", ".join(f"{key}={value}" for key, value in values.items())

    def close(self) -> None:
        """Write the final count, if any line was written or the pass was not short."""
        if self._closed:
            return
        self._closed = True
        now = _now()
        if self.n != self._last_n and (self.lines or now - self._started >= QUIET_S):
            self._write(now, done=True)

    def _mark_after(self, n: float) -> float | None:
        """The next count at a whole tenth of the total, after ``n``."""
        if not self.total:
            return None
        step = self.total * EVERY_FRACTION
        return (int(n / step) + 1) * step

    def _write(self, now: float, done: bool = False) -> None:
        self.lines += 1
        self._last_time, self._last_n = now, self.n
        self._next_mark = self._mark_after(self.n)
        log.info("%s", self.line(now, done))

    def line(self, now: float, done: bool = False) -> str:
        """The text of a progress line at time ``now``."""
        elapsed = max(now - self._started, 1e-9)
        rate = (self.n - self.initial) / elapsed
        count = self._count(self.n)
        if self.total:
            count += f"/{self._count(self.total)} {self.unit} ({100 * self.n / self.total:.0f}%)"
        else:
            count += f" {self.unit}"
        parts = [f"{self.desc}: {count}" if self.desc else count, duration(elapsed),
                 f"{self._count(rate, rate=True)} {self.unit}/s"]  # fmt: skip
        if self.total and not done and rate > 0 and self.n < self.total:
            parts.append(f"about {duration((self.total - self.n) / rate)} left")
        if done:
            parts.append("done")
        if self.postfix:
            parts.append(self.postfix)
        return ", ".join(parts)

    def _count(self, value: float, rate: bool = False) -> str:
        if self.unit_scale:
            from tqdm import tqdm

            return tqdm.format_sizeof(value, divisor=self.unit_divisor)
        if rate and value < 100:
            return f"{value:.3g}"
        return f"{value:,.0f}"


@contextlib.contextmanager
def heartbeat(desc: str) -> Iterator[None]:
    """Log that ``desc`` is still going every ``EVERY_S`` seconds while the block runs, and how
    long it took if that was not short: for work that cannot count its progress (a library
    call that runs for minutes, as sentencepiece's training).

    The lines come from a daemon thread, so the work must release the GIL now and then (C++
    code that holds it for minutes would delay them, never break them).
    """
    started = _now()
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(EVERY_S):
            log.info("%s: still at it, %s", desc, duration(_now() - started))

    thread = threading.Thread(target=beat, name="elmo-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        elapsed = _now() - started
        if elapsed >= QUIET_S:
            log.info("%s: done in %s", desc, duration(elapsed))


def duration(seconds: float) -> str:
    """``42 s``, ``3 min 07 s``, ``2 h 05 min``."""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
