"""A slow, obvious float64 numpy reference of the published ELMo biLM (the test oracle).

This is a helper module for tests, not a test file. It deliberately imports nothing from ``elmo``:
it reads ``options.json`` + ``weights.hdf5`` in the published layout (what bilm-tf's
``dump_weights`` writes and AllenNLP's ``_ElmoBiLm`` reads) and follows those two code bases'
semantics line by line, so that our fast implementation can be checked against it.

The pieces, in the order the data flows through them:

1. ``char_ids``: each token -> W byte ids framed by begin/end-of-word marks, shifted by +1.
2. Character CNN: embedding (a zero row prepended for id 0), valid 1-D convolutions over the W
   positions, max over positions, activation; then highway layers and a linear projection to P.
3. Two LSTM stacks (forward, backward), TensorFlow ``LSTMCell`` with projection and clipping;
   residual connections between layers >= 1 when ``use_skip_connections``.
4. Optional statefulness across batches, with the row-wise rules of bilm-tf / AllenNLP.

``write_random_published_model`` writes random models in the same layout, for tests.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

BOS_CHAR = 256  # begin of sentence
EOS_CHAR = 257  # end of sentence
BOW_CHAR = 258  # begin of word
EOW_CHAR = 259  # end of word
PAD_CHAR = 260  # padding inside a token's W slots
BOS_TOKEN = "<S>"
EOS_TOKEN = "</S>"


# ------------------------------------------------------------------------------------------------
# Characters


def _frame(byte_ids: Sequence[int], max_chars: int) -> list[int]:
    slots = [PAD_CHAR] * max_chars
    slots[0] = BOW_CHAR
    slots[1 : 1 + len(byte_ids)] = list(byte_ids)
    slots[1 + len(byte_ids)] = EOW_CHAR
    return [slot + 1 for slot in slots]  # +1: id 0 is kept for "no token here"


def char_ids(tokens: Sequence[str], max_chars: int = 50) -> np.ndarray:
    """ELMo character ids of a list of tokens, shape (n, W), already shifted by +1.

    ``<S>`` and ``</S>`` (also when they occur literally in the text) become the sentence-boundary
    frames, exactly as in bilm-tf and AllenNLP.
    """
    rows = []
    for token in tokens:
        if token == BOS_TOKEN:
            rows.append(_frame([BOS_CHAR], max_chars))
        elif token == EOS_TOKEN:
            rows.append(_frame([EOS_CHAR], max_chars))
        else:
            rows.append(_frame(list(token.encode("utf-8", "ignore")[: max_chars - 2]), max_chars))
    return np.array(rows, dtype=np.int64).reshape(len(rows), max_chars)


# ------------------------------------------------------------------------------------------------
# Weights


@dataclass
class _LstmLayer:
    input_and_hidden_weights: np.ndarray  # (P + P, 4H), TF gate order i, j, f, o
    bias: np.ndarray  # (4H,)
    projection: np.ndarray  # (H, P)


@dataclass
class _Weights:
    char_embedding: np.ndarray  # (262, E); row 0 is the zero row for padding id 0
    conv_kernels: list[np.ndarray]  # each (width, E, num_filters)
    conv_biases: list[np.ndarray]  # each (num_filters,)
    highways: list[dict[str, np.ndarray]]  # W_carry, b_carry, W_transform, b_transform
    projection: np.ndarray  # (F, P)
    projection_bias: np.ndarray  # (P,)
    lstm: list[list[_LstmLayer]]  # [direction][layer]


def _load_weights(weight_file: Path, options: dict) -> _Weights:
    cnn = options["char_cnn"]
    n_layers = options["lstm"]["n_layers"]

    def read(handle: h5py.File, name: str) -> np.ndarray:
        return np.asarray(handle[name][...], dtype=np.float64)

    with h5py.File(weight_file, "r") as handle:
        table = read(handle, "char_embed")  # (261, E)
        char_embedding = np.concatenate([np.zeros((1, table.shape[1])), table], axis=0)
        kernels, biases = [], []
        for i in range(len(cnn["filters"])):
            kernels.append(read(handle, f"CNN/W_cnn_{i}")[0])  # (1, w, E, n) -> (w, E, n)
            biases.append(read(handle, f"CNN/b_cnn_{i}"))
        highways = [
            {
                key: read(handle, f"CNN_high_{k}/{key}")
                for key in ("W_carry", "b_carry", "W_transform", "b_transform")
            }
            for k in range(cnn.get("n_highway", 0))
        ]
        lstm = []
        for direction in range(2):
            layers = []
            for layer in range(n_layers):
                prefix = f"RNN_{direction}/RNN/MultiRNNCell/Cell{layer}/LSTMCell"
                layers.append(
                    _LstmLayer(
                        read(handle, f"{prefix}/W_0"),
                        read(handle, f"{prefix}/B"),
                        read(handle, f"{prefix}/W_P_0"),
                    )
                )
            lstm.append(layers)
        return _Weights(
            char_embedding=char_embedding,
            conv_kernels=kernels,
            conv_biases=biases,
            highways=highways,
            projection=read(handle, "CNN_proj/W_proj"),
            projection_bias=read(handle, "CNN_proj/b_proj"),
            lstm=lstm,
        )


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0.0)


# ------------------------------------------------------------------------------------------------
# The model


class ReferenceBiLM:
    """The published ELMo biLM in float64 numpy.

    Args:
        options_file: the model's ``options.json``.
        weight_file: the model's ``weights.hdf5`` (published layout).
    """

    def __init__(self, options_file: str | Path, weight_file: str | Path) -> None:
        self.options = json.loads(Path(options_file).read_text())
        lstm = self.options["lstm"]
        cnn = self.options["char_cnn"]
        self.n_layers: int = lstm["n_layers"]
        self.projection_dim: int = lstm["projection_dim"]
        self.cell_dim: int = lstm["dim"]
        self.cell_clip: float | None = lstm.get("cell_clip")
        self.proj_clip: float | None = lstm.get("proj_clip")
        self.use_skip_connections: bool = bool(lstm.get("use_skip_connections", False))
        self.max_chars: int = cnn["max_characters_per_token"]
        activation = cnn["activation"]
        if activation not in ("relu", "tanh"):
            raise ValueError(f"char_cnn.activation must be 'relu' or 'tanh', got {activation!r}")
        self.cnn_activation = _relu if activation == "relu" else np.tanh
        self.weights = _load_weights(Path(weight_file), self.options)
        # Stateful mode: [direction][layer] -> (h (rows, P), c (rows, H)); None = nothing stored.
        self._state: list[list[tuple[np.ndarray, np.ndarray]]] | None = None

    # -- character encoder ----------------------------------------------------------------------

    def embed_tokens(self, ids: np.ndarray) -> np.ndarray:
        """Character encoder: ids (N, W) -> token vectors (N, P) (CNN, highway, projection)."""
        w = self.weights
        chars = w.char_embedding[ids]  # (N, W, E)
        n_positions = chars.shape[1]
        pooled = []
        for kernel, bias in zip(w.conv_kernels, w.conv_biases):
            width = kernel.shape[0]
            n_out = n_positions - width + 1
            # windows[n, p, j, e] = chars[n, p + j, e]
            windows = np.stack([chars[:, j : j + n_out] for j in range(width)], axis=2)
            conv = np.einsum("npje,jek->npk", windows, kernel) + bias  # (N, W-w+1, n_filters)
            pooled.append(self.cnn_activation(conv.max(axis=1)))  # max over positions first
        x = np.concatenate(pooled, axis=-1)  # (N, F)
        for layer in w.highways:
            carry_gate = _sigmoid(x @ layer["W_carry"] + layer["b_carry"])
            transform = _relu(x @ layer["W_transform"] + layer["b_transform"])
            x = carry_gate * transform + (1.0 - carry_gate) * x
        return x @ w.projection + w.projection_bias  # (N, P)

    # -- LSTM -----------------------------------------------------------------------------------

    def _cell_step(self, layer: _LstmLayer, x, h, c):
        """One TensorFlow LSTMCell step (with projection) on a batch: returns new (h, c)."""
        H = self.cell_dim
        z = np.concatenate([x, h], axis=-1) @ layer.input_and_hidden_weights + layer.bias
        i, j, f, o = z[:, :H], z[:, H : 2 * H], z[:, 2 * H : 3 * H], z[:, 3 * H :]
        c = _sigmoid(f + 1.0) * c + _sigmoid(i) * np.tanh(j)  # TF forget_bias=1.0
        if self.cell_clip is not None:
            c = np.clip(c, -self.cell_clip, self.cell_clip)
        h = (_sigmoid(o) * np.tanh(c)) @ layer.projection
        if self.proj_clip is not None:
            h = np.clip(h, -self.proj_clip, self.proj_clip)
        return h, c

    def _run_layer(self, layer, inputs, lengths, h, c, forward: bool):
        """One layer over a padded batch; rows only step while inside their own length.

        inputs (B, T, P), lengths (B,), h (B, P), c (B, H). Returns outputs (B, T, P) and the
        final (h, c): forward after the last real token, backward after position 0.
        """
        outputs = np.zeros_like(inputs)
        steps = range(inputs.shape[1]) if forward else reversed(range(inputs.shape[1]))
        for t in steps:
            active = lengths > t  # backward: each row starts at its own last token
            new_h, new_c = self._cell_step(layer, inputs[active, t], h[active], c[active])
            h, c = h.copy(), c.copy()
            h[active], c[active] = new_h, new_c
            outputs[active, t] = new_h
        return outputs, h, c

    def _run_stack(self, direction: int, inputs, lengths, initial):
        """All layers of one direction; returns per-layer outputs [(B, T, P)] and final states."""
        layer_input = inputs
        outputs, finals = [], []
        for index, layer in enumerate(self.weights.lstm[direction]):
            h0, c0 = initial[index]
            out, h, c = self._run_layer(layer, layer_input, lengths, h0, c0, forward=direction == 0)
            if index >= 1 and self.use_skip_connections:
                out = out + layer_input  # residual; the carried state h stays pre-residual
            outputs.append(out)
            finals.append((h, c))
            layer_input = out
        return outputs, finals

    # -- state ----------------------------------------------------------------------------------

    def _initial_state(self, rows: int, stateful: bool):
        P, H = self.projection_dim, self.cell_dim
        state = [
            [(np.zeros((rows, P)), np.zeros((rows, H))) for _ in range(self.n_layers)]
            for _ in range(2)
        ]
        if stateful and self._state is not None:
            for direction in range(2):
                for layer in range(self.n_layers):
                    stored_h, stored_c = self._state[direction][layer]
                    k = min(rows, stored_h.shape[0])  # extra rows of a bigger batch start at zero
                    state[direction][layer][0][:k] = stored_h[:k]
                    state[direction][layer][1][:k] = stored_c[:k]
        return state

    def _store_state(self, finals) -> None:
        if self._state is None:
            self._state = [[(h.copy(), c.copy()) for h, c in d] for d in finals]
            return
        for direction in range(2):
            for layer in range(self.n_layers):
                new_h, new_c = finals[direction][layer]
                old_h, old_c = self._state[direction][layer]
                rows = new_h.shape[0]
                if old_h.shape[0] > rows:  # rows missing from a smaller batch keep their state
                    new_h = np.concatenate([new_h, old_h[rows:]], axis=0)
                    new_c = np.concatenate([new_c, old_c[rows:]], axis=0)
                self._state[direction][layer] = (new_h.copy(), new_c.copy())

    def perturbed(self, relative: float, seed: int) -> ReferenceBiLM:
        """A copy with every weight multiplied by (1 + u), u ~ Uniform(-relative, relative).

        Used to measure how far rounding-sized changes can move the outputs (see
        ``noise_envelope``). The copy has no stored state.
        """
        rng = np.random.default_rng(seed)
        clone = copy.deepcopy(self)
        clone.reset_states()

        def jitter(array: np.ndarray) -> np.ndarray:
            return array * (1.0 + rng.uniform(-relative, relative, array.shape))

        w = clone.weights
        w.char_embedding = jitter(w.char_embedding)
        w.conv_kernels = [jitter(k) for k in w.conv_kernels]
        w.conv_biases = [jitter(b) for b in w.conv_biases]
        w.highways = [{k: jitter(v) for k, v in layer.items()} for layer in w.highways]
        w.projection, w.projection_bias = jitter(w.projection), jitter(w.projection_bias)
        w.lstm = [
            [
                _LstmLayer(jitter(x.input_and_hidden_weights), jitter(x.bias), jitter(x.projection))
                for x in direction
            ]
            for direction in w.lstm
        ]
        return clone

    def reset_states(self) -> None:
        """Forget the stored stateful LSTM state."""
        self._state = None

    # -- public API -----------------------------------------------------------------------------

    def run_batch(self, sentences: Sequence[Sequence[str]], stateful: bool = False) -> list:
        """One batch: boundaries are added per sentence and removed from the outputs.

        Returns, per sentence, an array (n_layers + 1, n_tokens, 2P). An empty sentence gets no
        boundaries (like AllenNLP, whose mask is empty), so its row never steps and its state
        stays as it was.
        """
        P = self.projection_dim
        framed = [[BOS_TOKEN, *s, EOS_TOKEN] if len(s) else [] for s in sentences]
        lengths = np.array([len(s) for s in framed])
        rows, longest = len(framed), max(int(lengths.max(initial=0)), 1)
        vectors = self.embed_tokens(char_ids([t for s in framed for t in s], self.max_chars))
        tokens = np.zeros((rows, longest, P))  # (B, T, P), zero past each row's length
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        for r in range(rows):
            tokens[r, : lengths[r]] = vectors[offsets[r] : offsets[r + 1]]
        initial = self._initial_state(rows, stateful)
        fwd, fwd_final = self._run_stack(0, tokens, lengths, initial[0])
        bwd, bwd_final = self._run_stack(1, tokens, lengths, initial[1])
        if stateful:
            self._store_state([fwd_final, bwd_final])
        layers = [np.concatenate([tokens, tokens], axis=-1)]
        layers += [np.concatenate([f, b], axis=-1) for f, b in zip(fwd, bwd)]
        stacked = np.stack(layers)  # (L + 1, B, T, 2P)
        # (L + 1, T, 2P) per row, without <S> and </S>
        return [stacked[:, r, 1 : n - 1] if n else stacked[:, r, :0] for r, n in enumerate(lengths)]

    def run(
        self,
        sentences: Sequence[Sequence[str]],
        stateful: bool = False,
        batch_size: int = 64,
    ) -> list[np.ndarray]:
        """Run sentences in file order, in batches of ``batch_size`` rows.

        Args:
            sentences: tokenized sentences, without ``<S>``/``</S>`` (added here).
            stateful: carry each row's final LSTM state into the same row of the next batch
                (and across ``run`` calls, until ``reset_states``); otherwise every sentence
                starts from the zero state and the batching does not matter.
            batch_size: rows per batch.

        Returns:
            Per sentence, float64 (n_layers + 1, n_tokens, 2P): the token layer as
            ``[tok | tok]``, then each LSTM layer as ``[forward | backward]``.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        out: list[np.ndarray] = []
        for start in range(0, len(sentences), batch_size):
            out.extend(self.run_batch(sentences[start : start + batch_size], stateful=stateful))
        return out


