"""Shared fixtures: the tiny model configuration every test builds on, and seeded RNGs.

The tiny sizes follow the style guide: E 4, two narrow filters, D 8, H 16, 2 layers. Everything
random is seeded, so each test sees the same numbers on every run and in any order.
"""

from __future__ import annotations

import os

# Idle OpenMP threads sleep instead of spinning. The tests run many tiny ops; on a busy or
# shared CPU, spinning threads make them many times slower. (Set before torch starts OpenMP.)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# The AllenNLP fixtures were computed with oneDNN's AVX2 convolution kernels. On a CPU with
# AVX-512, oneDNN picks other kernels whose rounding differs by 1e-7 in the character CNN, and the
# chaotic elmo-random-mid weights grow that to 1e-2 (README, Exactness). Capping oneDNN's ISA at
# AVX2 reproduces the fixtures bit for bit on both kinds of CPU. (Read when oneDNN starts.)
os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX2")
# Tests never touch the network: every download is refused (elmo.hub), also in subprocesses,
# unless a test serves the files itself from 127.0.0.1 (the ``hub_settings`` fixture).
os.environ["ELMO_OFFLINE"] = "1"
# Every test process probes the CPU kernel's levers itself (elmo.kernels.probe_store), also in
# subprocesses: no answer kept by an earlier run stands in for a probe under test. The store's
# own tests turn it on in a folder of their own.
os.environ["ELMO_PROBE_CACHE"] = "off"
os.environ.pop("ELMO_MIRROR", None)

import dataclasses
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from http_server import FileServer

from elmo.config import BiLMConfig, CharCNNConfig, LSTMConfig, TransformerConfig
from elmo.model import BiLM

SEED = 0


@pytest.fixture(autouse=True)
def _seed_every_rng() -> None:
    """Seed Python's, numpy's and torch's global generators before every test."""
    random.seed(SEED)
    np.random.seed(SEED)
    torch.manual_seed(SEED)


# ------------------------------------------------------------------------------------------------
# Model


@pytest.fixture
def tiny_config() -> BiLMConfig:
    """A BiLMConfig small enough for every test to run in milliseconds (E 4, F 10, D 8, H 16)."""
    return BiLMConfig(
        char_cnn=CharCNNConfig(
            char_embedding_dim=4,
            filters=[[1, 4], [2, 6]],
            num_highway_layers=1,
            max_characters_per_token=50,
        ),
        lstm=LSTMConfig(
            num_layers=2,
            cell_size=16,
            projection_dim=8,
            cell_clip=3.0,
            projection_clip=3.0,
            use_skip_connections=True,
        ),
    )


@pytest.fixture
def tiny_bilm(tiny_config: BiLMConfig) -> BiLM:
    """A BiLM of ``tiny_config`` with seeded random weights, in eval mode (no dropout)."""
    torch.manual_seed(SEED)
    return BiLM(tiny_config).eval()


@pytest.fixture
def tiny_transformer_config(tiny_config: BiLMConfig) -> BiLMConfig:
    """``tiny_config`` with Transformer contextualisers: 3 blocks (so L = 4, not the LSTM's 3),
    D 8, 2 heads, feed-forward 16."""
    blocks = TransformerConfig(num_layers=3, num_heads=2, model_dim=8, feedforward_dim=16)
    return dataclasses.replace(tiny_config, contextualizer="transformer", transformer=blocks)


@pytest.fixture
def tiny_transformer(tiny_transformer_config: BiLMConfig) -> BiLM:
    """A BiLM of ``tiny_transformer_config`` with seeded random weights, in eval mode."""
    torch.manual_seed(SEED)
    return BiLM(tiny_transformer_config).eval()


@pytest.fixture
def reference_threads():
    """Run with 2 torch threads, as the AllenNLP fixtures were computed.

    GEMM kernels split their work by thread count, which changes the float rounding; on the
    chaotic elmo-random-mid weights only the same thread count reproduces the fixture exactly.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(previous)


# ------------------------------------------------------------------------------------------------
# Downloads


@pytest.fixture
def file_server():
    """A local HTTP server (``tests/http_server.py``) serving the files a test puts in it."""
    server = FileServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def hub_settings(tmp_path, monkeypatch, file_server) -> Path:
    """``elmo.hub`` reading from ``file_server`` (``ELMO_MIRROR``) into an empty cache folder
    (``ELMO_CACHE``), downloads allowed, retries without waiting; returns the cache folder."""
    from elmo.hub import download

    cache = tmp_path / "cache"
    monkeypatch.setenv("ELMO_CACHE", str(cache))
    monkeypatch.setenv("ELMO_MIRROR", file_server.url)
    monkeypatch.delenv("ELMO_OFFLINE", raising=False)
    monkeypatch.setattr(download, "RETRY_WAIT_S", 0.0)
    return cache
