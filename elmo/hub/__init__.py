"""Names to local files: data sets and published models, the cache, and every download.

The one place in ``elmo`` that touches the network; model and data code only ever see local
paths. Three modules, one concern each:

* ``catalog``: the names (``MODELS``, ``DATASETS``) and the public source of each file;
* ``resolve``: where a relative data path or a model name is looked for, in order, and the
  cache folder (``$ELMO_CACHE``, default ``~/.cache/elmo``);
* ``download``: fetching one file: progress bar, resume (HTTP Range), sha256, atomic rename, a
  lock against a second process, ``ELMO_OFFLINE=1`` and the ``ELMO_MIRROR`` URL prefix.

Settings (environment variables): ``ELMO_CACHE`` (the cache folder), ``ELMO_OFFLINE=1`` (never
download; a missing file is a one-line error saying what to fetch and where to put it),
``ELMO_MIRROR`` (a URL prefix every file is read from instead, as ``<prefix>/<path in the cache>``),
``ELMO_DATA_DIR`` (one more folder to look for data in, before ``./data``).
"""

from elmo.hub.catalog import DATASETS, MODELS, DataSet, PublishedModel, RemoteFile
from elmo.hub.download import (
    MIRROR_ENV,
    OFFLINE_ENV,
    ChecksumError,
    DownloadError,
    OfflineError,
    fetch_file,
)
from elmo.hub.resolve import (
    CACHE_ENV,
    ModelFiles,
    cache_dir,
    cached_dataset,
    cached_model,
    fetch_dataset,
    fetch_model,
    is_model_name,
    resolve_data_path,
)

__all__ = [
    "CACHE_ENV",
    "DATASETS",
    "MIRROR_ENV",
    "MODELS",
    "OFFLINE_ENV",
    "ChecksumError",
    "DataSet",
    "DownloadError",
    "ModelFiles",
    "OfflineError",
    "PublishedModel",
    "RemoteFile",
    "cache_dir",
    "cached_dataset",
    "cached_model",
    "fetch_dataset",
    "fetch_file",
    "fetch_model",
    "is_model_name",
    "resolve_data_path",
]
