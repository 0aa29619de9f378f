"""The published ELMo format: ``options.json`` + ``weights.hdf5`` (bilm-tf's ``dump_weights``).

This is the format of the AllenNLP / bilm-tf pretrained models. Reading it maps their names and
conventions to ours; writing it maps back, so a model trained here runs in any code that reads
the published format. The conventions handled here:

* the character table in the file has no padding row: we prepend a zero row 0;
* convolutions are stored (1, width, E, count): ours are Conv1d (count, E, width);
* dense weights are stored (in, out) for ``x @ W``: ours are (out, in);
* highway: the file's gate multiplies the transform (``c * f(x) + (1 - c) * x``); ours multiplies
  the input (``g * x + (1 - g) * f(x)``), so its weights and bias load negated (exact in floats);
* LSTM: ``W_0`` stacks input and recurrent weights, with gates in TensorFlow's order (input,
  candidate, forget, output); ours are split and ordered (input, forget, candidate, output). The
  forget bias +1 is not in the file; we add it at run time like TensorFlow (``forget_bias``).

All maps are transposes, permutations and negations, so published -> ours -> published is
bit-exact.

The format records no checksums of its own (a published model fetched by name is checked by
``elmo.hub`` against the sums of its catalog); ``export_published`` writes every dataset with
HDF5's Fletcher-32 filter, which HDF5 checks on read. Loading checks what it can: the file is HDF5, every dataset
the options call for is there with the right shape and a float dtype, and no value is NaN or
infinite; any failure is a ``ModelFileError`` naming the file and the dataset.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import h5py
import numpy as np
import torch

from elmo.config import BiLMConfig, CharCNNConfig, LSTMConfig
from elmo.files import ModelFileError, atomic_write_text, replace, temp_path
from elmo.model import BiLM
from elmo.modules.loading import aligned, without_random_init

# Our gate order (i, f, g, o) taken from TensorFlow's (i, g, f, o), and back (the same swap).
_GATE_SWAP = (0, 2, 1, 3)


def bilm_config_from_options(options: dict) -> BiLMConfig:
    """The BiLMConfig of a published ``options.json`` (missing clips: no clipping)."""
    try:
        cnn, lstm = options["char_cnn"], options["lstm"]
        config = BiLMConfig(
            char_cnn=CharCNNConfig(
                char_embedding_dim=int(cnn["embedding"]["dim"]),
                filters=[[int(w), int(n)] for w, n in cnn["filters"]],
                num_highway_layers=int(cnn.get("n_highway", 0)),
                activation=cnn.get("activation", "relu"),
                max_characters_per_token=int(cnn.get("max_characters_per_token", 50)),
                num_characters=max(int(cnn.get("n_characters", 262)), 262),
            ),
            lstm=LSTMConfig(
                num_layers=int(lstm.get("n_layers", 2)),
                cell_size=int(lstm["dim"]),
                projection_dim=int(lstm["projection_dim"]),
                cell_clip=_optional_float(lstm.get("cell_clip")),
                projection_clip=_optional_float(lstm.get("proj_clip")),
                use_skip_connections=bool(lstm.get("use_skip_connections", False)),
            ),
            dropout=0.0,
        )
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"not a valid ELMo options dict ({error!r}): {options}") from error
    return config.validate()


def options_from_bilm_config(config: BiLMConfig) -> dict:
    """The published ``options.json`` dict of a BiLMConfig.

    Raises:
        ValueError: a model the format cannot hold: a contextualiser other than the LSTM, or a
            forget bias other than 1.
    """
    if config.contextualizer != "lstm":
        raise ValueError(
            f"the published format (options.json + weights.hdf5) holds LSTM biLMs only; this "
            f"model's contextualizer is {config.contextualizer!r}: save it as our directory "
            f"instead (elmo.pretrained.save_pretrained)"
        )
    cnn, lstm = config.char_cnn, config.lstm
    options = {
        "char_cnn": {
            "activation": cnn.activation,
            "embedding": {"dim": cnn.char_embedding_dim},
            "filters": [list(f) for f in cnn.filters],
            "max_characters_per_token": cnn.max_characters_per_token,
            "n_characters": cnn.num_characters,
            "n_highway": cnn.num_highway_layers,
        },
        "lstm": {
            "dim": lstm.cell_size,
            "n_layers": lstm.num_layers,
            "projection_dim": lstm.projection_dim,
            "use_skip_connections": lstm.use_skip_connections,
        },
    }
    if lstm.cell_clip is not None:
        options["lstm"]["cell_clip"] = lstm.cell_clip
    if lstm.projection_clip is not None:
        options["lstm"]["proj_clip"] = lstm.projection_clip
    if lstm.forget_bias != 1.0:
        raise ValueError(f"the published format fixes forget_bias at 1.0, got {lstm.forget_bias}")
    return options


def load_published(options_file: str | os.PathLike, weight_file: str | os.PathLike) -> BiLM:
    """A BiLM (eval mode) with the weights of a published-format model.

    Raises:
        ModelFileError: options that are not valid JSON or not an ELMo model's, or a weight file
            that is not HDF5, is truncated, lacks a dataset, or holds a wrong shape or a NaN.
    """
    options = _read_options(options_file)
    try:
        config = bilm_config_from_options(options)
    except ValueError as error:
        raise ModelFileError(f"{options_file}: {error}") from None
    state = _read_weights(weight_file, config)
    with without_random_init():  # every parameter is replaced next (_check_complete)
        model = BiLM(config)
    # assign: the parameters become the file's tensors, not copies of them (one copy of the
    # weights in memory, not two); buffers only are missing, checked below
    model.load_state_dict(state, strict=False, assign=True)
    _check_complete(model, state, str(weight_file))
    return model.eval()


def export_published(
    model: BiLM, options_file: str | os.PathLike, weight_file: str | os.PathLike
) -> None:
    """Write ``model`` as a published-format ``options.json`` and ``weights.hdf5``.

    Raises:
        ValueError: the format cannot hold the model (a Transformer; ``options_from_bilm_config``),
            before any file is written.
    """
    options = options_from_bilm_config(model.config)
    state = {k: v.detach().cpu().float().numpy() for k, v in model.state_dict().items()}
    tmp = temp_path(weight_file)  # both files written atomically, weights first
    try:
        with h5py.File(tmp, "w") as fout:
            for name, array in state_dict_to_published(state, model.config).items():
                # Fletcher-32: HDF5 checks each chunk on read, so a damaged byte in the values
                # is an error, not a different model (readers of the format need no change).
                fout.create_dataset(name, data=array, fletcher32=True)
        replace(tmp, weight_file)
    finally:
        tmp.unlink(missing_ok=True)
    atomic_write_text(options_file, json.dumps(options, indent=2) + "\n")


def write_random_published(
    config: BiLMConfig, directory: str | os.PathLike, seed: int = 0
) -> tuple[Path, Path]:
    """A randomly initialised BiLM of ``config``, written in the published format.

    For benchmarks and tests that need a model of a given shape, not a trained one.

    Returns:
        (options_path, weights_path) inside ``directory``.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    model = BiLM(dataclasses.replace(config, vocab_size=0))
    torch.random.set_rng_state(generator_state)
    paths = directory / "options.json", directory / "weights.hdf5"
    export_published(model, *paths)
    return paths


