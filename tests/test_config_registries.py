"""Tests for elmo.config: each name setting accepts exactly its implementing registry's names."""

from __future__ import annotations

import logging

import pytest

from elmo.config import (
    BiLMConfig,
    CharCNNConfig,
    SoftmaxConfig,
    TrainConfig,
    TrainerConfig,
    TransformerConfig,
)
from elmo.kernels import kernel_names
from elmo.modules.char_cnn import ACTIVATIONS
from elmo.modules.contextualizer import CONTEXTUALIZERS
from elmo.modules.positions import POSITION_ENCODINGS
from elmo.modules.softmax import BIAS_INITS, SOFTMAX_KINDS
from elmo.training.optim import OPTIMIZERS, SCHEDULES


def _model(**changes) -> BiLMConfig:
    return BiLMConfig(
        char_cnn=CharCNNConfig(activation=changes.get("activation", "relu")),
        softmax=SoftmaxConfig(kind=changes.get("softmax", "full")),
    )


def _train(**trainer) -> TrainConfig:
    return TrainConfig(trainer=TrainerConfig(**trainer))


@pytest.mark.parametrize(
    "setting, registry, build",
    [
        ("char_cnn.activation", ACTIVATIONS, lambda name: _model(activation=name)),
        ("softmax.kind", SOFTMAX_KINDS, lambda name: _model(softmax=name)),
        (
            "softmax.init_bias",
            BIAS_INITS,
            lambda name: BiLMConfig(softmax=SoftmaxConfig(init_bias=name)),
        ),
        ("trainer.optimizer", OPTIMIZERS, lambda name: _train(optimizer=name)),
        ("trainer.schedule", SCHEDULES, lambda name: _train(schedule=name)),
        ("trainer.kernel", kernel_names(training=True), lambda name: _train(kernel=name)),
        ("contextualizer", CONTEXTUALIZERS, lambda name: BiLMConfig(contextualizer=name)),
        (
            "transformer.position_encoding",
            POSITION_ENCODINGS,
            lambda name: BiLMConfig(transformer=TransformerConfig(position_encoding=name)),
        ),
    ],
)
def test_a_setting_accepts_its_registry_names_and_names_them_on_error(setting, registry, build):
    for name in registry:
        build(name).validate()
    with pytest.raises(ValueError, match=rf"{setting} must be .*, got 'bogus'") as error:
        build("bogus").validate()
    assert all(name in str(error.value) for name in registry)


def test_an_inference_kernel_is_refused_for_training_with_the_ones_that_train():
    assert "bf16" in kernel_names() and "bf16" not in kernel_names(training=True)
    with pytest.raises(ValueError, match=r"trainer.kernel=bf16 is an inference kernel .* train with exact or fused"):
        _train(kernel="bf16").validate()


def test_fast_lstm_is_a_deprecated_spelling_of_the_fused_kernel(caplog):
    assert TrainerConfig().kernel == "exact"
    with caplog.at_level(logging.WARNING, logger="elmo.config"):
        config = _train(fast_lstm=True).validate()
    assert config.trainer.kernel == "fused"
    assert "fast_lstm is deprecated" in caplog.text
    caplog.clear()
    config.validate()  # validating again: nothing left to translate, no second warning
    assert config.trainer.kernel == "fused" and not caplog.text


@pytest.mark.parametrize(
    "sizes, message",
    [
        ({"model_dim": 10, "num_heads": 4}, "model_dim must be a multiple of transformer.num_"),
        ({"num_layers": 0}, "transformer.num_layers must be > 0"),
        ({"dropout": 1.0}, r"transformer.dropout must be in \[0, 1\)"),
    ],
)
def test_bad_transformer_sizes_are_named(sizes, message):
    with pytest.raises(ValueError, match=message):
        BiLMConfig(contextualizer="transformer", transformer=TransformerConfig(**sizes)).validate()