# ------------------------------------------------------------------------------------------------
# Random published-format models


def write_random_published_model(
    directory: str | Path,
    *,
    char_dim: int,
    filters: Sequence[Sequence[int]],
    n_highway: int,
    lstm_dim: int,
    projection_dim: int,
    n_layers: int,
    activation: str,
    cell_clip: float | None,
    proj_clip: float | None,
    use_skip_connections: bool = True,
    seed: int,
    scale: float = 1.0,
) -> tuple[Path, Path]:
    """Write ``options.json`` and ``weights.hdf5`` of a random model in the published layout.

    Weights are Gaussian, float32, with fan-in scaling times per-tensor gains chosen so that at
    ``scale=1`` (with clips of 3 and P=32, H=128) about 2% of layer-1 values sit at the
    projection clip, the cell clip changes the outputs, and the recurrence is not chaotic (float32
    rounding moves outputs by ~1e-5 at most; see ``noise_envelope``). ``scale`` multiplies every
    standard deviation, and its effect compounds through the layers: well above 1 the model
    becomes chaotic like ``elmo-random-mid``. A ``None`` clip leaves its key out of
    ``options.json`` (meaning no clipping).

    Returns:
        (options_path, weights_path).
    """
    if activation not in ("relu", "tanh"):
        raise ValueError(f"activation must be 'relu' or 'tanh', got {activation!r}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    lstm_options: dict = {
        "use_skip_connections": use_skip_connections,
        "projection_dim": projection_dim,
        "dim": lstm_dim,
        "n_layers": n_layers,
    }
    if cell_clip is not None:
        lstm_options["cell_clip"] = cell_clip
    if proj_clip is not None:
        lstm_options["proj_clip"] = proj_clip
    options = {
        "lstm": lstm_options,
        "char_cnn": {
            "activation": activation,
            "filters": [list(map(int, f)) for f in filters],
            "n_highway": n_highway,
            "embedding": {"dim": char_dim},
            "n_characters": 262,
            "max_characters_per_token": 50,
        },
    }
    options_path = directory / "options.json"
    options_path.write_text(json.dumps(options))

    def gaussian(shape, fan_in: int, gain: float) -> np.ndarray:
        return (rng.standard_normal(shape) * gain * scale / np.sqrt(fan_in)).astype(np.float32)

    n_filters = sum(num for _, num in filters)
    weights_path = directory / "weights.hdf5"
    with h5py.File(weights_path, "w") as handle:
        handle["char_embed"] = gaussian((261, char_dim), 1, 1.0)
        for i, (width, num) in enumerate(filters):
            handle[f"CNN/W_cnn_{i}"] = gaussian((1, width, char_dim, num), width * char_dim, 1.0)
            handle[f"CNN/b_cnn_{i}"] = gaussian((num,), 1, 0.1)
        for k in range(n_highway):
            handle[f"CNN_high_{k}/W_carry"] = gaussian((n_filters, n_filters), n_filters, 1.0)
            handle[f"CNN_high_{k}/b_carry"] = gaussian((n_filters,), 1, 0.5)
            handle[f"CNN_high_{k}/W_transform"] = gaussian((n_filters, n_filters), n_filters, 1.0)
            handle[f"CNN_high_{k}/b_transform"] = gaussian((n_filters,), 1, 0.1)
        handle["CNN_proj/W_proj"] = gaussian((n_filters, projection_dim), n_filters, 1.5)
        handle["CNN_proj/b_proj"] = gaussian((projection_dim,), 1, 0.1)
        for direction in range(2):
            for layer in range(n_layers):
                prefix = f"RNN_{direction}/RNN/MultiRNNCell/Cell{layer}/LSTMCell"
                # Rows [0, P) act on the layer input, rows [P, 2P) on h_prev. A strong input part
                # and a large W_P_0 make the clips bite; a weak recurrent part keeps the
                # recurrence from being chaotic, so float32 and float64 runs stay within ~1e-5.
                input_part = gaussian((projection_dim, 4 * lstm_dim), projection_dim, 2.0)
                recurrent_part = gaussian((projection_dim, 4 * lstm_dim), projection_dim, 0.5)
                handle[f"{prefix}/W_0"] = np.concatenate([input_part, recurrent_part], axis=0)
                handle[f"{prefix}/B"] = gaussian((4 * lstm_dim,), 1, 0.5)
                handle[f"{prefix}/W_P_0"] = gaussian((lstm_dim, projection_dim), lstm_dim, 3.0)
    return options_path, weights_path


