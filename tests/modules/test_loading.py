"""Tests for elmo.modules.loading: a model built for loading draws no random weights, and its
weights start at 64-byte boundaries, as a model built in memory reads them."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from elmo.data.characters import batch_to_ids
from elmo.model import BiLM
from elmo.modules.loading import ALIGNMENT, aligned, without_random_init
from elmo.pretrained import from_pretrained, save_pretrained
from elmo.published import export_published, load_published


def test_random_initialisers_leave_the_tensor_and_the_generator_alone():
    torch.manual_seed(0)
    before = torch.random.get_rng_state()
    weight = torch.full((3, 4), 7.0)
    with without_random_init():
        nn.init.kaiming_uniform_(weight, a=5**0.5)
        nn.init.normal_(weight, std=2.0)
        nn.init.uniform_(tensor=weight)
        weight.uniform_(-1, 1)
        layer = nn.Linear(4, 3)  # its own init draws from the generator: skipped
        zeros = nn.init.zeros_(torch.ones(2))  # deterministic initialisers still run
    assert torch.equal(weight, torch.full((3, 4), 7.0))
    assert torch.equal(zeros, torch.zeros(2))
    assert layer.weight.shape == (3, 4)
    assert torch.equal(torch.random.get_rng_state(), before)
    nn.init.uniform_(weight)  # outside, as usual
    assert not torch.equal(weight, torch.full((3, 4), 7.0))


def test_a_model_built_without_random_init_computes_its_buffers(tiny_config):
    with without_random_init():
        built = BiLM(tiny_config)
    usual = BiLM(tiny_config)
    for name, buffer in usual.named_buffers():
        assert torch.equal(dict(built.named_buffers())[name], buffer), name


@pytest.mark.parametrize("save", ["published", "ours"])
def test_loading_draws_nothing_from_the_generator_and_keeps_the_weights(
    save, tiny_bilm, tmp_path
):
    if save == "published":
        export_published(tiny_bilm, tmp_path / "options.json", tmp_path / "weights.hdf5")
        load = lambda: load_published(tmp_path / "options.json", tmp_path / "weights.hdf5")
    else:
        save_pretrained(tiny_bilm, tmp_path)
        load = lambda: from_pretrained(tmp_path)
    torch.manual_seed(1)
    before = torch.random.get_rng_state()
    loaded = load()
    assert torch.equal(torch.random.get_rng_state(), before)  # the user's seeded run is unmoved
    expected = tiny_bilm.state_dict()
    if save == "published":
        expected = {k: v for k, v in expected.items() if not k.startswith("softmax")}
    assert sorted(loaded.state_dict()) == sorted(expected)
    for key, value in expected.items():
        assert torch.equal(loaded.state_dict()[key], value), key
    # the file's tensors became the parameters (assign): each its own contiguous memory, a
    # Parameter that trains, the buffers computed by the constructor
    parameters = list(loaded.parameters())
    assert all(p.is_contiguous() and p.requires_grad for p in parameters)
    assert len({p.data_ptr() for p in parameters}) == len(parameters)
    assert torch.equal(loaded.bos_char_ids, tiny_bilm.bos_char_ids)
    # at 64-byte boundaries, as in the model that wrote them (the tiny shapes put some off one in
    # both files): so the same bits, one-row products included (a batch of one sentence)
    assert all(p.data_ptr() % ALIGNMENT == 0 for p in parameters)
    ids = batch_to_ids([["The", "bank", "of", "the", "river", "."]])
    with torch.no_grad():
        assert torch.equal(loaded(ids).layers, tiny_bilm(ids).layers)


def test_aligned_copies_only_what_is_off_a_boundary():
    storage = torch.arange(40, dtype=torch.float32)
    assert storage.data_ptr() % ALIGNMENT == 0
    assert aligned(storage) is storage
    off = storage[3:35].view(4, 8)  # 12 bytes past the boundary
    moved = aligned(off)
    assert moved.data_ptr() % ALIGNMENT == 0 and moved.is_contiguous()
    assert torch.equal(moved, off) and moved.dtype == off.dtype
