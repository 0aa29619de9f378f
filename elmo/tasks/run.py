"""A whole probe run from a ProbeConfig: data, models, one task per model, results on disk."""

from __future__ import annotations

import logging
import random

import numpy as np
import torch

from elmo.embedder import ElmoEmbedder
from elmo.tasks import chunk, pos, sst2, wic, wordsim
from elmo.tasks.config import ProbeConfig
from elmo.tasks.models import load_models, load_tokenizers
from elmo.tasks.report import summary, write_results

log = logging.getLogger(__name__)

# task name -> its module: load(task) reads the data once, evaluate(task, data, embedder, name)
# gives one model's metrics.
TASKS = {"pos": pos, "chunk": chunk, "wic": wic, "wordsim": wordsim, "sst2": sst2}


def run_probe(config: ProbeConfig) -> dict:
    """Run ``config.task`` on the model and every baseline; write results; return the summary.

    Returns:
        The summary dict (``report.summary``): the model's metrics and its baselines'.
    """
    config.validate()
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    random.seed(0)  # the probes seed their own generators; this covers anything else
    np.random.seed(0)
    torch.manual_seed(0)
    task_module = TASKS[config.task.name]  # validate() checked the name
    models = load_models(config)  # fails fast on a missing model directory, before reading data
    tokenizers = load_tokenizers(config)
    data = task_module.load(config.task)
    results = {}
    for name, bilm in models.items():
        embedder = ElmoEmbedder(bilm, batch_size=config.batch_size, device=config.device,
                                tokenizer=tokenizers[name], kernel=config.kernel)  # fmt: skip
        results[name] = task_module.evaluate(config.task, data, embedder, name)
    line = summary(config.task.name, config.model, results)
    line["output_dir"] = config.output_dir
    write_results(config.output_dir, line, results, _title(config))
    return line


def _title(config: ProbeConfig) -> str:
    return f"elmo-probe task={config.task.name} model={config.model}"
