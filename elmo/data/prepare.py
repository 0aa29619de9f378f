"""A training run's tokenizer and vocabulary, made once and kept with the run.

The main process makes each file; every other process waits at ``barrier`` and then reads what
it wrote, so all processes of a run read the same units. A resumed run reads the saved files
instead of making them again. Where the files go is the caller's choice (``elmo.pretrained``
owns the file names).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from pathlib import Path

from elmo.config import DataConfig, TokenizerConfig
from elmo.data.stream import count_lines, iter_lines
from elmo.data.tokenizer import PieceTokenizer, Tokenizer, train_sentencepiece
from elmo.data.vocab import Vocabulary
from elmo.files import ModelFileError
from elmo.progress import heartbeat, progress

log = logging.getLogger(__name__)


def prepare_tokenizer(
    settings: TokenizerConfig,
    train_path: str,
    saved: Path,
    is_main: bool,
    barrier: Callable[[], None],
    reuse: bool = True,
) -> Tokenizer:
    """The configured tokenizer; a sentencepiece model is trained on the training text once.

    Args:
        settings: the tokenizer settings.
        train_path: the training text (a file or a glob of shards).
        saved: where the run keeps its sentencepiece model; a resumed run reads it.
        is_main: whether this process writes the file (the others wait for it).
        barrier: returns once every process of the run has called it (a no-op in one process).
        reuse: read a saved model back (a resumed run); False trains it again (nothing
            depends on the one saved, which may be stale or torn).
    """
    if settings.kind == "words":
        return Tokenizer(settings)
    barrier()  # every process looks only after this (see prepare_vocabulary)
    if is_main and not (reuse and saved.is_file()):
        log.info("training a sentencepiece %s model of %d pieces on %s",
                 settings.model_type, settings.vocab_size, train_path)  # fmt: skip
        lines = _reading(train_path, "reading the text for sentencepiece")
        with heartbeat("training the sentencepiece model"):  # it reports no progress of its own
            tokenizer = train_sentencepiece(lines, settings)
        tokenizer.save(saved)
    barrier()
    try:
        return PieceTokenizer.load(settings, saved)
    except RuntimeError as error:  # sentencepiece's parse error
        raise ModelFileError(
            f"{saved}: not a readable sentencepiece model ({error}); delete it to train it again "
            f"(and the run's checkpoint, which was trained with it)"
        ) from None


def prepare_vocabulary(
    settings: DataConfig,
    train_path: str,
    saved: Path,
    tokenizer: Tokenizer,
    is_main: bool,
    barrier: Callable[[], None],
    inherited: Vocabulary | None = None,
    inherited_from: str = "",
    reuse: bool = True,
) -> Vocabulary:
    """The run's vocabulary: the one saved with the run, ``inherited``, or built from train.

    Built from the training text, it is the tokenizer's whole inventory (sentencepiece) or the
    words counted in the text, within ``settings.vocab_min_count`` and ``vocab_max_size``.

    Args:
        settings: the data settings.
        train_path: the training text (a file or a glob of shards).
        saved: where the run keeps its vocabulary; when it exists the run is resuming.
        tokenizer: the run's tokenizer (its units are what the vocabulary holds).
        is_main: whether this process writes the file (the others wait for it).
        barrier: returns once every process of the run has called it (a no-op in one process).
        inherited: the vocabulary of the model that fine-tuning starts from, if it has one.
        inherited_from: where ``inherited`` comes from (for the log).
        reuse: read a saved vocabulary back (a resumed run, which checks it against its
            checkpoint); False makes it again (nothing depends on the one saved, which may be
            stale or torn).

    Raises:
        ModelFileError: the saved vocabulary is unreadable (the message says what to delete).
    """
    resuming = reuse and saved.is_file()
    # Every process looks before the main one may write the file below; otherwise a late process
    # would find it, skip the barrier that the main process waits in, and training would hang.
    barrier()
    if resuming:
        return _load_saved(saved)
    if inherited is not None:
        vocab = inherited
        log.info("vocabulary of %s: %d entries", inherited_from, len(vocab))
    elif is_main and tokenizer.inventory is not None:
        log.info("counting the pieces of %s", train_path)
        vocab = Vocabulary.from_inventory(tokenizer.inventory,
                                          _reading(train_path, "counting the pieces"),
                                          tokenizer.units)  # fmt: skip
        log.info("vocabulary: %d entries (all the pieces)", len(vocab))
    elif is_main:
        log.info("building the vocabulary from %s", train_path)
        vocab = Vocabulary.build(_reading(train_path, "counting the words"),
                                 settings.vocab_min_count, settings.vocab_max_size)  # fmt: skip
        log.info("vocabulary: %d entries", len(vocab))
    if is_main:
        vocab.save(saved)
    barrier()
    return _load_saved(saved)


def _reading(train_path: str, desc: str) -> Iterable[str]:
    """The lines of the training text, with progress against their number (counted first)."""
    return progress(iter_lines(train_path), total=count_lines(train_path), desc=desc,
                    unit="lines")  # fmt: skip


def _load_saved(saved: Path) -> Vocabulary:
    try:
        return Vocabulary.load(saved)
    except ValueError as error:  # names the file and line
        raise ModelFileError(
            f"{error}; delete {saved} to build the vocabulary again (and the run's checkpoint, "
            f"which was trained with it)"
        ) from None
