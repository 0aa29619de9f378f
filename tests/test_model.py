"""Tests for elmo.model.BiLM: shapes, masks, padding invariance, directionality, statefulness."""

from __future__ import annotations

import threading

import pytest
import torch

from elmo.config import BiLMConfig
from elmo.data.characters import batch_to_ids
from elmo.kernels import RecurrenceKernel
from elmo.kernels.exact import ExactKernel
from elmo.model import BiLM, BiLMOutput

D = 8  # tiny_config's projection size: every layer is 2D = 16 wide
SENTENCES = [
    ["the", "cat", "sat"],
    ["a"],
    ["naïve", "東京", "dogs", "run", "far", "x" * 60],
    ["hello", "world"],
]


def run(model: BiLM, sentences, state=None) -> BiLMOutput:
    with torch.no_grad():
        return model(batch_to_ids(sentences), state)


def forward_half(layers: torch.Tensor) -> torch.Tensor:
    return layers[..., :D]


def backward_half(layers: torch.Tensor) -> torch.Tensor:
    return layers[..., D:]


def test_output_shapes_and_mask(tiny_bilm):
    out = run(tiny_bilm, SENTENCES)
    batch, steps = len(SENTENCES), max(map(len, SENTENCES)) + 2
    assert tiny_bilm.num_layers == 3 and tiny_bilm.output_dim == 2 * D
    assert out.layers.shape == (3, batch, steps, 2 * D)
    assert out.mask.dtype == torch.bool and out.mask.shape == (batch, steps)
    for row, sentence in enumerate(SENTENCES):
        assert out.mask[row].tolist() == [True] * (len(sentence) + 2) + [False] * (
            steps - len(sentence) - 2
        )
    assert (out.layers[:, ~out.mask] == 0).all()  # every layer is zero at padding
    # the token layer is the char encoder's output, duplicated to 2D
    assert torch.equal(forward_half(out.layers[0]), backward_half(out.layers[0]))
    for direction in out.state:
        assert direction.hidden.shape == (2, batch, D)
        assert direction.memory.shape == (2, batch, 16)


def test_wrong_char_id_shape_is_a_value_error(tiny_bilm):
    with pytest.raises(ValueError, match="char_ids"):
        tiny_bilm(torch.zeros(2, 3, 7, dtype=torch.long))


def test_each_sentence_alone_equals_the_padded_batch(tiny_bilm):
    batch = run(tiny_bilm, SENTENCES)  # unsorted lengths: exercises the sort and its undoing
    for row, sentence in enumerate(SENTENCES):
        alone = run(tiny_bilm, [sentence])
        n = len(sentence) + 2
        assert alone.layers.shape[2] == n
        assert torch.allclose(batch.layers[:, row, :n], alone.layers[:, 0], atol=1e-6, rtol=0)
        for direction_batch, direction_alone in zip(batch.state, alone.state):
            for batch_part, alone_part in zip(direction_batch, direction_alone):
                assert torch.allclose(batch_part[:, row], alone_part[:, 0], atol=1e-6, rtol=0)


def test_empty_sentence_is_just_the_boundaries(tiny_bilm):
    out = run(tiny_bilm, [["a", "b"], []])
    assert out.mask[1].tolist() == [True, True, False, False]
    assert torch.allclose(out.layers[:, 1, :2], run(tiny_bilm, [[]]).layers[:, 0], atol=1e-6)


@pytest.mark.parametrize("changed", [1, 3, 5], ids=["first", "middle", "last"])
def test_forward_half_sees_the_past_and_backward_half_the_future(tiny_bilm, changed):
    sentence = ["one", "two", "three", "four", "five"]  # framed positions 1..5
    edited = list(sentence)
    edited[changed - 1] = "zebra"
    before, after = run(tiny_bilm, [sentence]), run(tiny_bilm, [edited])
    for layer in (1, 2):
        old, new = before.layers[layer, 0], after.layers[layer, 0]  # (T+2, 2D)
        # forward half at t depends only on positions <= t; backward half only on >= t
        assert torch.equal(forward_half(old[:changed]), forward_half(new[:changed]))
        assert torch.equal(backward_half(old[changed + 1 :]), backward_half(new[changed + 1 :]))
        assert (forward_half(old[changed:]) != forward_half(new[changed:])).any(dim=-1).all()
        assert (
            (backward_half(old[: changed + 1]) != backward_half(new[: changed + 1]))
            .any(dim=-1)
            .all()
        )


