"""Fetching one file over HTTP(S) into the cache: the only code in ``elmo`` that uses the network.

The rules, each in one place:

* **Offline**: with ``ELMO_OFFLINE=1`` nothing is downloaded; asking for a missing file raises
  ``OfflineError``, one line that says what to fetch and where to put it.
* **Mirror**: ``ELMO_MIRROR=<URL prefix>`` reads every file from ``<prefix>/<its path in the
  cache>`` instead of its public source (a mirror is a copy of a filled cache folder served over
  HTTP; tests point it at a local server). Proxies: urllib honours ``https_proxy`` / ``no_proxy``.
* **Atomic**: a download goes to ``<file>.part`` and is renamed into place only once complete and
  checked, so a reader never sees a torn file.
* **Resumed**: a ``.part`` left by an interrupted download is continued with an HTTP Range
  request; a connection cut short is retried (resuming) a few times before giving up.
* **One writer**: a lock file (``<file>.lock``, POSIX ``flock``) makes a second process that wants
  the same file wait, then use the first one's result.
* **Checked**: a known sha256 is compared before the rename; on a mismatch nothing is kept.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import logging
import os
import re
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from elmo.hub.catalog import RemoteFile
from elmo.progress import progress

try:
    import fcntl
except ImportError:  # not POSIX (Windows): no lock; each process then writes its own .part
    fcntl = None

log = logging.getLogger(__name__)

OFFLINE_ENV = "ELMO_OFFLINE"
MIRROR_ENV = "ELMO_MIRROR"
ATTEMPTS = 3  # tries per file: a cut connection or a 5xx answer is retried, resuming
RETRY_WAIT_S = 1.0  # seconds before the second try, doubled before each further one
TIMEOUT_S = 60.0  # seconds without data before a connection counts as dead
CHUNK_BYTES = 1 << 20


class DownloadError(OSError):
    """A file could not be fetched or kept: network, HTTP status, checksum or cache folder."""


class OfflineError(DownloadError):
    """A file is missing and ``ELMO_OFFLINE=1`` forbids downloading it."""


class ChecksumError(DownloadError):
    """A file's sha256 is not the expected one."""


class _Retry(Exception):
    """This try failed in a way another try may fix (a cut connection, a 5xx answer)."""


def offline() -> bool:
    """Whether ``ELMO_OFFLINE`` forbids every download (any value but "", "0", "false", "no")."""
    return os.environ.get(OFFLINE_ENV, "").strip().lower() not in ("", "0", "false", "no")


def source_url(remote: RemoteFile) -> str:
    """Where ``remote`` is read from: its public URL, or its path below ``ELMO_MIRROR``."""
    mirror = os.environ.get(MIRROR_ENV, "").strip()
    return f"{mirror.rstrip('/')}/{remote.path}" if mirror else remote.url


