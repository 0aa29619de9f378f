"""What the Hydra entry points (``elmo.train``, ``elmo.probe``) share.

* ``CONFIGS``: where the YAML configs live (users add their own folder with ``--config-dir``);
* ``store_schemas``: puts the dataclass schemas into Hydra's ConfigStore, so that a YAML defaults
  list can name them; each entry point calls it from ``main()``, never at import time;
* ``exit_on_error``: a bad value becomes one line on stderr and exit code 2, not a traceback;
* ``undo_on_failure``: a job that fails before it wrote anything of value leaves no files behind
  (Hydra's log and ``.hydra/`` included).

Only these three modules import Hydra; the rest of ``elmo`` sees plain dataclasses.
"""

from __future__ import annotations

import contextlib
import shutil
import sys
import time
from collections.abc import Collection, Iterator, Mapping
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore


def _config_folder() -> Path:
    """The YAML configs: the copy an installed wheel carries as package data (``elmo/configs``,
    put there by setup.py), else ``configs/`` of the checkout this package runs from (editable)."""
    package = Path(__file__).resolve().parent
    installed = package / "configs"
    return installed if installed.is_dir() else package.parent / "configs"


CONFIGS = _config_folder()


def store_schemas(schemas: Mapping[str, Any], group: str | None = None) -> None:
    """Register each schema (a dataclass or a config node) in Hydra's ConfigStore by name.

    Storing a name again replaces it, so calling this more than once is harmless.
    """
    store = ConfigStore.instance()
    for name, node in schemas.items():
        store.store(name=name, node=node, group=group)


@contextlib.contextmanager
def exit_on_error(program: str, *errors: type[Exception]) -> Iterator[None]:
    """Turn ``errors`` (ValueError if none given) raised inside into one line and exit code 2.

    Use it inside the ``@hydra.main`` function: Hydra reports an exception escaping from there as
    its own error with exit code 1, but lets SystemExit through.
    """
    caught = errors or (ValueError,)
    try:
        yield
    except caught as error:
        print(f"{program}: error: {error}", file=sys.stderr)
        raise SystemExit(2) from None


@contextlib.contextmanager
def undo_on_failure(valuable: Collection[str], folders: Collection[str] = ()) -> Iterator[None]:
    """If the block fails (an error, exit code 2, Ctrl-C) before this job wrote any of the files
    named in ``valuable``, delete the files it created: nothing is left of a run that did
    nothing. Files that were there before the job are kept (a failed resume keeps its run).

    Use it inside the ``@hydra.main`` function, which runs after Hydra has made the job's
    folder, its ``.hydra/`` and its log file; those count as this job's when the log is empty.

    Args:
        valuable: names of files or folders that make a job's folder worth keeping (a training
            checkpoint, results).
        folders: more folders the job writes to (created or not yet), besides Hydra's.
    """
    from hydra.core.hydra_config import HydraConfig

    hydra = HydraConfig.get()
    own = {hydra.output_subdir, f"{hydra.job.name}.log"} - {None}
    snapshots = [_Snapshot(Path(hydra.runtime.output_dir), own)]
    snapshots += [_Snapshot(Path(f)) for f in folders if Path(f) != snapshots[0].folder]
    try:
        yield
    except BaseException:
        if not any(snapshot.wrote(valuable) for snapshot in snapshots):
            for snapshot in snapshots:
                snapshot.undo()
        raise


class _Snapshot:
    """The names in a folder when the job began, less those Hydra made for this job."""

    def __init__(self, folder: Path, own: Collection[str] = ()) -> None:
        self.folder = folder
        self.started = time.time()
        self.before = {path.name for path in folder.iterdir()} if folder.is_dir() else set()
        logs = [folder / name for name in own if name.endswith(".log")]
        if all(not log.is_file() or log.stat().st_size == 0 for log in logs):
            self.before -= set(own)  # made now: an earlier job's log holds at least its config

    def wrote(self, names: Collection[str]) -> bool:
        """Whether the job made or changed one of ``names`` in the folder."""
        for name in names:
            path = self.folder / name
            if path.exists() and (name not in self.before or path.stat().st_mtime >= self.started):
                return True
        return False

    def undo(self) -> None:
        """Delete what the job added; then the folder itself if it held nothing before (an
        empty folder made beforehand looks the same, and goes too)."""
        if not self.folder.is_dir():
            return
        for path in self.folder.iterdir():
            if path.name not in self.before:
                _remove(path)
        if not self.before:
            with contextlib.suppress(OSError):  # not empty: someone else writes there too
                self.folder.rmdir()


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
