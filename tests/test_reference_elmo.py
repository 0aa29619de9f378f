"""The numpy reference biLM (tests/reference_elmo.py) reproduces the published fixtures.

bilm-tf-tiny is matched to 1e-5 everywhere. elmo-random-mid has a chaotic forward recurrence: any
float32 rounding (AllenNLP's, or ours) grows by ~1.3x per time step, so along long sentences and
stateful runs two correct implementations drift apart by up to O(1). There the outputs are
compared within a measured float32-noise envelope (``noise_envelope``), and exactly (1e-5)
wherever that envelope is negligible.
"""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
from reference_elmo import (
    ReferenceBiLM,
    char_ids,
    noise_envelope,
    write_random_published_model,
)
from shared_data import shared_path

ATOL = 1e-5
ENVELOPE_FACTOR = 30.0  # worst |oracle - fixture| / envelope seen: 5 (3 seeds) to 11 (2 seeds)


def _padded(ids: list[int], width: int = 50) -> list[int]:
    return ids + [261] * (width - len(ids))


def test_char_ids_frames_bytes_and_boundaries():
    ids = char_ids(["ab", "<S>", "</S>", "é", "x" * 60, "a\ud800b"])
    assert ids.shape == (6, 50)
    assert ids[0].tolist() == _padded([259, 98, 99, 260])
    assert ids[1].tolist() == _padded([259, 257, 260])
    assert ids[2].tolist() == _padded([259, 258, 260])
    assert ids[3].tolist() == _padded([259, 0xC3 + 1, 0xA9 + 1, 260])
    assert ids[4].tolist() == [259] + [ord("x") + 1] * 48 + [260]  # cut to W - 2 bytes
    assert ids[5].tolist() == _padded([259, 98, 99, 260])  # lone surrogate dropped


# ------------------------------------------------------------------------------------------------
# bilm-tf-tiny: outputs of the original TensorFlow code


@pytest.fixture(scope="module")
def tiny_model() -> ReferenceBiLM:
    root = shared_path("fixtures", "bilm-tf-tiny")
    return ReferenceBiLM(root / "options.json", root / "lm_weights.hdf5")


def test_token_layer_matches_bilm_tf_token_dump(tiny_model):
    root = shared_path("fixtures", "bilm-tf-tiny")
    vocab = (root / "vocab_test.txt").read_text(encoding="utf-8").split("\n")
    with h5py.File(root / "elmo_token_embeddings.hdf5", "r") as handle:
        expected = handle["embedding"][...]
    assert len(vocab) == expected.shape[0] == 458  # includes <S>, </S> and <UNK>
    outputs = tiny_model.run([[word] for word in vocab], batch_size=128)
    actual = np.stack([out[0, 0, :16] for out in outputs])  # token layer, first half
    np.testing.assert_allclose(actual, expected, rtol=0, atol=ATOL)


def test_top_layer_matches_bilm_tf_stateful_run(tiny_model):
    root = shared_path("fixtures", "bilm-tf-tiny")
    lists = json.loads((root / "sentences.json").read_text(encoding="utf-8"))
    # Batch i holds sentence i of lists 0, 1, 2; the state carries over from batch to batch.
    ordered = [lists[k][i].split() for i in range(10) for k in range(3)]
    tiny_model.reset_states()
    outputs = tiny_model.run(ordered, stateful=True, batch_size=3)
    for k in range(3):
        with h5py.File(root / f"lm_embeddings_{k}.hdf5", "r") as handle:
            for i in range(10):
                forward, backward = handle[str(i)][...]  # (2, n, 16)
                expected = np.concatenate([forward, backward], axis=-1)  # (n, 32)
                np.testing.assert_allclose(
                    outputs[3 * i + k][-1], expected, rtol=0, atol=ATOL, err_msg=f"list {k} #{i}"
                )


# ------------------------------------------------------------------------------------------------
# elmo-random-mid: outputs of AllenNLP's _ElmoBiLm


@pytest.fixture(scope="module")
def mid():
    root = shared_path("fixtures", "elmo-random-mid")
    model = ReferenceBiLM(root / "options.json", root / "weights.hdf5")
    text = (root / "sentences.txt").read_text(encoding="utf-8")
    sentences = [line.split() for line in text.splitlines()]
    return root, model, sentences


@pytest.fixture(scope="module")
def mid_stateless(mid):
    root, model, sentences = mid
    outputs = model.run(sentences)
    return outputs, noise_envelope(model, sentences), np.load(root / "expected_stateless.npz")