def file_sha256(path: str | os.PathLike) -> str:
    """The hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(CHUNK_BYTES):
            digest.update(block)
    return digest.hexdigest()


def fetch_file(remote: RemoteFile, destination: Path, what: str) -> Path:
    """``destination`` holding ``remote``: as it is if present, else downloaded (see the module
    docstring for the rules).

    Args:
        remote: the file and its source.
        destination: where it goes in the cache.
        what: how messages name it, e.g. "data set wikitext2" (``elmo download`` takes the name).

    Raises:
        OfflineError: it is missing and ``ELMO_OFFLINE`` is set.
        ChecksumError: the downloaded bytes do not have ``remote.sha256``.
        DownloadError: an HTTP error, a connection that keeps failing, or a cache folder that
            cannot be written.
    """
    if destination.is_file():
        return destination
    refuse_if_offline([(remote, destination)], what)
    url = source_url(remote)
    _make_folder(destination.parent)
    with _exclusive(destination.with_name(destination.name + ".lock")):
        if destination.is_file():  # another process fetched it while this one waited
            return destination
        part = destination.with_name(destination.name + _part_suffix())
        log.info("downloading %s (%s) from %s", destination.name, what, url)
        _download_with_retries(url, part, destination.name)
        if remote.sha256 is not None:
            actual = file_sha256(part)
            if actual != remote.sha256:
                part.unlink(missing_ok=True)
                raise ChecksumError(
                    f"{url} ({what}) has sha256 {actual}, expected {remote.sha256}; nothing was "
                    f"kept (the source or the mirror serves another file)"
                )
        os.replace(part, destination)
    return destination


def refuse_if_offline(missing: list[tuple[RemoteFile, Path]], what: str) -> None:
    """Raise OfflineError, one line naming each file to fetch and where to save it, when
    ``ELMO_OFFLINE`` is set and ``missing`` (pairs of a file and its place) is not empty."""
    if not missing or not offline():
        return
    steps = "; ".join(
        f"fetch {source_url(remote)} and save it as {path}" for remote, path in missing
    )
    names = ", ".join(path.name for _, path in missing)
    raise OfflineError(
        f"{names} ({what}) {'is' if len(missing) == 1 else 'are'} not in the cache and "
        f"{OFFLINE_ENV}=1 forbids downloading: {steps}"
    )


def _make_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{os.getpid()}"
        probe.touch()
        probe.unlink()
    except OSError as error:
        raise DownloadError(
            f"cannot write the cache folder {folder}: {error.strerror or error}; set ELMO_CACHE "
            f"to a writable folder"
        ) from None


def _part_suffix() -> str:
    # With a lock, the .part is shared so that any later process can resume it; without one,
    # each process writes its own (no resuming across processes, but never a torn file).
    return ".part" if fcntl is not None else f".{os.getpid()}.part"


@contextlib.contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """Hold ``lock_path`` exclusively; another process wanting it waits here.

    The lock file is removed on release. A waiter that then gets the lock of a removed file
    retries on the file now at the path, so two processes never hold "the" lock at once.
    """
    if fcntl is None:
        yield
        return
    while True:
        handle = os.open(lock_path, os.O_CREAT | os.O_RDWR, 0o644)
        try:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                log.info("waiting for another process to finish downloading %s", lock_path.stem)
                fcntl.flock(handle, fcntl.LOCK_EX)
            current = os.stat(lock_path).st_ino if lock_path.exists() else None
        except BaseException:
            os.close(handle)
            raise
        if current == os.fstat(handle).st_ino:
            break
        os.close(handle)
    try:
        yield
    finally:
        lock_path.unlink(missing_ok=True)  # before releasing: see the docstring
        os.close(handle)


def _download_with_retries(url: str, part: Path, label: str) -> None:
    """Complete ``part`` from ``url``, resuming from what it holds, retrying passing failures."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            _transfer(url, part, label)
            return
        except _Retry as reason:
            if attempt == ATTEMPTS:
                raise DownloadError(
                    f"{url}: {reason} (after {ATTEMPTS} tries; run again to resume)"
                ) from None
            wait = RETRY_WAIT_S * 2 ** (attempt - 1)
            log.warning("%s: %s; trying again in %.0f s", url, reason, wait)
            time.sleep(wait)


def _transfer(url: str, part: Path, label: str) -> None:
    """One try: request the bytes ``part`` lacks and append them (or start over)."""
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "elmo (urllib)"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as error:
        error.close()
        if error.code == 416 and have:  # the .part is not a prefix of this file: start over
            part.unlink()
            raise _Retry("the partial download does not fit the file; starting over") from None
        if error.code >= 500:
            raise _Retry(f"the server answered {error.code} {error.reason}") from None
        raise DownloadError(f"{url}: the server answered {error.code} {error.reason}") from None
    except (urllib.error.URLError, http.client.HTTPException, OSError) as error:
        raise _Retry(f"cannot connect: {getattr(error, 'reason', error)}") from None
    with response:
        body_range = _byte_range(response, have)
        if body_range is None:  # a part of the file other than the one asked for
            part.unlink()
            raise _Retry("the server sent another byte range than asked for; starting over")
        start, total = body_range
        if start == 0 and have:
            log.info("%s: the server does not resume downloads; starting over", label)
        with open(part, "ab" if start else "wb") as out, progress(
            total=total, initial=start, desc=label, unit="B", unit_scale=True, unit_divisor=1024,
            leave=False,
        ) as bar:  # fmt: skip
            try:
                while block := _read(response):
                    out.write(block)
                    bar.update(len(block))
            finally:  # what arrived is kept for the next try to resume from
                out.flush()
                os.fsync(out.fileno())
    size = part.stat().st_size
    if total is not None and size < total:
        raise _Retry(f"the connection closed after {size} of {total} bytes")


def _read(response) -> bytes:
    """The next chunk of the body; b"" at its end (or where the server closed the connection)."""
    try:
        return response.read(CHUNK_BYTES)
    except (http.client.HTTPException, OSError) as error:
        raise _Retry(f"the connection broke: {error!r}") from None


def _byte_range(response, have: int) -> tuple[int, int | None] | None:
    """(offset the body starts at, the file's total size or None) of the answer to a request for
    the bytes from ``have`` on; None when the body is a part of the file not asked for."""
    if getattr(response, "status", None) != 206:  # the whole file (a server may ignore Range)
        length = response.headers.get("Content-Length")
        return 0, int(length) if length and length.isdigit() else None
    match = re.fullmatch(r"bytes (\d+)-\d+/(\d+|\*)", response.headers.get("Content-Range", ""))
    if match is None or int(match.group(1)) != have:
        return None
    return have, None if match.group(2) == "*" else int(match.group(2))
