"""What a finished run leaves in its output directory besides the checkpoint.

* ``model/``: the pretrained directory (``elmo.pretrained.save_pretrained``);
* ``published/``: options.json + weights.hdf5, for AllenNLP and bilm-tf (``export_published``);
* ``metrics.json``: the final metrics and the run's history.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from elmo.data.tokenizer import Tokenizer
from elmo.data.vocab import Vocabulary
from elmo.files import atomic_write_text
from elmo.model import BiLM
from elmo.pretrained import PUBLISHED_OPTIONS_FILE, PUBLISHED_WEIGHTS_FILE, save_pretrained

MODEL_DIR = "model"  # the pretrained directory inside output_dir
PUBLISHED_DIR = "published"  # the published-format export inside output_dir
METRICS_FILE = "metrics.json"

log = logging.getLogger(__name__)


def export_model(
    bilm: BiLM, output_dir: Path, vocab: Vocabulary, tokenizer: Tokenizer, published: bool
) -> Path:
    """Write the pretrained directory and, if ``published``, the published format; returns the
    pretrained directory.

    The published format has no place for a tokenizer, nor for a contextualiser other than the
    LSTM, so a model that reads other units than whitespace words, or a Transformer, gets no
    published export (a warning says so; the run's pretrained directory holds it all).
    """
    model_dir = save_pretrained(bilm, output_dir / MODEL_DIR, vocab, tokenizer)
    log.info("pretrained model written to %s", model_dir)
    if published and tokenizer.kind != "words":
        # options.json + weights.hdf5 have no place for a tokenizer: AllenNLP and bilm-tf would
        # feed the weights whitespace words, which a piece model has never read.
        log.warning("no published-format export: that format cannot carry a %s tokenizer",
                    tokenizer.kind)  # fmt: skip
    elif published and bilm.config.contextualizer != "lstm":
        log.warning("no published-format export: that format holds LSTM biLMs only, not a %s",
                    bilm.config.contextualizer)  # fmt: skip
    elif published:
        from elmo.published import export_published  # h5py, only when asked for

        published_dir = output_dir / PUBLISHED_DIR
        published_dir.mkdir(exist_ok=True)
        export_published(bilm, published_dir / PUBLISHED_OPTIONS_FILE,
                         published_dir / PUBLISHED_WEIGHTS_FILE)  # fmt: skip
        log.info("published-format export written to %s", published_dir)
    return model_dir


def write_metrics(output_dir: Path, metrics: dict) -> Path:
    """Write ``metrics`` as ``output_dir``/metrics.json; returns its path."""
    path = output_dir / METRICS_FILE
    atomic_write_text(path, json.dumps(metrics, indent=1) + "\n")
    return path
