"""Typed configuration schema for every component.

Each setting is defined once, here, with a comment giving its meaning and unit. YAML files under
``configs/`` hold values only. Nothing in this module imports Hydra: models and checkpoints read
plain dataclasses.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

# The published ELMo character CNN (all three published sizes use it): width -> number of filters.
PUBLISHED_FILTERS = [[1, 32], [2, 32], [3, 64], [4, 128], [5, 256], [6, 512], [7, 1024]]

log = logging.getLogger(__name__)


@dataclass
class CharCNNConfig:
    """The character encoder: char embedding -> convolutions -> highway -> projection."""

    char_embedding_dim: int = 16  # E: size of each character's embedding
    # [[width, number of filters], ...]; F = sum of the numbers
    filters: list[list[int]] = field(default_factory=lambda: [list(f) for f in PUBLISHED_FILTERS])
    num_highway_layers: int = 2  # highway layers after the convolutions (always relu)
    activation: str = "relu"  # nonlinearity after max-pooling each filter: relu | tanh
    max_characters_per_token: int = 50  # W: character slots per token, incl. begin/end-of-word
    num_characters: int = 262  # rows of the character table: 261 ids + the padding row 0

    @property
    def num_filters(self) -> int:
        """F: total number of convolution filters."""
        return sum(count for _, count in self.filters)


@dataclass
class LSTMConfig:
    """One direction's stack of LSTMs with projection (both directions share this config)."""

    num_layers: int = 2  # stacked LSTM layers per direction
    cell_size: int = 4096  # H: LSTM memory cell size
    projection_dim: int = 512  # D: projected hidden size; also the token representation size
    cell_clip: float | None = 3.0  # clip the memory cell to [-c, c]; null = no clipping
    projection_clip: float | None = 3.0  # clip the projected output to [-c, c]; null = none
    use_skip_connections: bool = True  # residual connection around every layer but the first
    forget_bias: float = 1.0  # added to the forget gate pre-activation (TensorFlow's convention)

    @property
    def output_dim(self) -> int:
        """D: the size of every layer's output (the projection)."""
        return self.projection_dim


@dataclass
class TransformerConfig:
    """One direction's stack of Transformer blocks, each attending to one side only (both
    directions share this config; ``elmo.modules.transformer``)."""

    # The defaults match model=small's LSTM in parameters (configs/model/transformer_small.yaml).
    num_layers: int = 6  # N: blocks per direction; each block's output is an ELMo layer
    num_heads: int = 4  # attention heads per block; model_dim must be a multiple of it
    model_dim: int = 128  # D: the width of every block; also the token representation size
    feedforward_dim: int = 512  # inner size of each block's feed-forward network
    dropout: float = 0.1  # on the blocks' input, attention weights and sub-layer outputs (training)
    # how a block knows word order (elmo.modules.positions): alibi (a distance penalty on the
    # attention scores) | sinusoidal (fixed position vectors added to the token vectors)
    position_encoding: str = "alibi"

    @property
    def output_dim(self) -> int:
        """D: the size of every layer's output (the blocks' width)."""
        return self.model_dim


@dataclass
class SoftmaxConfig:
    """The output layer shared by the forward and backward language models."""

    kind: str = "full"  # full | sampled (log-uniform sampler, training only) | adaptive
    num_samples: int = 8192  # sampled: negative classes drawn per batch (the original used 8192)
    cutoffs: list[int] = field(default_factory=lambda: [2000, 10000])  # adaptive: cluster edges
    # how a fresh softmax's biases start (elmo.modules.softmax.BIAS_INITS): zero (bilm-tf's; a
    # fresh model starts near uniform, log V nats per token) | unigram (log frequencies of the
    # training targets, add-one smoothed: it starts near unigram perplexity; the adaptive softmax
    # gets biases for it, which it has none of otherwise). Not for a softmax a run takes over
    # (init_from's, a resumed checkpoint's): their weights win
    init_bias: str = "zero"


