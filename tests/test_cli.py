"""The ``elmo`` command itself (its subcommands are tested in tests/commands/)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

import elmo
from elmo.cli import main
from elmo.pretrained import save_pretrained


def test_version_prints_the_package_version(capsys):
    with pytest.raises(SystemExit) as caught:
        main(["--version"])
    assert caught.value.code == 0
    assert capsys.readouterr().out.strip() == f"elmo {elmo.__version__}"


@pytest.mark.parametrize(
    "signum, code, message",
    [(signal.SIGTERM, 143, "elmo embed: terminated"), (signal.SIGINT, 130, "elmo embed: interrupted")],
)
def test_a_signal_during_embed_leaves_no_partial_file(tmp_path, tiny_bilm, signum, code, message):
    model = save_pretrained(tiny_bilm, tmp_path / "model")
    source = tmp_path / "in.txt"
    source.write_text("the river bank was flooded .\n" * 200_000, encoding="utf-8")
    out = tmp_path / "out"
    out.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "elmo.cli", "embed", str(source), str(out / "vectors.hdf5"),
               "--all", "--model", str(model)]  # fmt: skip
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not any(out.iterdir()):  # the hidden partial file, made once the input is read
            assert process.poll() is None, process.stderr.read()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(1.0)  # into the embedding
        assert process.poll() is None, "embedding ended before the signal; make the input longer"
        process.send_signal(signum)
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == code, stderr[-2000:]  # rc 0 once in CI: the signal was lost
    assert stderr.strip().splitlines()[-1] == message
    assert list(out.iterdir()) == []  # neither the output nor the hidden partial file


def test_the_partial_file_of_a_killed_embed_is_removed_at_the_next_start(tmp_path, tiny_bilm):
    model = save_pretrained(tiny_bilm, tmp_path / "model")
    source = tmp_path / "in.txt"
    source.write_text("the river bank\n", encoding="utf-8")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    left = tmp_path / f".vectors.hdf5.tmp-{int(dead.stdout)}"  # as kill -9 leaves it
    left.write_bytes(b"\0" * 100)
    assert main(["embed", str(source), str(tmp_path / "vectors.hdf5"), "--top", "--model",
                 str(model)]) == 0  # fmt: skip
    assert not left.exists() and (tmp_path / "vectors.hdf5").is_file()


@pytest.mark.parametrize("signum, raised", [(signal.SIGTERM, "Terminated"), (signal.SIGINT, "KeyboardInterrupt")])
def test_a_signal_whose_exception_was_lost_still_ends_the_next_step(signum, raised):
    from elmo import cli

    expected = cli.Terminated if raised == "Terminated" else KeyboardInterrupt
    before = signal.getsignal(signum)
    with cli._signals_raise():
        cli.raise_if_signalled()  # no signal: nothing
        with pytest.raises(expected):  # then lost, as in a weakref callback ("Exception ignored")
            os.kill(os.getpid(), signum)
            time.sleep(1.0)  # the handler runs between bytecodes, within this
        with pytest.raises(expected):
            cli.raise_if_signalled()
    assert signal.getsignal(signum) is before  # restored on the way out
    cli.raise_if_signalled()  # and nothing left for a later command


def test_python_m_elmo_cli_runs_the_elmo_cli_module_whose_signal_record_the_commands_read():
    # `python -m elmo.cli` executes cli.py a second time as __main__; its handlers must record a
    # signal where raise_if_signalled (imported from elmo.cli by the commands) looks, or a
    # signal whose exception was lost (a weakref callback) lets the run finish with exit 0.
    code = ("import runpy, sys, elmo.cli\n"
            "elmo.cli.main = lambda: print('elmo.cli.main') or 7\n"
            "sys.argv = ['elmo.cli', '--version']\n"
            "runpy.run_module('elmo.cli', run_name='__main__', alter_sys=True)\n")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout) == (7, "elmo.cli.main\n"), done.stderr