def published_to_state_dict(
    weights: h5py.File, config: BiLMConfig, source: str = "weights"
) -> dict[str, torch.Tensor]:
    """Our state dict from an open published HDF5 file (shapes checked against ``config``)."""

    def read(name: str, shape: tuple) -> np.ndarray:
        if name not in weights or not isinstance(weights[name], h5py.Dataset):
            raise ModelFileError(f"{source}: dataset {name!r} is missing (expected shape {shape})")
        dataset = weights[name]
        if dataset.shape != shape:
            raise ModelFileError(
                f"{source}: dataset {name!r} has shape {dataset.shape}, expected {shape}"
            )
        if dataset.dtype.kind != "f":
            raise ModelFileError(f"{source}: dataset {name!r} has dtype {dataset.dtype}, not float")
        try:
            array = dataset[...].astype(np.float32, copy=False)
        except OSError as error:  # e.g. a Fletcher-32 sum that does not match: damaged values
            raise ModelFileError(f"{source}: dataset {name!r} cannot be read ({error})") from None
        if not np.isfinite(array).all():
            raise ModelFileError(f"{source}: dataset {name!r} holds NaN or infinite values")
        return array

    cnn, lstm = config.char_cnn, config.lstm
    E, F, D, H = cnn.char_embedding_dim, cnn.num_filters, lstm.projection_dim, lstm.cell_size
    # Each entry becomes its final contiguous tensor as soon as it is made, so that at most one
    # dataset's temporaries are held beside the weights (the peak RSS of a load).
    out = _Contiguous()
    table = read("char_embed", (cnn.num_characters - 1, E))  # (261, E): no padding row
    out["char_cnn.char_embedding.weight"] = np.concatenate([np.zeros((1, E), np.float32), table])
    for i, (width, count) in enumerate(cnn.filters):
        kernel = read(f"CNN/W_cnn_{i}", (1, width, E, count))
        out[f"char_cnn.convolutions.{i}.weight"] = kernel[0].transpose(2, 1, 0)  # (count, E, width)
        out[f"char_cnn.convolutions.{i}.bias"] = read(f"CNN/b_cnn_{i}", (count,))
    for k in range(cnn.num_highway_layers):
        group = f"CNN_high_{k}"
        out[f"char_cnn.highway.layers.{k}.weight"] = np.concatenate(
            [read(f"{group}/W_transform", (F, F)).T, -read(f"{group}/W_carry", (F, F)).T]
        )  # (2F, F)
        out[f"char_cnn.highway.layers.{k}.bias"] = np.concatenate(
            [read(f"{group}/b_transform", (F,)), -read(f"{group}/b_carry", (F,))]
        )
    out["char_cnn.projection.weight"] = read("CNN_proj/W_proj", (F, D)).T
    out["char_cnn.projection.bias"] = read("CNN_proj/b_proj", (D,))
    for direction, stack in enumerate(("forward_lstm", "backward_lstm")):
        for layer in range(lstm.num_layers):
            cell = f"RNN_{direction}/RNN/MultiRNNCell/Cell{layer}/LSTMCell"
            kernel = _swap_gates(read(f"{cell}/W_0", (2 * D, 4 * H)).T, H)  # (4H, D_in + D)
            prefix = f"{stack}.layers.{layer}"
            out[f"{prefix}.input_weight"] = kernel[:, :D]
            out[f"{prefix}.recurrent_weight"] = kernel[:, D:]
            out[f"{prefix}.bias"] = _swap_gates(read(f"{cell}/B", (4 * H,)), H)
            out[f"{prefix}.projection_weight"] = read(f"{cell}/W_P_0", (H, D)).T
    return dict(out)


