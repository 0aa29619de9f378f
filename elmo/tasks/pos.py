"""POS tagging (UPOS on UD English EWT) as a probe: how linearly readable is each layer?

A softmax regression per layer and on a learned scalar mix (``tagging.py``), scored by token
accuracy on dev and test.
"""

from __future__ import annotations

from elmo.embedder import ElmoEmbedder
from elmo.tasks.config import PosTaskConfig
from elmo.tasks.datasets.conllu import read_conllu
from elmo.tasks.datasets.source import split_file, subsample
from elmo.tasks.metrics import token_accuracy
from elmo.tasks.tagging import TaggingData, evaluate_tagging, tagging_data


def load(task: PosTaskConfig) -> TaggingData:
    """Read the CoNLL-U splits (train subsampled to ``max_train_sentences``)."""
    files = {"train": task.train, "dev": task.dev, "test": task.test}
    splits = {
        split: read_conllu(split_file(task.data_dir, name, task.name, split))
        for split, name in files.items()
        if name
    }
    splits["train"] = subsample(splits["train"], task.max_train_sentences, task.probe.seed)
    return tagging_data(task.name, splits)


def evaluate(task: PosTaskConfig, data: TaggingData, embedder: ElmoEmbedder, name: str) -> dict:
    """Probe accuracies of every layer and the mix: ``{"dev_accuracy": {"layer0": ..}, ..}``."""
    return evaluate_tagging(
        task.name, task.probe, data, embedder, name, {"accuracy": token_accuracy}
    )
