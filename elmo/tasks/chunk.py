"""Chunking (CoNLL-2000) as a probe: the syntax probe of the paper next to POS.

A softmax regression per layer and on a learned scalar mix (``tagging.py``) predicts each
token's IOB2 chunk tag (``B-NP``, ``I-VP``, ``O``, ...) on its own; the chunks are read from the
predicted tags as conlleval reads them and scored by span F1 (a chunk counts only with its type
and both boundaries right), next to token accuracy.

CoNLL-2000 has train and test only. The dev split is the last ``task.dev_sentences`` sentences
of train.txt, held out from training on every run (deterministic, no seed); the probes never
see them.
"""

from __future__ import annotations

from elmo.embedder import ElmoEmbedder
from elmo.tasks.config import ChunkTaskConfig
from elmo.tasks.datasets.conll2000 import read_conll2000
from elmo.tasks.datasets.conllu import TaggedSentence
from elmo.tasks.datasets.source import split_file, subsample
from elmo.tasks.metrics import span_f1, token_accuracy
from elmo.tasks.tagging import TaggingData, evaluate_tagging, tagging_data


def hold_out_dev(
    sentences: list[TaggedSentence], dev_sentences: int, path: str
) -> tuple[list[TaggedSentence], list[TaggedSentence]]:
    """``(train, dev)``: the last ``dev_sentences`` sentences are dev, the others train.

    Raises:
        ValueError: the file has no more sentences than ``dev_sentences`` (none left to train).
    """
    if dev_sentences >= len(sentences):
        raise ValueError(
            f"{path}: task.dev_sentences={dev_sentences} would hold out all its "
            f"{len(sentences)} sentences; lower it"
        )
    cut = len(sentences) - dev_sentences
    return sentences[:cut], sentences[cut:]


def load(task: ChunkTaskConfig) -> TaggingData:
    """Read train (split into train and dev) and test; train subsampled to
    ``max_train_sentences``."""
    train_path = split_file(task.data_dir, task.train, task.name, "train")
    train, dev = hold_out_dev(read_conll2000(train_path), task.dev_sentences, str(train_path))
    splits = {
        "train": subsample(train, task.max_train_sentences, task.probe.seed),
        "dev": dev,
    }
    if task.test:
        splits["test"] = read_conll2000(split_file(task.data_dir, task.test, task.name, "test"))
    return tagging_data(task.name, splits)


def evaluate(task: ChunkTaskConfig, data: TaggingData, embedder: ElmoEmbedder, name: str) -> dict:
    """Span F1 and token accuracy of every layer and the mix:
    ``{"dev_f1": {"layer0": .., "mix": ..}, "dev_accuracy": {..}, "test_f1": .., ..}``."""
    results: dict = evaluate_tagging(
        task.name, task.probe, data, embedder, name, {"f1": span_f1, "accuracy": token_accuracy}
    )
    results["details"] = {
        "dev_split": f"the last {task.dev_sentences} sentences of {task.train}",
        **{f"{split}_sentences": len(sentences) for split, sentences in data.splits.items()},
    }
    return results