@dataclass
class BiLMConfig:
    """The bidirectional language model: one char encoder, two contextualisers, one softmax.

    A contextualiser's sizes are the field named as its kind (``lstm``, ``transformer``); only
    the chosen kind's are used.
    """

    char_cnn: CharCNNConfig = field(default_factory=CharCNNConfig)
    # the contextual layers of each direction (elmo.modules.contextualizer): lstm | transformer
    contextualizer: str = "lstm"
    lstm: LSTMConfig = field(default_factory=LSTMConfig)
    transformer: TransformerConfig = field(default_factory=TransformerConfig)
    # dropout on the LSTM layers' inputs and, for either kind, on the top layer before the
    # softmax; training only (a Transformer's own dropout is transformer.dropout)
    dropout: float = 0.1
    vocab_size: int = 0  # V: output vocabulary of the shared softmax; 0 = no softmax (embedding only)
    softmax: SoftmaxConfig = field(default_factory=SoftmaxConfig)

    @property
    def token_dim(self) -> int:
        """D: the token vectors' size, which every contextual layer keeps so that the layers can
        be mixed: the chosen contextualiser's output size (the LSTM's projection_dim, the
        Transformer's model_dim)."""
        return getattr(self, self.contextualizer).output_dim

    def validate(self) -> BiLMConfig:
        """Raise ValueError naming the first bad value; return self."""
        # The allowed names are the registries of the code that implements them (imported here,
        # not at the top, so that importing the schema stays light).
        from elmo.modules.char_cnn import ACTIVATIONS
        from elmo.modules.contextualizer import CONTEXTUALIZERS
        from elmo.modules.softmax import BIAS_INITS, SOFTMAX_KINDS

        cnn, lstm = self.char_cnn, self.lstm
        if cnn.char_embedding_dim <= 0:
            raise ValueError(f"char_cnn.char_embedding_dim must be > 0, got {cnn.char_embedding_dim}")
        if not cnn.filters:
            raise ValueError("char_cnn.filters must list at least one [width, count] pair")
        for pair in cnn.filters:
            if len(pair) != 2 or min(pair) <= 0:
                raise ValueError(f"char_cnn.filters entries must be [width > 0, count > 0], got {pair}")
            if pair[0] > cnn.max_characters_per_token:
                raise ValueError(
                    f"filter width {pair[0]} exceeds max_characters_per_token "
                    f"{cnn.max_characters_per_token}"
                )
        _check_choice("char_cnn.activation", cnn.activation, ACTIVATIONS)
        if cnn.max_characters_per_token < 3:
            raise ValueError(
                f"char_cnn.max_characters_per_token must be >= 3, got {cnn.max_characters_per_token}"
            )
        if cnn.num_characters < 262:
            raise ValueError(f"char_cnn.num_characters must be >= 262, got {cnn.num_characters}")
        if cnn.num_highway_layers < 0:
            raise ValueError(f"char_cnn.num_highway_layers must be >= 0, got {cnn.num_highway_layers}")
        _check_choice("contextualizer", self.contextualizer, CONTEXTUALIZERS)
        for name in ("num_layers", "cell_size", "projection_dim"):
            if getattr(lstm, name) <= 0:
                raise ValueError(f"lstm.{name} must be > 0, got {getattr(lstm, name)}")
        for name in ("cell_clip", "projection_clip"):
            value = getattr(lstm, name)
            if value is not None and value <= 0:
                raise ValueError(f"lstm.{name} must be > 0 or null, got {value}")
        self._validate_transformer()
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.vocab_size < 0:
            raise ValueError(f"vocab_size must be >= 0, got {self.vocab_size}")
        _check_choice("softmax.kind", self.softmax.kind, SOFTMAX_KINDS)
        _check_choice("softmax.init_bias", self.softmax.init_bias, BIAS_INITS)
        if self.softmax.num_samples <= 0:
            raise ValueError(f"softmax.num_samples must be > 0, got {self.softmax.num_samples}")
        cutoffs = list(self.softmax.cutoffs)
        if self.softmax.kind != "adaptive":
            return self
        if not cutoffs or cutoffs[0] <= 0 or cutoffs != sorted(set(cutoffs)):
            raise ValueError(f"softmax.cutoffs must be increasing ids > 0, got {cutoffs}")
        if self.vocab_size and cutoffs[-1] >= self.vocab_size:
            raise ValueError(
                f"softmax.cutoffs must all be below the vocabulary size {self.vocab_size}, "
                f"got {cutoffs}"
            )
        return self

    def _validate_transformer(self) -> None:
        from elmo.modules.positions import POSITION_ENCODINGS

        blocks = self.transformer
        for name in ("num_layers", "num_heads", "model_dim", "feedforward_dim"):
            if getattr(blocks, name) <= 0:
                raise ValueError(f"transformer.{name} must be > 0, got {getattr(blocks, name)}")
        if blocks.model_dim % blocks.num_heads:
            raise ValueError(
                f"transformer.model_dim must be a multiple of transformer.num_heads, got "
                f"{blocks.model_dim} and {blocks.num_heads}"
            )
        if not 0.0 <= blocks.dropout < 1.0:
            raise ValueError(f"transformer.dropout must be in [0, 1), got {blocks.dropout}")
        _check_choice("transformer.position_encoding", blocks.position_encoding, POSITION_ENCODINGS)


