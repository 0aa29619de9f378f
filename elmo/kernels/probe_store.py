"""The CPU kernel's probe answers, kept from one process to the next.

Each lever of ``elmo.kernels.cpu`` has a probe that multiplies random data of a weight's shape
two ways and compares the bits (``packing_keeps_bits``, ``rows_are_independent``, ...), once
per weight shape, dtype and thread count. A fresh process pays for them again: on the published
ORIGINAL shape about 0.9 s of a 2.4 s ``elmo embed`` of one sentence (Intel Xeon, cProfile),
more than the sentence itself. Their answers depend on nothing but the CPU, the libraries and
their settings, so they are kept in a JSON file named by a fingerprint of exactly those
(``fingerprint``): ``$ELMO_CACHE/probes/<fingerprint>.json`` (the cache folder of
``elmo.hub``). Another CPU, torch, MKL, core count or MKL/OpenMP/oneDNN setting reads another
file, so a kept answer is only ever used where the probe would give it again.

``ELMO_PROBE_CACHE`` chooses: ``off`` (or ``0``) probes in every process and keeps nothing
(the tests run so, but for their own tests of this module); a folder keeps the files there.
A file that cannot be read or holds anything but answers is ignored (and rewritten); a folder
that cannot be written leaves each process to probe for itself. Neither is an error: only
time is at stake, never a bit.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import torch

from elmo.hub.resolve import cache_dir

T = TypeVar("T", bool, frozenset)

STORE_ENV = "ELMO_PROBE_CACHE"
OFF = ("off", "0")
# Settings read by the libraries whose kernels the probes test (MKL, OpenMP, oneDNN, ATen's
# dispatch) or that replace them (LD_PRELOAD): part of the fingerprint.
SETTING_PREFIXES = ("MKL_", "KMP_", "OMP_", "GOMP_", "ONEDNN_", "DNNL_", "ATEN_", "LD_PRELOAD")
CPUINFO_FIELDS = ("vendor_id", "cpu family", "model", "model name", "stepping", "microcode", "flags")

_ANSWERS: dict[str, bool | frozenset] = {}  # this process's answers, by ``entry_name``
_STORED: dict[str, bool | list[int]] | None = None  # the file's, read on the first miss
_WRITING = threading.Lock()  # the side thread of the exact kernel probes too


def remembered(
    kind: str, key: tuple, compute: Callable[[], T], answer_type: type[T], on_disk: bool = True
) -> T:
    """The probe ``kind``'s answer for ``key`` (shape, dtype, threads, ...): this process's, else
    the kept one, else ``compute()``'s, which is then kept.

    Args:
        answer_type: bool, or frozenset (of row counts: kept as a sorted list of ints).
        on_disk: False for an answer about another device than the CPU (kept in this process).
    """
    name = entry_name(kind, key)
    if name not in _ANSWERS:
        answer = _decode(_stored().get(name), answer_type) if on_disk else None
        if answer is None:
            answer = compute()
            if on_disk:
                _keep(name, answer)
        _ANSWERS[name] = answer
    return _ANSWERS[name]


def entry_name(kind: str, key: tuple) -> str:
    return f"{kind} {key!r}"


def store_path() -> Path | None:
    """The file this process's answers are kept in; None when keeping is off."""
    setting = os.environ.get(STORE_ENV)
    if setting is not None and setting.strip().lower() in OFF:
        return None
    folder = Path(setting) if setting else cache_dir() / "probes"
    return folder / f"{fingerprint()}.json"


def fingerprint() -> str:
    """A short hash of everything a probe's answer may depend on besides its key."""
    text = json.dumps(fingerprint_parts(), sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:20]


def fingerprint_parts() -> dict[str, object]:
    return {
        "torch": torch.__version__,
        "build": torch.__config__.show(),  # MKL's and oneDNN's versions, the CPU capability
        "capability": torch.backends.cpu.get_cpu_capability(),
        "machine": [platform.system(), platform.machine(), platform.processor()],
        "cpu": cpu_identity(),
        "cores": [os.cpu_count(), len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None],
        "settings": {k: v for k, v in os.environ.items() if k.startswith(SETTING_PREFIXES)},
    }


def forget() -> None:
    """Drop this process's answers and its reading of the file (tests: a process starting)."""
    global _STORED
    _ANSWERS.clear()
    _STORED = None


def cpu_identity() -> dict[str, object]:
    """The first processor's identity in /proc/cpuinfo and the caches' sizes (Linux)."""
    identity: dict[str, object] = {}
    try:
        block = Path("/proc/cpuinfo").read_text().split("\n\n")[0]
    except OSError:
        return identity
    for line in block.splitlines():
        field, _, value = line.partition(":")
        if field.strip() in CPUINFO_FIELDS:
            identity[field.strip()] = value.strip()
    caches = sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*/size"))
    identity["caches"] = [_read(path) for path in caches]
    return identity


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _stored() -> dict[str, bool | list[int]]:
    global _STORED
    if _STORED is None:
        path = store_path()
        _STORED = _read_answers(path) if path is not None else {}
    return _STORED


def _read_answers(path: Path) -> dict[str, bool | list[int]]:
    """The answers kept in ``path``; {} for a missing, unreadable or malformed file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return {}
    answers = data.get("answers") if isinstance(data, dict) else None
    if not isinstance(answers, dict):
        return {}
    return {name: value for name, value in answers.items() if _is_answer(value)}


def _is_answer(value: object) -> bool:
    if isinstance(value, bool):
        return True
    return isinstance(value, list) and all(type(item) is int for item in value)


def _decode(value: bool | list[int] | None, answer_type: type[T]) -> T | None:
    if answer_type is bool and isinstance(value, bool):
        return value
    if answer_type is frozenset and isinstance(value, list):
        return frozenset(value)
    return None


def _keep(name: str, answer: bool | frozenset) -> None:
    """Add one answer to the file (merged with what other processes kept since it was read)."""
    path = store_path()
    if path is None:
        return
    value = answer if isinstance(answer, bool) else sorted(answer)
    with _WRITING:
        _stored()[name] = value
        answers = {**_read_answers(path), name: value}
        text = json.dumps({"about": fingerprint_parts(), "answers": answers}, indent=1, sort_keys=True)
        # Written whole, then renamed: a reader sees the old file or the new one. No fsync: a
        # file lost in a crash is probed again, and a sync per answer would cost more than that.
        temp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            temp.write_text(text + "\n", encoding="utf-8")
            os.replace(temp, path)
        except OSError:  # a folder we cannot write: each process probes for itself
            with contextlib.suppress(OSError):
                temp.unlink()