def test_stateless_calls_are_repeatable_and_state_changes_the_outputs(tiny_bilm):
    first, second = [["the", "cat"], ["a", "b", "c"]], [["dogs", "run", "far"], ["x"]]
    assert torch.equal(run(tiny_bilm, second).layers, run(tiny_bilm, second).layers)
    stateless = run(tiny_bilm, second)
    stateful = run(tiny_bilm, second, run(tiny_bilm, first).state)
    assert torch.equal(stateless.layers[0], stateful.layers[0])  # the token layer has no state
    for layer in (1, 2):
        real = stateful.mask
        differs = (stateless.layers[layer][real] != stateful.layers[layer][real]).any(dim=-1)
        assert differs.all()


def test_state_carries_each_row_on_as_one_continuous_stream(tiny_bilm):
    """Row-wise: the forward LM continues from the previous batch's ``</S>`` of the same row, and
    the backward LM from its ``<S>``. So the forward half of batch 2 is the forward half of the
    stream ``<S> a </S> <S> b </S>``, and its backward half that of ``<S> b </S> <S> a </S>``
    (the backward LM read ``a`` just before). ``<S>``/``</S>`` in the text are the boundaries."""
    first = [["the", "cat"], ["a", "b", "c", "d"]]  # row lengths differ between batches and
    second = [["dogs", "run", "far"], ["x"]]  # across rows, so the state must follow its row
    out = run(tiny_bilm, second, run(tiny_bilm, first).state)
    for row, (a, b) in enumerate(zip(first, second)):
        n = len(b) + 2
        a_then_b = run(tiny_bilm, [a + ["</S>", "<S>"] + b]).layers[:, 0]
        b_then_a = run(tiny_bilm, [b + ["</S>", "<S>"] + a]).layers[:, 0]
        ours = out.layers[:, row, :n]
        assert torch.allclose(forward_half(ours), forward_half(a_then_b[:, -n:]), atol=1e-6)
        assert torch.allclose(backward_half(ours), backward_half(b_then_a[:, :n]), atol=1e-6)


def test_eval_mode_is_deterministic_and_train_mode_uses_dropout(tiny_config: BiLMConfig):
    model = BiLM(tiny_config)
    ids = batch_to_ids(SENTENCES)
    train_a, train_b = model(ids).layers, model(ids).layers
    assert not torch.equal(train_a, train_b)
    model.eval()
    assert torch.equal(model(ids).layers, model(ids).layers)


def test_empty_batch_and_mismatched_state(tiny_bilm):
    assert tiny_bilm(batch_to_ids([])).layers.shape == (3, 0, 2, 16)
    state = tiny_bilm(batch_to_ids([["a"]])).state
    with pytest.raises(ValueError, match="state holds 1 rows but the batch has 2"):
        tiny_bilm(batch_to_ids([["a"], ["b"]]), state)


class _RecordingKernel(ExactKernel):
    """The exact kernel, noting which Python thread runs each layer."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def run_layer(self, layer, *args):
        self.names.append(threading.current_thread().name)
        return super().run_layer(layer, *args)


def _threads_running_the_stacks(model: BiLM) -> list[str]:
    """The list the model's kernel fills with a thread name per layer run (2 per stack)."""
    model.kernel = _RecordingKernel()
    return model.kernel.names


@pytest.mark.parametrize("mode", ["no_grad", "inference_mode"])
def test_the_two_directions_run_concurrently_with_the_same_bits(mode, tiny_config):
    # Inference on a CPU with 2+ threads runs the backward stack on a side thread, in the
    # caller's grad mode; the layers and the state keep every bit of the serial run.
    model = BiLM(tiny_config).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.mul_(4.0)  # chaotic, as the elmo-random-mid fixture: 1e-7 would show
    ids = batch_to_ids(SENTENCES * 5)
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    context = torch.no_grad if mode == "no_grad" else torch.inference_mode
    try:
        names = _threads_running_the_stacks(model)
        with context():
            together = model(ids)
        assert sorted(name.startswith("elmo-backward") for name in names) == [False, False, True, True]
        assert together.layers.is_inference() == (mode == "inference_mode")
        model.kernel = RecurrenceKernel()  # the reference loop, one direction after the other
        with context():
            serial = model(ids)
    finally:
        torch.set_num_threads(previous)
    assert torch.equal(together.layers, serial.layers)
    for actual, expected in zip(together.state, serial.state):
        assert torch.equal(actual.hidden, expected.hidden)
        assert torch.equal(actual.memory, expected.memory)


