"""elmo/openmp.py: the OpenMP spin setting is made before torch loads, and never over the user's."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from elmo import openmp


@pytest.fixture
def no_torch_yet(monkeypatch):
    """As if torch were not imported yet, with none of the settings in the environment."""
    monkeypatch.delitem(sys.modules, "torch")
    for name in (*openmp.USER_SETTINGS, openmp.KEEP_DEFAULTS):
        monkeypatch.delenv(name, raising=False)


def test_sets_the_spin_count_before_torch(no_torch_yet):
    assert openmp.share_cores_when_busy()
    assert os.environ["GOMP_SPINCOUNT"] == openmp.SPIN_COUNT


@pytest.mark.parametrize("name, value", [("GOMP_SPINCOUNT", "300000"), ("OMP_WAIT_POLICY", "ACTIVE")])
def test_keeps_the_users_setting(no_torch_yet, monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    assert not openmp.share_cores_when_busy()
    assert os.environ[name] == value
    assert os.environ.get("GOMP_SPINCOUNT", value) == value  # nothing else was added


def test_opt_out_keeps_libgomp_defaults(no_torch_yet, monkeypatch):
    monkeypatch.setenv(openmp.KEEP_DEFAULTS, "1")
    assert not openmp.share_cores_when_busy()
    assert "GOMP_SPINCOUNT" not in os.environ


def test_too_late_once_torch_is_loaded(monkeypatch):
    for name in openmp.USER_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    assert "torch" in sys.modules  # the test session has loaded it
    assert not openmp.share_cores_when_busy()
    assert "GOMP_SPINCOUNT" not in os.environ


def test_importing_elmo_sets_it_before_torch_loads():
    env = {k: v for k, v in os.environ.items() if k not in (*openmp.USER_SETTINGS, openmp.KEEP_DEFAULTS)}
    code = "import elmo, os, sys; print(os.environ.get('GOMP_SPINCOUNT'), 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == [openmp.SPIN_COUNT, "True"]
