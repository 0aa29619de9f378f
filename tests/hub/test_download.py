"""Fetching one file: every network rule, against a local server (``tests/http_server.py``).

The public source in these tests is ``example.invalid`` (a name that never resolves): every
byte comes from the local server through ``ELMO_MIRROR`` (the ``hub_settings`` fixture).
"""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest
from http_server import Fault

from elmo.hub import ChecksumError, DownloadError, OfflineError, RemoteFile, fetch_file
from elmo.hub.download import ATTEMPTS, source_url
from elmo.hub.resolve import cache_path

PATH = "data/toy/corpus.bin"
DATA = random.Random(0).randbytes(100_000)


def _remote(server, data: bytes = DATA, sha256: str | None = None) -> RemoteFile:
    server.files[PATH] = data
    digest = sha256 or hashlib.sha256(data).hexdigest()
    return RemoteFile(PATH, "https://example.invalid/corpus.bin", digest)


def _files_in(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if not p.is_dir())


def test_a_download_lands_in_the_cache_whole_and_only_once(hub_settings, file_server):
    remote = _remote(file_server)
    path = fetch_file(remote, cache_path(remote), "toy")
    assert path == hub_settings / "data" / "toy" / "corpus.bin"
    assert path.read_bytes() == DATA
    assert _files_in(hub_settings) == ["data/toy/corpus.bin"]  # no .part, no .lock
    assert fetch_file(remote, cache_path(remote), "toy") == path
    assert file_server.requests_for(PATH) == [None]  # the second call found it


def test_an_interrupted_download_resumes_where_it_stopped(hub_settings, file_server):
    remote = _remote(file_server)
    file_server.faults[PATH].append(Fault(cut_after=30_000))
    path = fetch_file(remote, cache_path(remote), "toy")
    assert path.read_bytes() == DATA
    assert file_server.requests_for(PATH) == [None, "bytes=30000-"]


def test_a_part_left_by_a_killed_process_is_resumed(hub_settings, file_server):
    remote = _remote(file_server)
    destination = cache_path(remote)
    destination.parent.mkdir(parents=True)
    destination.with_name(destination.name + ".part").write_bytes(DATA[:40_000])
    assert fetch_file(remote, destination, "toy").read_bytes() == DATA
    assert file_server.requests_for(PATH) == ["bytes=40000-"]


def test_a_server_that_ignores_range_gets_the_file_from_the_start(hub_settings, file_server):
    remote = _remote(file_server)
    destination = cache_path(remote)
    destination.parent.mkdir(parents=True)
    destination.with_name(destination.name + ".part").write_bytes(b"x" * 1000)
    file_server.faults[PATH].append(Fault(ignore_range=True))
    assert fetch_file(remote, destination, "toy").read_bytes() == DATA


def test_a_checksum_mismatch_is_an_error_and_keeps_nothing(hub_settings, file_server):
    remote = _remote(file_server, sha256="0" * 64)
    with pytest.raises(ChecksumError, match=r"has sha256 [0-9a-f]{64}, expected 0{64}; nothing"):
        fetch_file(remote, cache_path(remote), "toy")
    assert _files_in(hub_settings) == []


def test_offline_refuses_with_one_line_saying_what_to_fetch_and_where(
    hub_settings, file_server, monkeypatch
):
    monkeypatch.setenv("ELMO_OFFLINE", "1")
    remote = _remote(file_server)
    with pytest.raises(OfflineError) as caught:
        fetch_file(remote, cache_path(remote), "data set toy")
    message = str(caught.value)
    assert "\n" not in message
    assert "ELMO_OFFLINE=1" in message and "data set toy" in message
    assert f"fetch {file_server.url}/{PATH} and save it as {cache_path(remote)}" in message
    assert file_server.requests == []


def test_404_is_reported_at_once(hub_settings, file_server):
    remote = RemoteFile(PATH, "https://example.invalid/corpus.bin")  # not on the server
    with pytest.raises(DownloadError, match="answered 404"):
        fetch_file(remote, cache_path(remote), "toy")
    assert file_server.requests_for(PATH) == [None]  # not retried
    assert _files_in(hub_settings) == []


def test_500_is_retried_and_then_reported(hub_settings, file_server):
    remote = _remote(file_server)
    file_server.faults[PATH].extend(Fault(status=500) for _ in range(ATTEMPTS))
    with pytest.raises(DownloadError, match=f"answered 500 .*after {ATTEMPTS} tries"):
        fetch_file(remote, cache_path(remote), "toy")
    assert len(file_server.requests_for(PATH)) == ATTEMPTS
    assert _files_in(hub_settings) == []


def test_a_passing_500_is_retried_to_success(hub_settings, file_server):
    remote = _remote(file_server)
    file_server.faults[PATH].append(Fault(status=503))
    assert fetch_file(remote, cache_path(remote), "toy").read_bytes() == DATA


def test_a_cache_folder_that_cannot_be_written_is_a_clear_error(hub_settings, file_server):
    # A folder below a regular file cannot be made, even by root (chmod would not stop root).
    blocker = hub_settings.parent / "not-a-folder"
    blocker.write_text("")
    remote = _remote(file_server)
    with pytest.raises(
        DownloadError, match="cannot write the cache folder .*not-a-folder.*ELMO_CACHE"
    ):
        fetch_file(remote, blocker / "cache" / "corpus.bin", "toy")
    assert file_server.requests == []


_CHILD = """
import logging, sys, time
from pathlib import Path
from elmo.hub import RemoteFile, fetch_file
logging.basicConfig(level=logging.INFO)
ready, go, destination, url, sha256 = sys.argv[1:]
Path(ready).touch()
while not Path(go).exists():
    time.sleep(0.005)
fetch_file(RemoteFile("data/toy/corpus.bin", url, sha256), Path(destination), "toy")
"""


def test_two_processes_fetching_the_same_file_leave_one_good_file(hub_settings, file_server):
    remote = _remote(file_server)
    file_server.faults[PATH].append(Fault(seconds_per_chunk=0.05))  # 0.5 s: long enough to meet
    destination = cache_path(remote)
    go = hub_settings.parent / "go"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    children = []
    for number in range(2):
        ready = hub_settings.parent / f"ready-{number}"
        arguments = [ready, go, destination, f"{file_server.url}/{PATH}", remote.sha256]
        children.append((ready, subprocess.Popen(
            [sys.executable, "-c", _CHILD, *map(str, arguments)], env=env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )))  # fmt: skip
    deadline = time.monotonic() + 60
    while not all(ready.exists() for ready, _ in children) and time.monotonic() < deadline:
        time.sleep(0.01)
    go.touch()  # both start fetching now
    logs = ""
    for _, child in children:
        _, stderr = child.communicate(timeout=60)
        assert child.returncode == 0, stderr[-2000:]
        logs += stderr
    assert "waiting for another process" in logs  # they did meet
    assert destination.read_bytes() == DATA
    assert _files_in(destination.parent) == ["corpus.bin"]  # no torn file, no .part, no .lock
    assert file_server.requests_for(PATH) == [None]  # the second waited and used the first's


def test_the_mirror_prefix_replaces_the_public_source(monkeypatch):
    remote = RemoteFile("models/elmo-small/options.json", "https://example.invalid/o.json")
    monkeypatch.delenv("ELMO_MIRROR", raising=False)
    assert source_url(remote) == "https://example.invalid/o.json"
    monkeypatch.setenv("ELMO_MIRROR", "http://mirror.local/elmo/")
    assert source_url(remote) == "http://mirror.local/elmo/models/elmo-small/options.json"