class _Contiguous(dict):
    """A dict that stores each numpy array set into it as a contiguous torch tensor (torch's
    blocked, threaded copy: a transpose copied by numpy is several times slower; ORIGINAL: 0.7 s)
    at a 64-byte boundary (numpy's arrays may start 16 bytes past one: elmo.modules.loading)."""

    def __setitem__(self, name: str, array: np.ndarray) -> None:
        super().__setitem__(name, aligned(torch.from_numpy(array).contiguous()))


def state_dict_to_published(state: dict[str, np.ndarray], config: BiLMConfig) -> dict[str, np.ndarray]:
    """The published datasets (name -> float32 array) of our state dict (inverse of the above)."""
    cnn, lstm = config.char_cnn, config.lstm
    F = cnn.num_filters
    out = {"char_embed": state["char_cnn.char_embedding.weight"][1:]}
    for i in range(len(cnn.filters)):
        out[f"CNN/W_cnn_{i}"] = state[f"char_cnn.convolutions.{i}.weight"].transpose(2, 1, 0)[None]
        out[f"CNN/b_cnn_{i}"] = state[f"char_cnn.convolutions.{i}.bias"]
    for k in range(cnn.num_highway_layers):
        weight = state[f"char_cnn.highway.layers.{k}.weight"]
        bias = state[f"char_cnn.highway.layers.{k}.bias"]
        out[f"CNN_high_{k}/W_transform"] = weight[:F].T
        out[f"CNN_high_{k}/W_carry"] = -weight[F:].T
        out[f"CNN_high_{k}/b_transform"] = bias[:F]
        out[f"CNN_high_{k}/b_carry"] = -bias[F:]
    out["CNN_proj/W_proj"] = state["char_cnn.projection.weight"].T
    out["CNN_proj/b_proj"] = state["char_cnn.projection.bias"]
    H = lstm.cell_size
    for direction, stack in enumerate(("forward_lstm", "backward_lstm")):
        for layer in range(lstm.num_layers):
            cell = f"RNN_{direction}/RNN/MultiRNNCell/Cell{layer}/LSTMCell"
            prefix = f"{stack}.layers.{layer}"
            kernel = np.concatenate(
                [state[f"{prefix}.input_weight"], state[f"{prefix}.recurrent_weight"]], axis=1
            )
            out[f"{cell}/W_0"] = _swap_gates(kernel, H).T
            out[f"{cell}/B"] = _swap_gates(state[f"{prefix}.bias"], H)
            out[f"{cell}/W_P_0"] = state[f"{prefix}.projection_weight"].T
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in out.items()}


def _swap_gates(array: np.ndarray, cell_size: int) -> np.ndarray:
    """Reorder the 4 gate blocks along axis 0 (TensorFlow's order <-> ours; an involution)."""
    blocks = [array[g * cell_size : (g + 1) * cell_size] for g in range(4)]
    return np.concatenate([blocks[g] for g in _GATE_SWAP])


def _read_weights(weight_file: str | os.PathLike, config: BiLMConfig) -> dict[str, torch.Tensor]:
    """Our state dict from a published weight file, every failure naming the file."""
    source = str(weight_file)
    try:
        with h5py.File(weight_file, "r") as weights:
            return published_to_state_dict(weights, config, source)
    except ModelFileError:
        raise
    except FileNotFoundError:
        raise FileNotFoundError(f"weight file not found: {weight_file}") from None
    except (OSError, KeyError, ValueError, RuntimeError, TypeError) as error:
        # h5py's errors for a file that is not HDF5, is truncated, or has damaged metadata
        raise ModelFileError(f"{source}: not a readable HDF5 weight file ({error})") from None


def _read_options(options_file: str | os.PathLike) -> dict:
    try:
        options = json.loads(Path(options_file).read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"options file not found: {options_file}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelFileError(f"{options_file}: not valid JSON ({error})") from None
    if not isinstance(options, dict):
        raise ModelFileError(f"{options_file}: expected a JSON object, got {type(options).__name__}")
    return options


def _check_complete(model: BiLM, state: dict, source: str) -> None:
    expected = set(model.state_dict())
    missing = sorted(expected - set(state))
    if missing:
        raise ValueError(f"{source}: no weights for {missing} (is the softmax part of this model?)")


def _optional_float(value) -> float | None:
    return None if value is None else float(value)
