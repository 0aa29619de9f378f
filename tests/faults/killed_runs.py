"""Training runs that are killed with SIGKILL and started again, quickly: a fork server.

``python -m elmo.train`` spends ~3.5 s importing torch and Hydra before it trains; a test that
kills and restarts a run a dozen times would spend most of its time there. ``TrainServer``
starts one process that imports them once and then forks a fresh child per run (the
``elmo-train`` entry point, with the same command line). The child is an ordinary process: its
files, its SIGKILL and what a rerun finds are those of ``elmo-train`` run from a shell. No
parallel region ever runs in the server (OMP_NUM_THREADS=1, nothing computed), so forking it
is safe.

Run as a script, this file is the server: one JSON request a line on stdin, answered with the
child's pid and, when it has ended, its exit code (negative: the signal that killed it).
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import traceback
from pathlib import Path

from elmo.files import FAULT_ENV


class TrainServer:
    """Runs ``elmo-train`` in children of one server process (``close`` it when done).

    Args:
        env: the server's environment (every run inherits it; one thread, see train_runs).
    """

    def __init__(self, env: dict[str, str]) -> None:
        env = {k: v for k, v in env.items() if k != FAULT_ENV}
        self._server = subprocess.Popen([sys.executable, __file__], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, env=env, bufsize=0)  # fmt: skip
        self.runs = 0

    def close(self) -> None:
        """End the server (a run of it has always ended: ``run`` waits for it)."""
        self._server.stdin.close()
        self._server.wait(timeout=30)

    def run(
        self,
        output_dir: Path,
        overrides: list[str],
        kill_at: str | None = None,
        kill_after: float | None = None,
        timeout: float = 120,
    ) -> int:
        """Train into ``output_dir`` (its log: ``output_dir``.log); returns the exit code.

        Args:
            kill_at: ``ELMO_FAULT_KILL_AT`` for this run (``NAME:STAGE:N``, elmo/files.py).
            kill_after: SIGKILL the run after this many seconds, unless it has ended by then.
        """
        request = {"overrides": [f"output_dir={output_dir}", *overrides],
                   "cwd": str(Path(output_dir).parent), "log": f"{output_dir}.log",
                   "env": {FAULT_ENV: kill_at}}  # fmt: skip
        self._server.stdin.write((json.dumps(request) + "\n").encode())
        pid = self._answer(timeout)["pid"]
        self.runs += 1
        if kill_after is not None and not self._ready(kill_after):
            os.kill(pid, signal.SIGKILL)  # still running: the server has not reaped it
        if not self._ready(timeout):
            os.kill(pid, signal.SIGKILL)
            self._answer(timeout)
            raise TimeoutError(f"elmo-train ran over {timeout} s; see {output_dir}.log")
        return self._answer(timeout)["code"]

    def _ready(self, seconds: float) -> bool:
        return bool(select.select([self._server.stdout], [], [], seconds)[0])

    def _answer(self, timeout: float) -> dict:
        if not self._ready(timeout):
            raise TimeoutError(f"the train server did not answer within {timeout} s")
        line = self._server.stdout.readline()
        if not line:
            raise RuntimeError(f"the train server ended (exit {self._server.wait()})")
        return json.loads(line)


def _serve() -> None:
    """Fork a child per request line; answer its pid, then its exit code once it has ended."""
    from elmo.train import main  # noqa: F401  (imported once, here: the point of the server)
    from elmo.training import run  # noqa: F401

    for line in sys.stdin:
        request = json.loads(line)
        sys.stdout.flush()
        pid = os.fork()
        if pid == 0:
            _child(request)
        print(json.dumps({"pid": pid}), flush=True)
        _, status = os.waitpid(pid, 0)
        print(json.dumps({"code": os.waitstatus_to_exitcode(status)}), flush=True)


def _child(request: dict) -> None:
    """Run ``elmo-train`` with the request's command line, output and environment; never return."""
    code = 1
    try:
        log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.chdir(request["cwd"])
        for name, value in request["env"].items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        sys.argv = ["elmo-train", *request["overrides"]]
        from elmo.train import main

        try:
            main()
            code = 0
        except SystemExit as done:
            code = done.code if isinstance(done.code, int) else int(done.code is not None)
    except BaseException:  # noqa: BLE001  (whatever it is, its traceback goes to the run's log)
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)  # not the server's exit handlers


if __name__ == "__main__":
    _serve()
