"""Finding data files: the user's path, ./data, or the shared data next to the checkout."""

from __future__ import annotations

import glob
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]


def data_roots() -> list[Path]:
    """Where relative data paths are looked up, in order."""
    roots = [Path.cwd(), Path.cwd() / "data", REPO_ROOT / "data", REPO_ROOT.parent / "shared" / "data"]
    if os.environ.get("ELMO_DATA_DIR"):
        roots.insert(0, Path(os.environ["ELMO_DATA_DIR"]))
    return roots


def resolve_data_path(path: str) -> str:
    """An existing file or glob for ``path``: as given if absolute, else the first root holding it.

    Raises:
        FileNotFoundError: naming every place that was tried.
    """
    if os.path.isabs(path):
        if not glob.glob(path):
            raise FileNotFoundError(f"no file matches {path}")
        return path
    tried = []
    for root in data_roots():
        candidate = str(root / path)
        tried.append(candidate)
        if glob.glob(candidate):
            log.info("data %s -> %s", path, candidate)
            return candidate
    raise FileNotFoundError(
        f"data file {path!r} not found; looked in: {', '.join(tried)} "
        f"(fetch it with scripts/download_data.sh or give an absolute path)"
    )