@pytest.fixture(scope="module")
def mid_stateful(mid):
    root, model, sentences = mid
    model.reset_states()
    outputs = model.run(sentences, stateful=True, batch_size=8)
    envelope = noise_envelope(model, sentences, stateful=True, batch_size=8)
    return outputs, envelope, np.load(root / "expected_stateful_batch8.npz")


def _check_within_envelope(outputs, envelopes, expected) -> float:
    """Asserts the envelope bound everywhere and 1e-5 where rounding cannot matter.

    Returns the fraction of LSTM values that were held to 1e-5.
    """
    n_exact = n_lstm = 0
    assert len(outputs) == len(expected["lengths"])
    for i, (actual, envelope) in enumerate(zip(outputs, envelopes)):
        target = expected[str(i)]
        assert actual.shape == target.shape, f"sentence {i}"
        error = np.abs(actual - target)
        bound = ATOL + ENVELOPE_FACTOR * envelope
        assert np.all(error <= bound), f"sentence {i}: worst excess {np.max(error - bound):.3g}"
        calm = envelope < 1e-6
        assert np.all(error[calm] <= ATOL), f"sentence {i}: {error[calm].max():.3g} where calm"
        assert np.all(error[0] <= ATOL), f"sentence {i}: token layer off by {error[0].max():.3g}"
        n_exact += calm[1:].sum()
        n_lstm += calm[1:].size
    return n_exact / n_lstm


def test_random_mid_stateless_matches_allennlp(mid_stateless):
    outputs, envelopes, expected = mid_stateless
    assert [out.shape[1] for out in outputs] == expected["lengths"].tolist()
    exact_fraction = _check_within_envelope(outputs, envelopes, expected)
    assert exact_fraction > 0.15  # mostly the starts of each direction, and short sentences


def test_random_mid_stateful_matches_allennlp(mid_stateful):
    outputs, envelopes, expected = mid_stateful
    exact_fraction = _check_within_envelope(outputs, envelopes, expected)
    assert exact_fraction > 0.05


def test_envelope_check_catches_wrong_state_handling(mid_stateless, mid_stateful):
    stateless_outputs, _, _ = mid_stateless
    _, stateful_envelopes, stateful_expected = mid_stateful
    # Batches 2 and 3 start from carried state; zero state must be detected as wrong.
    for i in range(8, 24):
        error = np.abs(stateless_outputs[i] - stateful_expected[str(i)])
        assert np.any(error > ATOL + ENVELOPE_FACTOR * stateful_envelopes[i]), f"sentence {i}"


def test_literal_boundary_tokens_read_as_sentence_boundaries(mid, mid_stateless):
    _, model, sentences = mid
    _outputs, _, expected = mid_stateless
    row = next(i for i, s in enumerate(sentences) if "<S>" in s and "</S>" in s)
    for token in ("<S>", "</S>"):
        position = sentences[row].index(token)
        fixture_vector = expected[str(row)][0, position, :32]
        as_boundary = model.embed_tokens(char_ids([token]))[0]
        byte_ids = _padded([259] + [byte + 1 for byte in token.encode()] + [260])
        as_bytes = model.embed_tokens(np.array([byte_ids]))[0]
        np.testing.assert_allclose(fixture_vector, as_boundary, rtol=0, atol=ATOL)
        assert np.abs(fixture_vector - as_bytes).max() > 0.1


# ------------------------------------------------------------------------------------------------
# The oracle's own rules, on generated models


@pytest.fixture(scope="module")
def small_model(tmp_path_factory) -> ReferenceBiLM:
    paths = write_random_published_model(
        tmp_path_factory.mktemp("small"),
        char_dim=4,
        filters=[[1, 4], [2, 8]],
        n_highway=1,
        lstm_dim=16,
        projection_dim=8,
        n_layers=2,
        activation="relu",
        cell_clip=3.0,
        proj_clip=3.0,
        seed=1,
    )
    return ReferenceBiLM(*paths)


SENTENCES = [["a", "cat"], ["the", "dog", "ran", "off"], ["hi"], ["x", "y", "z"], ["go", "on"]]


def test_stateless_outputs_do_not_depend_on_batching(small_model):
    alone = small_model.run(SENTENCES, batch_size=1)
    together = small_model.run(SENTENCES, batch_size=5)
    for a, b in zip(alone, together):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)


