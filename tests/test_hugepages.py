"""elmo/hugepages.py: torch's huge-page setting is made before torch loads, never over the user's,
and large tensors then sit on huge pages where the kernel allows them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from elmo import hugepages

THP_MODE = Path("/sys/kernel/mm/transparent_hugepage/enabled")


@pytest.fixture
def no_torch_yet(monkeypatch):
    """As if torch were not imported yet, with the setting absent from the environment."""
    monkeypatch.delitem(sys.modules, "torch")
    monkeypatch.delenv(hugepages.SETTING, raising=False)


def test_sets_it_before_torch(no_torch_yet):
    assert hugepages.use_huge_pages()
    assert os.environ[hugepages.SETTING] == "1"


def test_keeps_the_users_setting(no_torch_yet, monkeypatch):
    monkeypatch.setenv(hugepages.SETTING, "0")
    assert not hugepages.use_huge_pages()
    assert os.environ[hugepages.SETTING] == "0"


def test_too_late_once_torch_is_loaded(monkeypatch):
    monkeypatch.delenv(hugepages.SETTING, raising=False)
    assert "torch" in sys.modules  # the test session has loaded it
    assert not hugepages.use_huge_pages()
    assert hugepages.SETTING not in os.environ


def _run(code: str, **settings: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != hugepages.SETTING} | settings
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout


def test_importing_elmo_sets_it_before_torch_loads():
    code = f"import elmo, os, sys; print(os.environ.get({hugepages.SETTING!r}), 'torch' in sys.modules)"
    assert _run(code).split() == ["1", "True"]


# A fresh 64 MiB tensor, then the huge-page kilobytes of the mapping that holds it.
HUGE_KB = """
import elmo, torch
x = torch.ones(16 * 2**20)
address, lines, huge = x.data_ptr(), open('/proc/self/smaps').read().splitlines(), None
for line in lines:
    if '-' in line.split()[0]:
        start, end = (int(a, 16) for a in line.split()[0].split('-'))
        inside = start <= address < end
    elif inside and line.startswith('AnonHugePages:'):
        huge = int(line.split()[1])
print(huge)
"""


@pytest.mark.skipif(
    not THP_MODE.exists() or "[never]" in THP_MODE.read_text(), reason="the kernel gives no huge pages"
)
def test_large_tensors_get_huge_pages():
    with_setting, without = int(_run(HUGE_KB)), int(_run(HUGE_KB, **{hugepages.SETTING: "0"}))
    assert with_setting >= 32 * 1024  # most of the 64 MiB (the kernel may fall back for a few)
    if "[madvise]" in THP_MODE.read_text():
        assert without == 0  # under madvise only torch's request brings them
