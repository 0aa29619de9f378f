"""Typed configuration schema for every component.

Each setting is defined once, here, with a comment giving its meaning and unit. YAML files under
``configs/`` hold values only. Nothing in this module imports Hydra: models and checkpoints read
plain dataclasses.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, List, Optional

# The published ELMo character CNN (all three published sizes use it): width -> number of filters.
PUBLISHED_FILTERS = [[1, 32], [2, 32], [3, 64], [4, 128], [5, 256], [6, 512], [7, 1024]]


@dataclass
class CharCNNConfig:
    """The character encoder: char embedding -> convolutions -> highway -> projection."""

    char_embedding_dim: int = 16  # E: size of each character's embedding
    # [[width, number of filters], ...]; F = sum of the numbers
    filters: List[List[int]] = field(default_factory=lambda: [list(f) for f in PUBLISHED_FILTERS])
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
    cell_clip: Optional[float] = 3.0  # clip the memory cell to [-c, c]; null = no clipping
    projection_clip: Optional[float] = 3.0  # clip the projected output to [-c, c]; null = none
    use_skip_connections: bool = True  # residual connection around every layer but the first
    forget_bias: float = 1.0  # added to the forget gate pre-activation (TensorFlow's convention)


@dataclass
class BiLMConfig:
    """The bidirectional language model: one char encoder, two LSTM stacks, one softmax."""

    char_cnn: CharCNNConfig = field(default_factory=CharCNNConfig)
    lstm: LSTMConfig = field(default_factory=LSTMConfig)
    dropout: float = 0.1  # dropout on the token layer and each LSTM output, training only
    vocab_size: int = 0  # V: output vocabulary of the shared softmax; 0 = no softmax (embedding only)

    def validate(self) -> "BiLMConfig":
        """Raise ValueError naming the first bad value; return self."""
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
        if cnn.activation not in ("relu", "tanh"):
            raise ValueError(f"char_cnn.activation must be 'relu' or 'tanh', got {cnn.activation!r}")
        if cnn.max_characters_per_token < 3:
            raise ValueError(
                f"char_cnn.max_characters_per_token must be >= 3, got {cnn.max_characters_per_token}"
            )
        if cnn.num_characters < 262:
            raise ValueError(f"char_cnn.num_characters must be >= 262, got {cnn.num_characters}")
        if cnn.num_highway_layers < 0:
            raise ValueError(f"char_cnn.num_highway_layers must be >= 0, got {cnn.num_highway_layers}")
        for name in ("num_layers", "cell_size", "projection_dim"):
            if getattr(lstm, name) <= 0:
                raise ValueError(f"lstm.{name} must be > 0, got {getattr(lstm, name)}")
        for name in ("cell_clip", "projection_clip"):
            value = getattr(lstm, name)
            if value is not None and value <= 0:
                raise ValueError(f"lstm.{name} must be > 0 or null, got {value}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.vocab_size < 0:
            raise ValueError(f"vocab_size must be >= 0, got {self.vocab_size}")
        return self


def config_to_dict(config: Any) -> dict:
    """A dataclass config as plain JSON-able dicts and lists."""
    return dataclasses.asdict(config)


def bilm_config_from_dict(data: dict) -> BiLMConfig:
    """Build a BiLMConfig from ``config_to_dict`` output; unknown keys are an error."""
    data = dict(data)
    cnn = _strict(CharCNNConfig, data.pop("char_cnn", {}), "char_cnn")
    lstm = _strict(LSTMConfig, data.pop("lstm", {}), "lstm")
    return _strict(BiLMConfig, data, "model", char_cnn=cnn, lstm=lstm).validate()


def _strict(cls, data: dict, where: str, **extra):
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"unknown key(s) {unknown} in {where} config; expected some of {sorted(names)}")
    return cls(**data, **extra)