def config_to_dict(config: Any) -> dict:
    """A dataclass config as plain JSON-able dicts and lists."""
    return dataclasses.asdict(config)


def bilm_config_from_dict(data: dict) -> BiLMConfig:
    """Build a BiLMConfig from ``config_to_dict`` output; unknown keys are an error."""
    data = dict(data)
    cnn = _strict(CharCNNConfig, data.pop("char_cnn", {}), "char_cnn")
    lstm = _strict(LSTMConfig, data.pop("lstm", {}), "lstm")
    # Configs written before the Transformer (format_version < 3) have neither key: an LSTM.
    transformer = _strict(TransformerConfig, data.pop("transformer", {}), "transformer")
    softmax = _strict(SoftmaxConfig, data.pop("softmax", {}), "softmax")
    return _strict(BiLMConfig, data, "model", char_cnn=cnn, lstm=lstm, transformer=transformer,
                   softmax=softmax).validate()  # fmt: skip


def _check_choice(where: str, value: str, names: Iterable[str]) -> None:
    """Raise ValueError unless ``value`` is one of ``names`` (a registry's keys, in its order)."""
    names = list(names)
    if value not in names:
        choices = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
        raise ValueError(f"{where} must be {choices}, got {value!r}")


def _strict(cls, data: dict, where: str, **extra):
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"unknown key(s) {unknown} in {where} config; expected some of {sorted(names)}")
    return cls(**data, **extra)


TOKENIZER_KINDS = ("words", "sentencepiece")
POOLINGS = ("first", "last", "mean")


