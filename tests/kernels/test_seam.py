"""The kernel seam: a kernel in a file of its own plus one registry line reproduces the fixtures,
and is accepted everywhere a kernel name is (BiLM, ElmoEmbedder, Elmo, the loaders, the CLI)."""

from __future__ import annotations

import pytest
import torch
from fixture_checks import check_elmo_random_mid, fixture_model
from plain_loop_kernel import PlainLoopKernel

from elmo.embedder import Elmo, ElmoEmbedder
from elmo.kernels import KERNELS, get_kernel, kernel_names, register_kernel


@pytest.fixture
def plain_loop(monkeypatch):
    monkeypatch.setitem(KERNELS, "plain-loop", KERNELS["exact"])  # restored after the test
    register_kernel("plain-loop", PlainLoopKernel)  # the one registry line
    return "plain-loop"


@pytest.mark.parametrize("stateful", [False, True], ids=["stateless", "stateful_batch8"])
def test_a_registered_kernel_reproduces_the_allennlp_fixture(plain_loop, stateful, reference_threads):
    model = fixture_model("elmo-random-mid")
    model.kernel = plain_loop
    assert isinstance(model.kernel, PlainLoopKernel)
    assert all(isinstance(d.kernel, PlainLoopKernel) for d in model.directions)
    assert check_elmo_random_mid(model, stateful) == 24


def test_every_entry_point_takes_the_kernels_name(plain_loop, tiny_bilm):
    assert plain_loop in kernel_names()
    assert isinstance(ElmoEmbedder(tiny_bilm, kernel=plain_loop).bilm.kernel, PlainLoopKernel)
    tiny_bilm.kernel = "exact"
    assert isinstance(Elmo(tiny_bilm, kernel=plain_loop).bilm.kernel, PlainLoopKernel)


def test_the_plain_loop_and_the_exact_kernel_agree_bit_for_bit(plain_loop, tiny_config):
    from elmo.data.characters import batch_to_ids
    from elmo.model import BiLM

    model = BiLM(tiny_config).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.mul_(4.0)  # chaotic: 1e-7 would show
    ids = batch_to_ids([["a", "b", "c"] * (1 + n % 7) for n in range(40)])
    with torch.no_grad():
        exact = model(ids)
        model.kernel = plain_loop
        plain = model(ids)
    assert torch.equal(exact.layers, plain.layers)


def test_unknown_and_malformed_kernels_are_refused():
    with pytest.raises(ValueError, match="unknown kernel 'turbo'; expected one of"):
        get_kernel("turbo")
    with pytest.raises(TypeError, match="RecurrenceKernel subclass"):
        register_kernel("bad", object)