def test_with_gradients_dropout_or_one_thread_the_directions_run_in_turn(tiny_config):
    model = BiLM(tiny_config)
    names = _threads_running_the_stacks(model)
    ids = batch_to_ids(SENTENCES)
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        model.eval()(ids).layers.sum().backward()  # gradients
        with torch.no_grad():
            model.train()(ids)  # dropout
        torch.set_num_threads(1)
        with torch.no_grad():
            model.eval()(ids)
    finally:
        torch.set_num_threads(previous)
    assert len(names) == 12 and not any(name.startswith("elmo-backward") for name in names)


def test_an_error_in_the_backward_stack_reaches_the_caller(tiny_bilm, monkeypatch):
    def failing(*args, **kwargs):
        raise RuntimeError("backward stack failed")

    monkeypatch.setattr(tiny_bilm.backward_lstm, "forward", failing)
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with torch.no_grad(), pytest.raises(RuntimeError, match="backward stack failed"):
            tiny_bilm(batch_to_ids(SENTENCES))
    finally:
        torch.set_num_threads(previous)


def test_a_forked_child_starts_a_side_thread_of_its_own(monkeypatch):
    # A forked child has no copy of its parent's side thread: waiting on it would hang.
    from elmo.kernels import cpu

    assert cpu.on_side_thread(lambda: 1)() == 1
    parents = cpu._POOL
    monkeypatch.setattr(cpu.os, "getpid", lambda: -1)  # as in a forked child
    assert cpu.on_side_thread(lambda: 2)() == 2
    assert cpu._POOL[1] is not parents[1]


# ------------------------------------------------------------------------------------------------
# The Transformer contextualiser (tiny_transformer: 3 blocks, so L = 4)


def test_a_transformer_bilm_has_one_layer_per_block_and_no_state(tiny_transformer):
    out = run(tiny_transformer, SENTENCES)
    batch, steps = len(SENTENCES), max(map(len, SENTENCES)) + 2
    assert tiny_transformer.num_layers == 4 and tiny_transformer.output_dim == 2 * D
    assert out.layers.shape == (4, batch, steps, 2 * D)
    assert (out.layers[:, ~out.mask] == 0).all()
    assert out.state == (None, None) and not tiny_transformer.carries_state
    assert tiny_transformer.initial_state(2) == (None, None)
    assert len(tiny_transformer.layer_parameters()) == 4
    names = list(tiny_transformer.state_dict())
    assert "forward_transformer.blocks.2.attention.qkv.weight" in names
    assert "backward_transformer.final_norm.weight" in names
    assert not any("lstm" in name for name in names)


def test_lstm_checkpoint_names_are_unchanged(tiny_bilm):
    assert tiny_bilm.carries_state
    names = list(tiny_bilm.state_dict())
    assert "forward_lstm.layers.0.input_weight" in names
    assert "backward_lstm.layers.1.projection_weight" in names


def test_a_transformer_refuses_a_state():
    config = BiLMConfig(contextualizer="transformer")
    with pytest.raises(ValueError, match="carries no state"):
        BiLM(config).language_model(
            torch.zeros(1, 2, 50, dtype=torch.long), torch.ones(1, 2, dtype=torch.bool),
            state=(torch.zeros(1, 1, 128),),
        )  # fmt: skip