@dataclass
class TokenizerConfig:
    """How a line of text becomes the units the biLM reads and predicts (saved with the model)."""

    kind: str = "words"  # words (whitespace tokens, as the published models) | sentencepiece
    model_type: str = "unigram"  # sentencepiece: unigram | bpe
    vocab_size: int = 16000  # sentencepiece: pieces in its model; the softmax adds <S> and </S>
    character_coverage: float = 0.9995  # sentencepiece: share of characters that get pieces
    byte_fallback: bool = True  # sentencepiece: spell the other characters as UTF-8 byte pieces
    normalization: str = "nmt_nfkc"  # sentencepiece normalisation rule: nmt_nfkc | nfkc | identity
    input_sentence_size: int = 1_000_000  # sentencepiece: train on a random sample of N lines
    # sentencepiece: strings always kept as one piece (e.g. WikiText's "<unk>")
    user_defined_symbols: list[str] = field(default_factory=list)
    pooling: str = "mean"  # a word's vector from its pieces' vectors: first | last | mean

    def validate(self) -> TokenizerConfig:
        """Raise ValueError naming the first bad value; return self."""
        if self.kind not in TOKENIZER_KINDS:
            raise ValueError(f"tokenizer.kind must be words or sentencepiece, got {self.kind!r}")
        if self.model_type not in ("unigram", "bpe"):
            raise ValueError(
                f"tokenizer.model_type must be unigram or bpe, got {self.model_type!r}"
            )
        if self.vocab_size < 8:
            raise ValueError(f"tokenizer.vocab_size must be >= 8, got {self.vocab_size}")
        if not 0.0 < self.character_coverage <= 1.0:
            raise ValueError(
                f"tokenizer.character_coverage must be in (0, 1], got {self.character_coverage}"
            )
        if self.input_sentence_size <= 0:
            raise ValueError(
                f"tokenizer.input_sentence_size must be > 0, got {self.input_sentence_size}"
            )
        if self.pooling not in POOLINGS:
            raise ValueError(f"tokenizer.pooling must be first, last or mean, got {self.pooling!r}")
        return self


def tokenizer_config_from_dict(data: dict) -> TokenizerConfig:
    """Build a TokenizerConfig from ``config_to_dict`` output; unknown keys are an error."""
    return _strict(TokenizerConfig, dict(data), "tokenizer").validate()


@dataclass
class DataConfig:
    """Where the text comes from and how it is cut into training windows."""

    name: str = "wikitext2"  # a label for logs and results
    # Training text: a file, a glob of shards, or a path relative to the data root (see below).
    train: str = "wikitext-2/wiki.train.tokens"
    valid: str | None = "wikitext-2/wiki.valid.tokens"  # validation text; null = none
    test: str | None = "wikitext-2/wiki.test.tokens"  # test text, scored at the end; null = none
    # Relative paths are looked up under ./data, then ../shared/data, then the cache; a known
    # data set's file found nowhere is downloaded (elmo.hub; the log says which).
    vocab_min_count: int = 1  # words seen fewer times in train become <UNK>
    vocab_max_size: int | None = None  # keep at most this many words (plus specials)
    batch_size: int = 32  # B: independent sentence streams per direction
    unroll_steps: int = 20  # T: tokens per window (truncated backpropagation length)
    shuffle_buffer: int = 0  # shuffle sentences within blocks of this many; 0 = corpus order
    eval_batch_size: int = 32  # B for validation / test perplexity


@dataclass
class TrainerConfig:
    """Optimisation, logging, evaluation and checkpointing."""

    device: str = "auto"  # auto (cuda if available) | cpu | cuda | cuda:N
    precision: str = "auto"  # auto (bf16 autocast on CUDA, fp32 on CPU) | fp32 | bf16
    num_threads: int | None = None  # torch CPU threads; null = torch's default
    # The defaults are configs/optim/adam.yaml's, chosen by measurement (docs/results.md,
    # "Training recipes"); the paper's recipe is configs/optim/bilm_tf.yaml: adagrad, lr 0.2,
    # constant (`elmo-train optim=bilm_tf`).
    optimizer: str = "adam"  # adam (AdamW) | adagrad (as the original)
    lr: float = 0.003  # peak learning rate
    adagrad_initial_accumulator: float = 1.0  # the original's Adagrad initial accumulator value
    adam_betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    weight_decay: float = 0.0  # L2 penalty (decoupled for adam)
    grad_clip: float = 10.0  # clip the global gradient norm to this (the original used 10)
    # the LSTM recurrence kernel (elmo.kernels): exact (bit-exact) | fused (equal up to rounding)
    kernel: str = "exact"
    fast_lstm: bool = False  # deprecated: same as kernel=fused
    schedule: str = "cosine"  # constant | linear (decay to 0 at max_steps) | cosine
    warmup_steps: int = 100  # linear warm-up from 0 over this many steps
    max_steps: int = 1000  # optimizer steps to train
    log_every: int = 10  # progress-bar / log refresh, in steps
    eval_every: int = 500  # validation perplexity every N steps (0 = only at the end)
    eval_max_batches: int | None = None  # cap validation to N batches (null = whole file)
    checkpoint_every: int = 500  # write a training checkpoint every N steps (and at the end)
    seed: int = 0  # seeds python, numpy and torch


