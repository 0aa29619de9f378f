"""Text -> the units the biLM reads and predicts: whitespace words, or sentencepiece pieces.

``words`` is the published models' format: a line is already tokenized and every whitespace token
is one unit. ``sentencepiece`` reads raw text: each whitespace word is cut into pieces of a
unigram or BPE model trained on the training text (Kudo & Richardson, 2018), so the softmax is
the piece inventory (8-32k entries) and, with byte fallback, no target is ever ``<UNK>``. The
character CNN still reads each unit's UTF-8 bytes; a piece that starts a word carries the
sentencepiece word mark ``▁`` (U+2581) among them.

Both tokenizers keep the alignment between the whitespace words of a line and their units
(``word_units``): a word's vector is pooled from its pieces' vectors (``elmo.modules.pooling``),
and per-word perplexity divides by the number of words, whatever the units.

sentencepiece normalises text before cutting it (``normalization``, NFKC by default): full-width
forms, ligatures and compatibility characters become their plain forms, and runs of spaces one
space. Decoding the pieces gives back the normalised text, which is the input itself for text that
is already normal (most text). Pieces never cross whitespace, so cutting each word on its own
gives the same pieces as cutting the whole line.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from elmo.config import TokenizerConfig
from elmo.files import atomic_write_bytes

log = logging.getLogger(__name__)

WORD_MARK = "\u2581"  # sentencepiece's "a word starts here" (it stands for the space before it)
UNKNOWN_PIECE = "<sentencepiece-unknown>"  # never a target: our <UNK> stands for it


class Tokenizer:
    """Whitespace words as units (the ``words`` kind, and the base of every tokenizer).

    Args:
        config: the tokenizer settings (``kind`` must match the class).
    """

    def __init__(self, config: TokenizerConfig) -> None:
        if type(self) is Tokenizer and config.kind != "words":
            raise ValueError(f"Tokenizer reads words; got tokenizer.kind {config.kind!r}")
        self.config = config.validate()

    @property
    def kind(self) -> str:
        return self.config.kind

    @property
    def inventory(self) -> list[str] | None:
        """Every unit a model of this tokenizer can meet (its softmax); None when open (words)."""
        return None

    def words(self, line: str) -> list[str]:
        """The whitespace words of a line: what word-level outputs and per-word perplexity count."""
        return line.split()

    def word_units(self, words: Sequence[str]) -> list[list[str]]:
        """Each word's units, in order; every word has at least one."""
        return [[word] for word in words]

    def units(self, line: str) -> list[str]:
        """The units of a line, for the language model (words here, pieces for sentencepiece)."""
        return self.words(line)

    def decode(self, units: Sequence[str]) -> str:
        """The text of a unit sequence."""
        return " ".join(units)


class PieceTokenizer(Tokenizer):
    """sentencepiece pieces as units, from a trained model.

    Args:
        config: the settings it was trained with (``kind == "sentencepiece"``).
        model_proto: the serialized sentencepiece model (the bytes of its ``.model`` file).
    """

    def __init__(self, config: TokenizerConfig, model_proto: bytes) -> None:
        super().__init__(config)
        import sentencepiece

        if config.kind != "sentencepiece":
            raise ValueError(f"PieceTokenizer needs kind sentencepiece, got {config.kind!r}")
        self.model_proto = bytes(model_proto)
        self._processor = sentencepiece.SentencePieceProcessor(model_proto=self.model_proto)

    @classmethod
    def load(cls, config: TokenizerConfig, path: str | os.PathLike) -> PieceTokenizer:
        """From a ``.model`` file."""
        return cls(config, Path(path).read_bytes())

    def save(self, path: str | os.PathLike) -> None:
        """Write the ``.model`` file that ``load`` reads (atomically)."""
        atomic_write_bytes(path, self.model_proto)

    @property
    def inventory(self) -> list[str]:
        """Every piece but sentencepiece's unknown piece, in the model's id order."""
        sp = self._processor
        return [sp.id_to_piece(i) for i in range(sp.get_piece_size()) if not sp.is_unknown(i)]

    def word_units(self, words: Sequence[str]) -> list[list[str]]:
        """Each word's pieces. A word that normalisation empties (e.g. a lone zero-width space)
        becomes the bare word mark, so that it still has one unit and one vector."""
        if not words:
            return []
        pieces = self._processor.encode(list(words), out_type=str)
        return [word_pieces or [WORD_MARK] for word_pieces in pieces]

    def units(self, line: str) -> list[str]:
        """The pieces of a line: its words' pieces, in order."""
        return [piece for pieces in self.word_units(self.words(line)) for piece in pieces]

    def decode(self, units: Sequence[str]) -> str:
        """The (normalised) text of a piece sequence."""
        return self._processor.decode(list(units))


def train_sentencepiece(lines: Iterable[str], config: TokenizerConfig) -> PieceTokenizer:
    """Train a sentencepiece model on a stream of lines.

    sentencepiece keeps a uniform random sample of ``config.input_sentence_size`` lines of the
    stream (reservoir sampling), so memory is bounded whatever the corpus size. No
    sentence-boundary pieces are made: the biLM frames sentences with its own ``<S>`` / ``</S>``.

    Args:
        lines: the training text, one sentence per line (read once).
        config: model type, vocabulary size, character coverage, byte fallback, normalisation.
    """
    import io

    import sentencepiece

    config.validate()
    model = io.BytesIO()
    sentences = (line for line in lines if line.strip())
    try:
        _train(sentencepiece, sentences, model, config)
    except RuntimeError as error:  # e.g. "Vocabulary size too high (16000). ... <= 5012."
        raise ValueError(f"training the sentencepiece model failed: {error}") from None
    tokenizer = PieceTokenizer(config, model.getvalue())
    log.info("sentencepiece %s model: %d pieces", config.model_type, len(tokenizer.inventory) + 1)
    return tokenizer


def _train(sentencepiece, sentences: Iterable[str], model, config: TokenizerConfig) -> None:
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=sentences,
        model_writer=model,
        model_type=config.model_type,
        vocab_size=config.vocab_size,
        character_coverage=config.character_coverage,
        byte_fallback=config.byte_fallback,
        normalization_rule_name=config.normalization,
        input_sentence_size=config.input_sentence_size,
        user_defined_symbols=list(config.user_defined_symbols),
        shuffle_input_sentence=True,
        unk_id=0,
        # Not "<unk>", so that a text's literal "<unk>" (WikiText's) is text, or a user symbol.
        unk_piece=UNKNOWN_PIECE,
        bos_id=-1,
        eos_id=-1,
        pad_id=-1,
        num_threads=1,  # deterministic, and the machine's other cores are for training
        minloglevel=2,
    )


def word_tokenizer() -> Tokenizer:
    """The ``words`` tokenizer (published models and directories saved before tokenizers)."""
    return Tokenizer(TokenizerConfig(kind="words"))