# ------------------------------------------------------------------------------------------------
# How precisely can float32 outputs be compared at all?


def noise_envelope(
    model: ReferenceBiLM,
    sentences: Sequence[Sequence[str]],
    stateful: bool = False,
    batch_size: int = 64,
    seeds: Sequence[int] = (0, 1, 2),
    relative: float = 2.0**-24,
) -> list[np.ndarray]:
    """How far float32-sized rounding can move each output of ``model.run``, per sentence.

    A biLM whose recurrence is chaotic (large random weights, e.g. ``elmo-random-mid``)
    amplifies the ~1e-7 rounding of a float32 run by ~1.3x per time step, so two correct
    implementations drift apart along long sentences, and even more along stateful runs. This
    runs copies of the model with weights jittered by float32's unit roundoff and takes, for each
    sentence, layer, half ([fwd | bwd]) and position, the largest deviation from the unjittered
    run over features and seeds, as a running max in the direction of the recurrence (forward:
    left to right, backward: right to left; the token layer has no recurrence). Compare as
    ``|ours - expected| <= atol + k * envelope`` with k of a few tens.

    Returns:
        Per sentence, an array broadcastable to the outputs: (n_layers + 1, n_tokens, 2P).
    """
    fresh = model.perturbed(0.0, seed=0)  # an exact copy without stored state
    base = fresh.run(sentences, stateful=stateful, batch_size=batch_size)
    spread = [np.zeros_like(b) for b in base]
    for seed in seeds:
        jittered = model.perturbed(relative, seed).run(
            sentences, stateful=stateful, batch_size=batch_size
        )
        spread = [np.maximum(s, np.abs(j - b)) for s, j, b in zip(spread, jittered, base)]
    envelopes = []
    for s in spread:
        half = s.shape[-1] // 2
        forward = s[..., :half].max(-1)  # (L + 1, T)
        backward = s[..., half:].max(-1)  # (L + 1, T)
        forward[1:] = np.maximum.accumulate(forward[1:], axis=1)
        backward[1:] = np.maximum.accumulate(backward[1:, ::-1], axis=1)[:, ::-1]
        envelope = np.empty_like(s)  # (L + 1, T, 2P)
        envelope[..., :half] = forward[..., None]
        envelope[..., half:] = backward[..., None]
        envelopes.append(envelope)
    return envelopes