def test_stateful_rows_keep_or_start_state_by_row(small_model):
    a, b, c, d, e, f = (["w", str(k)] for k in range(6))
    small_model.reset_states()
    out = small_model.run([a, b, c, d, e, f], stateful=True, batch_size=2)  # [a b] [c d] [e f]
    small_model.reset_states()
    # [a b] then [c] (row 1 untouched) then [d e f]: row 1 (e) continues after b; f starts at 0.
    odd = small_model.run([a, b], stateful=True, batch_size=2)
    odd += small_model.run([c], stateful=True) + small_model.run([d, e, f], stateful=True)
    small_model.reset_states()
    np.testing.assert_allclose(odd[2], out[2], rtol=0, atol=1e-12)  # c after a, as before
    b_then_e = small_model.run([a, b, [], e], stateful=True, batch_size=2)[3]
    np.testing.assert_allclose(odd[4], b_then_e, rtol=0, atol=1e-12)
    np.testing.assert_allclose(odd[5], small_model.run([f])[0], rtol=0, atol=1e-12)
    assert np.abs(out[3] - small_model.run([d])[0]).max() > 1e-3  # state really carried
    small_model.reset_states()


def test_written_model_loads_with_shapes_from_options(tmp_path):
    filters = [[1, 4], [3, 6], [6, 10]]
    options_path, weights_path = write_random_published_model(
        tmp_path,
        char_dim=5,
        filters=filters,
        n_highway=1,
        lstm_dim=24,
        projection_dim=12,
        n_layers=3,
        activation="tanh",
        cell_clip=3.0,
        proj_clip=3.0,
        seed=0,
    )
    options = json.loads(options_path.read_text())
    assert options["char_cnn"]["filters"] == filters
    assert options["char_cnn"]["activation"] == "tanh"
    assert (
        options["char_cnn"]["n_characters"],
        options["char_cnn"]["max_characters_per_token"],
    ) == (262, 50)
    with h5py.File(weights_path, "r") as handle:
        assert handle["char_embed"].shape == (261, 5)
        assert handle["CNN/W_cnn_2"].shape == (1, 6, 5, 10)
        assert handle["CNN_high_0/W_carry"].shape == (20, 20)
        assert "CNN_high_1" not in handle
        assert handle["RNN_1/RNN/MultiRNNCell/Cell2/LSTMCell/W_0"].shape == (24, 96)
        assert handle["RNN_1/RNN/MultiRNNCell/Cell2/LSTMCell/W_P_0"].shape == (24, 12)
    outputs = ReferenceBiLM(options_path, weights_path).run(SENTENCES)
    assert [out.shape for out in outputs] == [(4, len(s), 24) for s in SENTENCES]
    assert all(np.isfinite(out).all() for out in outputs)


def test_written_model_has_the_fixture_layout(tmp_path):
    root = shared_path("fixtures", "elmo-random-mid")
    reference_options = json.loads((root / "options.json").read_text())
    options_path, weights_path = write_random_published_model(
        tmp_path,
        char_dim=8,
        filters=reference_options["char_cnn"]["filters"],
        n_highway=2,
        lstm_dim=128,
        projection_dim=32,
        n_layers=2,
        activation="relu",
        cell_clip=3,
        proj_clip=3,
        seed=3,
    )
    assert json.loads(options_path.read_text()) == reference_options

    def layout(path):
        found = {}
        with h5py.File(path, "r") as handle:
            handle.visititems(
                lambda name, obj: (
                    found.update({name: (obj.shape, obj.dtype)})
                    if isinstance(obj, h5py.Dataset)
                    else None
                )
            )
        return found

    assert layout(weights_path) == layout(root / "weights.hdf5")


def test_written_model_clips_bite_and_absent_clips_mean_none(tmp_path):
    config = {
        "char_dim": 8,
        "filters": [[1, 8], [2, 16], [3, 16]],
        "n_highway": 2,
        "lstm_dim": 128,
        "projection_dim": 32,
        "n_layers": 2,
        "activation": "relu",
        "seed": 5,
    }
    clipped = ReferenceBiLM(
        *write_random_published_model(tmp_path / "clipped", cell_clip=3.0, proj_clip=3.0, **config)
    )
    free = ReferenceBiLM(
        *write_random_published_model(tmp_path / "free", cell_clip=None, proj_clip=None, **config)
    )
    assert "cell_clip" not in free.options["lstm"] and free.cell_clip is None
    sentences = [("the quick brown fox jumps over the lazy dog " * 3).split()] * 2
    layer1 = clipped.run(sentences)[0][1]
    at_clip = np.isclose(np.abs(layer1), 3.0, rtol=0, atol=1e-12).mean()
    assert 0.002 < at_clip < 0.2
    assert np.abs(free.run(sentences)[0][1]).max() > 3.0
    # Only the cell clip: outputs still change, so it is active too.
    cell_only = ReferenceBiLM(
        *write_random_published_model(tmp_path / "cell", cell_clip=3.0, proj_clip=None, **config)
    )
    assert np.abs(cell_only.run(sentences)[0][1] - free.run(sentences)[0][1]).max() > 1e-3