@pytest.mark.parametrize("changed", [1, 3, 5], ids=["first", "middle", "last"])
def test_transformer_forward_half_sees_the_past_and_backward_half_the_future(
    tiny_transformer, changed
):
    """No leakage through BiLM.forward, on every layer, with the changed sentence padded."""
    sentence = ["one", "two", "three", "four", "five"]  # framed positions 1..5
    edited = list(sentence)
    edited[changed - 1] = "zebra"
    longer = ["a", "much", "longer", "sentence", "pads", "the", "other", "row"]
    before = run(tiny_transformer, [sentence, longer])
    after = run(tiny_transformer, [edited, longer])
    for layer in range(1, 4):
        old, new = before.layers[layer, 0], after.layers[layer, 0]  # (T+2, 2D)
        assert torch.equal(forward_half(old[:changed]), forward_half(new[:changed]))
        assert torch.equal(backward_half(old[changed + 1 :]), backward_half(new[changed + 1 :]))
        assert (forward_half(old[changed:7]) != forward_half(new[changed:7])).any(dim=-1).all()
        past = slice(0, changed + 1)
        assert (backward_half(old[past]) != backward_half(new[past])).any(dim=-1).all()
        assert torch.equal(before.layers[layer, 1], after.layers[layer, 1])


def test_transformer_sentences_alone_equal_the_padded_batch(tiny_transformer):
    batch = run(tiny_transformer, SENTENCES)
    for row, sentence in enumerate(SENTENCES):
        n = len(sentence) + 2
        alone = run(tiny_transformer, [sentence]).layers[:, 0]
        assert torch.allclose(batch.layers[:, row, :n], alone, atol=1e-6, rtol=0)


@pytest.mark.parametrize("kind", ["lstm", "transformer"])
def test_embedding_reads_as_the_language_models_were_trained(kind, tiny_bilm, tiny_transformer):
    """BiLM.forward's forward half is the forward LM on ``<S> w </S>``; its backward half is the
    backward LM on the reversed ``</S> w <S>`` of a training stream, put back in order."""
    model = tiny_bilm if kind == "lstm" else tiny_transformer
    sentence = ["the", "cat", "sat", "down"]
    layers = run(model, [sentence]).layers[1:, 0]  # (N, T+2, 2D)
    framed = ["<S>", *sentence, "</S>"]
    mask = torch.ones(1, len(framed), dtype=torch.bool)
    with torch.no_grad():
        forward = model.language_model(batch_to_ids([framed]), mask).layers
        backward = model.language_model(batch_to_ids([framed[::-1]]), mask, backward=True).layers
    for index in range(model.num_layers - 1):
        assert torch.allclose(forward_half(layers[index]), forward[index][0], atol=1e-6)
        assert torch.allclose(backward_half(layers[index]), backward[index][0].flip(0), atol=1e-6)


def test_the_recurrence_kernel_does_not_change_a_transformer(tiny_transformer):
    exact = run(tiny_transformer, SENTENCES).layers
    tiny_transformer.kernel = "fused"
    assert torch.equal(run(tiny_transformer, SENTENCES).layers, exact)


@pytest.mark.parametrize("backward_width", [None, 20])
def test_both_language_models_at_once_equal_each_alone(tiny_bilm, backward_width):
    """One encoder pass over both windows (or two, when their widths differ) gives each direction
    what it gets alone, up to rounding: the encoder's products see more rows at once."""
    tiny_bilm.eval()
    forward_ids = batch_to_ids([["the", "river", "bank"], ["a", "bank", "of", "rivers"]])  # (2, 4, W)
    backward_ids = batch_to_ids([["bank", "the", "of"], ["loans", "bank", "a"]])  # (2, 3, W)
    backward_ids = torch.cat([backward_ids, backward_ids.new_zeros(2, 1, backward_ids.shape[-1])], dim=1)
    if backward_width is not None:
        backward_ids = backward_ids[..., :backward_width]
    masks = ((forward_ids > 0).any(-1), (backward_ids > 0).any(-1))
    with torch.no_grad():
        both = tiny_bilm.language_models((forward_ids, backward_ids), masks)
        alone = [tiny_bilm.language_model(ids, mask, backward=backward)
                 for ids, mask, backward in ((forward_ids, masks[0], False), (backward_ids, masks[1], True))]  # fmt: skip
    for together, single in zip(both, alone):
        assert len(together.layers) == len(single.layers)
        for a, b in zip(together.layers, single.layers):
            torch.testing.assert_close(a, b)
        for a, b in zip(together.state, single.state):
            torch.testing.assert_close(a, b)