@dataclass
class TrainConfig:
    """Everything ``elmo-train`` needs; composed by Hydra from configs/train.yaml."""

    model: BiLMConfig = field(default_factory=BiLMConfig)
    data: DataConfig = field(default_factory=DataConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    output_dir: str = "outputs/run"  # checkpoints, logs, the exported model
    resume: bool = True  # continue from output_dir/checkpoint.pt when it exists
    # Start from these weights instead of random ones (fine-tuning on domain text): our
    # pretrained directory, a directory with the published options.json + weights.hdf5, or a
    # published model's name (elmo-small, ...: `elmo models`; a local path wins over a name).
    init_from: str | None = None
    export_published: bool = True  # also export options.json + weights.hdf5 at the end

    def validate(self) -> TrainConfig:
        """Raise ValueError naming the first bad value; return self.

        The deprecated ``trainer.fast_lstm=true`` is turned into ``trainer.kernel=fused`` here.
        """
        from elmo.kernels import kernel_names  # registries, imported lazily as in BiLMConfig
        from elmo.training.optim import OPTIMIZERS, SCHEDULES

        self.model.validate()
        self.tokenizer.validate()
        trainer, data = self.trainer, self.data
        _check_choice("trainer.optimizer", trainer.optimizer, OPTIMIZERS)
        _check_choice("trainer.schedule", trainer.schedule, SCHEDULES)
        if trainer.kernel in kernel_names() and trainer.kernel not in kernel_names(training=True):
            raise ValueError(
                f"trainer.kernel={trainer.kernel} is an inference kernel (its training step was no "
                f"faster than exact's: docs/benchmarks.md); train with {' or '.join(kernel_names(training=True))}"
            )
        _check_choice("trainer.kernel", trainer.kernel, kernel_names(training=True))
        if trainer.fast_lstm and trainer.kernel == "exact":
            log.warning("trainer.fast_lstm is deprecated: running with trainer.kernel=fused")
            trainer.kernel = "fused"
        if trainer.precision not in ("auto", "fp32", "bf16"):
            raise ValueError(f"trainer.precision must be auto, fp32 or bf16, got {trainer.precision!r}")
        for name in ("lr", "max_steps", "log_every", "checkpoint_every"):
            if getattr(trainer, name) <= 0:
                raise ValueError(f"trainer.{name} must be > 0, got {getattr(trainer, name)}")
        for name in ("eval_every", "warmup_steps"):
            if getattr(trainer, name) < 0:
                raise ValueError(f"trainer.{name} must be >= 0, got {getattr(trainer, name)}")
        if trainer.grad_clip <= 0:
            raise ValueError(f"trainer.grad_clip must be > 0, got {trainer.grad_clip}")
        for name in ("batch_size", "unroll_steps", "eval_batch_size", "vocab_min_count"):
            if getattr(data, name) <= 0:
                raise ValueError(f"data.{name} must be > 0, got {getattr(data, name)}")
        cutoffs, largest = self.model.softmax.cutoffs, data.vocab_max_size
        if self.model.softmax.kind == "adaptive" and largest and cutoffs[-1] >= largest:
            raise ValueError(  # known before the vocabulary is built: refuse before any work
                f"model.softmax.cutoffs must all be below data.vocab_max_size={largest}, "
                f"got {cutoffs}"
            )
        return self
