"""Names and relative paths to local files: where ``elmo`` looks, in order, and when it fetches.

* A **data file** given as a relative path (``wikitext-2/wiki.train.tokens``, as the configs
  name them) is looked up as given (relative to the working folder), in ``$ELMO_DATA_DIR``,
  ``./data``, the checkout's ``data/``, ``../shared/data`` (next to the working folder and next
  to the checkout), then the cache (``$ELMO_CACHE/data``). When it is nowhere and belongs to a
  known data set (``catalog.DATASETS``), it is downloaded into the cache. An absolute path is
  used as it is.
* A **published model** by name (``elmo-small``, ...; ``catalog.MODELS``) lives in
  ``$ELMO_CACHE/models/<name>/``, downloaded on first use. The sha256 of its files is recorded
  then (``SHA256SUMS``, AllenNLP publishes none) and checked on every later use. Callers let a
  local path win over a name (``elmo.pretrained.load_bilm``).

The cache folder is ``$ELMO_CACHE``, by default ``~/.cache/elmo`` (``$XDG_CACHE_HOME/elmo``).
"""

from __future__ import annotations

import glob
import logging
import os
from pathlib import Path
from typing import NamedTuple

from elmo.hub.catalog import DATASETS, MODELS, DataSet, PublishedModel, RemoteFile, data_file
from elmo.hub.download import ChecksumError, fetch_file, file_sha256, refuse_if_offline

log = logging.getLogger(__name__)

CACHE_ENV = "ELMO_CACHE"
DATA_DIR_ENV = "ELMO_DATA_DIR"
SUMS_FILE = "SHA256SUMS"  # in a model's cache folder, in the format of `sha256sum -c`


def checkout() -> Path | None:
    """The checkout this package runs from (an editable install), or None (an installed wheel)."""
    parent = Path(__file__).resolve().parents[2]
    return parent if (parent / "pyproject.toml").is_file() else None


class ModelFiles(NamedTuple):
    """The published format's two files of a model."""

    options: Path
    weights: Path


def cache_dir() -> Path:
    """The cache folder: ``$ELMO_CACHE``, else ``$XDG_CACHE_HOME/elmo``, else ``~/.cache/elmo``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "elmo"


def cache_path(remote: RemoteFile) -> Path:
    """Where ``remote`` lives in the cache."""
    return cache_dir().joinpath(*remote.path.split("/"))


# ------------------------------------------------------------------------------------------------
# Data files


def data_roots() -> list[Path]:
    """The folders a relative data path is looked up in, in order (the cache last)."""
    cwd, repo = Path.cwd(), checkout()
    roots = [cwd]
    if os.environ.get(DATA_DIR_ENV):
        roots.append(Path(os.environ[DATA_DIR_ENV]).expanduser())
    roots.append(cwd / "data")
    if repo is not None:
        roots.append(repo / "data")
    roots.append(cwd.parent / "shared" / "data")
    if repo is not None:
        roots.append(repo.parent / "shared" / "data")
    roots.append(cache_dir() / "data")
    unique: list[Path] = []
    for root in roots:
        if root not in unique:
            unique.append(root)
    return unique


def resolve_data_path(path: str) -> str:
    """An existing file or glob for ``path``: as given if absolute, else the first root holding it
    (``data_roots``), else, for a file of a known data set, downloaded into the cache.

    Raises:
        FileNotFoundError: not found and not a known data set's file; names every place tried.
        DownloadError: a known data set's file that could not be fetched (``OfflineError`` with
            ``ELMO_OFFLINE=1``).
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
    known = data_file(path)
    if known is not None:
        data_set, remote = known
        return str(fetch_file(remote, cache_path(remote), f"data set {data_set.name}"))
    raise FileNotFoundError(
        f"data file {path!r} not found; looked in: {', '.join(tried)} (known data sets, fetched "
        f"when needed: {', '.join(DATASETS)}; or give an absolute path)"
    )


def fetch_dataset(name: str) -> list[Path]:
    """Every file of the data set ``name`` in the cache, downloaded if missing (``elmo download``;
    training and probes find the files wherever they are, ``resolve_data_path``).

    Raises:
        ValueError: ``name`` is no known data set's name.
        DownloadError: a file could not be fetched (``OfflineError`` with ``ELMO_OFFLINE=1``).
    """
    if name not in DATASETS:
        raise ValueError(f"no data set is called {name!r}; known: {', '.join(DATASETS)}")
    what = f"data set {name}"
    return [fetch_file(remote, cache_path(remote), what) for remote in DATASETS[name].files]


def cached_dataset(data_set: DataSet) -> bool:
    """Whether every file of ``data_set`` is in the cache."""
    return all(cache_path(remote).is_file() for remote in data_set.files)


# ------------------------------------------------------------------------------------------------
# Published models


def is_model_name(text: str) -> bool:
    """Whether ``text`` is the name of a published model (``elmo models`` lists them)."""
    return text in MODELS


def cached_model(model: PublishedModel) -> ModelFiles | None:
    """The model's files if both are in the cache (unchecked), else None."""
    files = ModelFiles(cache_path(model.options), cache_path(model.weights))
    return files if all(path.is_file() for path in files) else None


def fetch_model(name: str) -> ModelFiles:
    """The published model ``name``'s files: from the cache, checked against the sha256 recorded
    at their download, or downloaded now (and their sha256 recorded).

    Raises:
        ValueError: ``name`` is no published model's name.
        ChecksumError: a cached file changed since it was downloaded.
        DownloadError: a file could not be fetched (``OfflineError`` with ``ELMO_OFFLINE=1``).
    """
    if name not in MODELS:
        raise ValueError(f"no published model is called {name!r}; known: {', '.join(MODELS)}")
    model = MODELS[name]
    what = f"model {name}"
    places = [(remote, cache_path(remote)) for remote in (model.options, model.weights)]
    refuse_if_offline([(remote, path) for remote, path in places if not path.is_file()], what)
    files = ModelFiles(*(fetch_file(remote, path, what) for remote, path in places))
    _check_recorded_sums(files)
    return files


def _check_recorded_sums(files: ModelFiles) -> None:
    """Compare the files with the sums recorded beside them; record them the first time."""
    folder = files.options.parent
    sums_path = folder / SUMS_FILE
    actual = {path.name: file_sha256(path) for path in files}
    recorded = _read_sums(sums_path)
    for file_name, digest in actual.items():
        if file_name in recorded and recorded[file_name] != digest:
            raise ChecksumError(
                f"{folder / file_name} changed since it was downloaded (sha256 {digest}, "
                f"recorded {recorded[file_name]}); delete {folder} to download the model again"
            )
    if recorded.keys() != actual.keys():
        text = "".join(f"{digest}  {file_name}\n" for file_name, digest in actual.items())
        temporary = sums_path.with_name(f"{SUMS_FILE}.{os.getpid()}.tmp")
        temporary.write_text(text)
        os.replace(temporary, sums_path)  # processes that race write the same text


def _read_sums(path: Path) -> dict[str, str]:
    """``{file name: sha256}`` of a ``SHA256SUMS`` file; empty if there is none."""
    if not path.is_file():
        return {}
    sums = {}
    for line in path.read_text().splitlines():
        if line.strip():
            digest, file_name = line.split(maxsplit=1)
            sums[file_name.lstrip("*")] = digest
    return sums
