"""The files elmo keeps: one error for a damaged one, checksums, and atomic writes.

Every file of run state and every model file is written through ``atomic_write``: into a hidden
temporary file beside the target (``.NAME.tmp-PID``), flushed to disk, then renamed over the
target with ``os.replace``. A reader (or a rerun after a crash) sees the old file or the new one,
never half of one. A process killed between the write and the rename leaves its temporary file;
``remove_leftover_temps`` deletes those of processes that are gone.

Every such rename goes through ``replace``, which is where the fault tests (tests/faults) kill a
run: ``ELMO_FAULT_KILL_AT=NAME:STAGE:N`` makes this process SIGKILL itself the Nth time a file
named NAME reaches STAGE, ``before_rename`` (the temporary file written and synced, the target
untouched) or ``after_rename`` (the new file in place, nothing after it done). Unset, the hook
costs one environment lookup per write.

Imports nothing else of elmo and no torch, so every layer may use it.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import signal
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)

_TEMP_NAME = re.compile(r"^\..+\.tmp-(\d+)$")  # what temp_path makes: .NAME.tmp-PID

FAULT_ENV = "ELMO_FAULT_KILL_AT"  # "NAME:STAGE:N": the fault tests' kill switch (see replace)
FAULT_STAGES = ("before_rename", "after_rename")
_faults_reached: Counter[tuple[str, str]] = Counter()  # (file name, stage) -> times, this process


class ModelFileError(ValueError):
    """A model file or a file of a run's state that is damaged, torn, or does not match what
    recorded it. The message names the file (and says what to delete, where that helps)."""


class InputFileError(ValueError):
    """A problem with a user's input file; the message names the file and, where there is one,
    the line."""


def decode_line(raw: bytes, path: str | os.PathLike, number: int) -> str:
    """Line ``number`` of ``path`` as text; InputFileError naming the file, line, byte and column
    if it is not UTF-8."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InputFileError(
            f"{path}:{number}: invalid UTF-8 (byte 0x{raw[error.start]:02x} at column "
            f"{error.start + 1})"
        ) from None


def sha256_file(path: str | os.PathLike) -> str:
    """The hex sha256 of a file's bytes (read in 1 MiB chunks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_bytes(data: bytes) -> str:
    """The hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def temp_path(path: str | os.PathLike) -> Path:
    """The hidden temporary file this process writes before renaming it to ``path``."""
    path = Path(path)
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w") -> Iterator[IO]:
    """Open a temporary file for writing; on success it replaces ``path`` in one rename.

    Args:
        path: the file to (re)write.
        mode: "w" (UTF-8 text) or "wb".
    """
    tmp = temp_path(path)
    try:
        with open(tmp, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def replace(tmp: str | os.PathLike, path: str | os.PathLike) -> None:
    """Rename ``tmp`` over ``path`` in one step (``os.replace``): the commit of an atomic write.

    With ``ELMO_FAULT_KILL_AT`` set, this process kills itself with SIGKILL at the point it names
    (module docstring), as a power cut or ``kill -9`` would stop it there.
    """
    _fault_point(path, "before_rename")
    os.replace(tmp, path)
    _fault_point(path, "after_rename")


def _fault_point(path: str | os.PathLike, stage: str) -> None:
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return
    name, wanted_stage, nth = _parse_fault(spec)
    if stage != wanted_stage or Path(path).name != name:
        return
    _faults_reached[name, stage] += 1
    if _faults_reached[name, stage] == nth:
        log.warning("%s=%s: killing this process", FAULT_ENV, spec)
        os.kill(os.getpid(), signal.SIGKILL)


def _parse_fault(spec: str) -> tuple[str, str, int]:
    """``NAME:STAGE:N`` as (file name, stage, N >= 1); ValueError naming what is wrong, so that a
    mistyped kill point fails the test instead of never firing."""
    parts = spec.rsplit(":", 2)
    if len(parts) != 3 or not parts[0] or parts[1] not in FAULT_STAGES or not parts[2].isdecimal():
        raise ValueError(
            f"{FAULT_ENV}={spec!r}: expected NAME:STAGE:N, STAGE one of {', '.join(FAULT_STAGES)}, "
            f"N a count from 1 (e.g. checkpoint.pt:before_rename:2)"
        )
    if int(parts[2]) < 1:
        raise ValueError(f"{FAULT_ENV}={spec!r}: N counts from 1")
    return parts[0], parts[1], int(parts[2])


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_write(path, "wb") as handle:
        handle.write(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_write(path, "w") as handle:
        handle.write(text)


def remove_leftover_temps(folder: str | os.PathLike, target: str | None = None) -> list[Path]:
    """Delete the temporary files (``.NAME.tmp-PID``) that processes now gone left in ``folder``.

    A file whose process still runs is kept: it may be writing it now. ``target``: only those
    of the file of this name (in a folder that is not ours alone, e.g. a user's output folder).

    Returns:
        The files removed.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for path in folder.iterdir():
        match = _TEMP_NAME.match(path.name)
        if match is None or not path.is_file() or _process_alive(int(match.group(1))):
            continue
        if target is not None and not path.name.startswith(f".{target}.tmp-"):
            continue
        path.unlink(missing_ok=True)
        removed.append(path)
        log.info("removed %s, left by an interrupted write", path)
    return removed


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    except OSError:
        return False
    return True
