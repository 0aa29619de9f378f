"""Our pretrained-model directory: the only code that knows checkpoint file names.

A pretrained model is a directory holding

* ``config.json``: ``{"format_version": 3, "model": <BiLMConfig as a dict>, "tokenizer":
  <TokenizerConfig as a dict>}``; version 3 records the contextualiser (``model.contextualizer``
  and ``model.transformer``), which versions 1 and 2 lack: they read as the LSTM; version 1
  (before tokenizers) has no ``tokenizer`` and reads as the ``words`` tokenizer;
* ``model.safetensors``: the weights of the unwrapped module (safetensors never runs code on load);
* ``vocab.txt``: the softmax vocabulary, when the model has a softmax;
* ``sentencepiece.model``: the trained sentencepiece model, when the tokenizer is sentencepiece.

``config.json`` also records the sha256 of every other file of the directory (``"files"``), and of
its own content (``"files"["config.json"]``: the sha256 of the rest of it, the other sums
included, as canonical JSON). Every load checks the files it reads against these: a damaged or
swapped file is a ``ModelFileError`` naming it, never a silent load. Directories written before the sums (no
``"files"``) still load; their weights are checked for NaN and infinity instead. Each file is
written atomically, and ``config.json`` last, so a directory whose save was interrupted holds
either the old model or files that do not match their sums.

``load_bilm`` is the one loader every command goes through: it reads this directory
(``from_pretrained``) or the published format (``options.json`` + ``weights.hdf5``,
``elmo.published.load_published``), so every command takes either kind of model. It also takes
the name of a published model (``elmo-small``, ...), which ``elmo.hub`` turns into cached files
(downloading them the first time); a local path always wins over a name.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from safetensors.torch import save as save_safetensors

from elmo.config import bilm_config_from_dict, config_to_dict, tokenizer_config_from_dict
from elmo.files import (
    ModelFileError,
    atomic_write_bytes,
    atomic_write_text,
    sha256_bytes,
    sha256_file,
)
from elmo.hub import fetch_model, is_model_name
from elmo.model import BiLM
from elmo.modules.loading import aligned, without_random_init

FORMAT_VERSION = 3  # 2 added "tokenizer" to config.json; 3 the contextualiser's kind and sizes
READABLE_VERSIONS = (1, 2, 3)
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
VOCAB_FILE = "vocab.txt"
SENTENCEPIECE_FILE = "sentencepiece.model"
PUBLISHED_OPTIONS_FILE = "options.json"
PUBLISHED_WEIGHTS_FILE = "weights.hdf5"
SUMS_KEY = "files"  # config.json: file name -> sha256 of each other file of the directory
CONFIG_KEYS = {"format_version", "model", "tokenizer", SUMS_KEY}


def save_pretrained(model: BiLM, directory: str | os.PathLike, vocab=None, tokenizer=None) -> Path:
    """Write ``model`` (and its vocabulary and tokenizer, if given) as a pretrained directory.

    Args:
        model: the BiLM (unwrap DDP / torch.compile first).
        directory: created if needed; existing files of the format are overwritten.
        vocab: an ``elmo.data.vocab.Vocabulary``, required when the model has a softmax.
        tokenizer: an ``elmo.data.tokenizer.Tokenizer``; None means whitespace words.

    Returns:
        The directory path.
    """
    if not isinstance(model, BiLM):
        raise TypeError(f"save_pretrained takes a BiLM, got {type(model).__name__} (unwrap it first)")
    if model.config.vocab_size and vocab is None:
        raise ValueError("this model has a softmax: pass its vocabulary to save_pretrained")
    if vocab is not None and len(vocab) != model.config.vocab_size:
        raise ValueError(
            f"vocabulary has {len(vocab)} entries but the model's softmax has {model.config.vocab_size}"
        )
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if tokenizer is None:
        from elmo.data.tokenizer import word_tokenizer

        tokenizer = word_tokenizer()
    weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    data = save_safetensors(weights, metadata={"format": "pt"})
    atomic_write_bytes(directory / WEIGHTS_FILE, data)
    sums = {WEIGHTS_FILE: sha256_bytes(data)}
    if vocab is not None:
        vocab.save(directory / VOCAB_FILE)
        sums[VOCAB_FILE] = sha256_file(directory / VOCAB_FILE)
    else:
        (directory / VOCAB_FILE).unlink(missing_ok=True)  # left by an earlier save
    if tokenizer.kind == "sentencepiece":
        tokenizer.save(directory / SENTENCEPIECE_FILE)
        sums[SENTENCEPIECE_FILE] = sha256_file(directory / SENTENCEPIECE_FILE)
    else:
        (directory / SENTENCEPIECE_FILE).unlink(missing_ok=True)
    config = {
        "format_version": FORMAT_VERSION,
        "model": config_to_dict(model.config),
        "tokenizer": config_to_dict(tokenizer.config),
        SUMS_KEY: sums,
    }
    sums[CONFIG_FILE] = _content_sum(config)
    atomic_write_text(directory / CONFIG_FILE, json.dumps(config, indent=2) + "\n")  # last
    return directory


def from_pretrained(directory: str | os.PathLike, device: str | torch.device = "cpu") -> BiLM:
    """Load a pretrained directory strictly (no code runs from the files); eval mode.

    Raises:
        ModelFileError: a file that is damaged, differs from its recorded sha256, or does not
            match the config (the message names the file).
    """
    directory = Path(directory)
    data = _read_config(directory)
    config_path = directory / CONFIG_FILE
    try:
        config = bilm_config_from_dict(data["model"])
    except (KeyError, TypeError, ValueError) as error:
        raise ModelFileError(f"{config_path}: not a valid model config ({error})") from None
    path = directory / WEIGHTS_FILE
    # The weights' sha256 is computed while the model is built (hashlib releases the GIL), so
    # the check costs little of the load's time; then the file is read by mmap as before.
    with ThreadPoolExecutor(max_workers=1) as pool:
        digest = pool.submit(_file_sum, path)
        with without_random_init():  # every parameter is overwritten below (checked: missing)
            model = BiLM(config)
        _check_sum(directory, WEIGHTS_FILE, data, digest.result())
    try:
        weights = load_file(str(path), device="cpu")
    except (SafetensorError, ValueError, RuntimeError) as error:
        raise ModelFileError(f"{path}: not a readable safetensors file ({error})") from None
    expected = model.state_dict()
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    if missing or unexpected:
        raise ModelFileError(
            f"{path} does not match its config: missing keys {missing}, "
            f"unexpected keys {unexpected}"
        )
    for name, tensor in weights.items():
        if tensor.shape != expected[name].shape:
            raise ModelFileError(
                f"{path}: {name} has shape {tuple(tensor.shape)}, "
                f"expected {tuple(expected[name].shape)}"
            )
        if SUMS_KEY not in data and tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise ModelFileError(f"{path}: {name} holds NaN or infinite values")
    # the file's tensors, not copies, but each at a 64-byte boundary (on some CPUs the bits of a
    # one-row product depend on it: elmo.modules.loading)
    weights = {name: aligned(tensor) for name, tensor in weights.items()}
    model.load_state_dict(weights, strict=True, assign=True)
    return model.to(device).eval()


def _read_config(directory: Path) -> dict:
    """config.json of a pretrained directory, its format version checked."""
    config_path = directory / CONFIG_FILE
    if not config_path.is_file():
        raise FileNotFoundError(f"{directory} is not a pretrained model directory (no {CONFIG_FILE})")
    try:
        data = json.loads(config_path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelFileError(f"{config_path}: not valid JSON ({error})") from None
    if not isinstance(data, dict):
        raise ModelFileError(f"{config_path}: expected a JSON object, got {type(data).__name__}")
    version = data.get("format_version")
    if version not in READABLE_VERSIONS:
        raise ModelFileError(
            f"{config_path}: format_version {version!r}; this code reads {list(READABLE_VERSIONS)}"
        )
    unknown = sorted(set(data) - CONFIG_KEYS)
    if unknown:  # e.g. a damaged "files" key, which would otherwise skip every check
        raise ModelFileError(f"{config_path}: unknown keys {unknown}")
    if SUMS_KEY not in data:
        return data  # written before the sums
    sums = data[SUMS_KEY]
    if not isinstance(sums, dict) or not all(isinstance(v, str) for v in sums.values()):
        raise ModelFileError(f"{config_path}: {SUMS_KEY!r} must map file names to sha256 sums")
    if sums.get(CONFIG_FILE) != _content_sum(data):
        raise ModelFileError(
            f"{config_path} is damaged: its content differs from the sha256 it records "
            f"(save the model again, or fetch an intact copy)"
        )
    return data


def _content_sum(config: dict) -> str:
    """The sha256 of config.json's content but its own sum, as canonical JSON."""
    content = dict(config)
    content[SUMS_KEY] = {k: v for k, v in config[SUMS_KEY].items() if k != CONFIG_FILE}
    return sha256_bytes(json.dumps(content, sort_keys=True, separators=(",", ":")).encode())


def _read_checked(directory: Path, name: str, config: dict) -> bytes:
    """The bytes of the directory's file ``name``, checked against the sum config.json records
    (directories written before the sums record none)."""
    data = _file_bytes(directory / name)
    _check_sum(directory, name, config, sha256_bytes(data))
    return data


def _file_bytes(path: Path) -> bytes:
    if not path.is_file():
        raise ModelFileError(f"{path} is missing")
    return path.read_bytes()


def _file_sum(path: Path) -> str:
    if not path.is_file():
        raise ModelFileError(f"{path} is missing")
    return sha256_file(path)


def _check_sum(directory: Path, name: str, config: dict, digest: str) -> None:
    """Raise ModelFileError unless ``digest`` is the sum config.json records for ``name``."""
    sums = config.get(SUMS_KEY)
    if sums is None:
        return
    path = directory / name
    if name not in sums:
        raise ModelFileError(f"{path}: {directory / CONFIG_FILE} records no sha256 for it")
    if digest != sums[name]:
        raise ModelFileError(
            f"{path} is damaged: its sha256 differs from the one {CONFIG_FILE} records "
            f"(save the model again, or fetch an intact copy)"
        )


def load_tokenizer(directory: str | os.PathLike):
    """The tokenizer a model directory was trained with: our directory's, or ``words`` for a
    published one or a directory saved before tokenizers (format_version 1)."""
    from elmo.data.tokenizer import PieceTokenizer, Tokenizer, word_tokenizer

    directory = Path(directory)
    if not (directory / CONFIG_FILE).is_file():
        return word_tokenizer()
    data = _read_config(directory)
    if "tokenizer" not in data:
        return word_tokenizer()
    config = tokenizer_config_from_dict(data["tokenizer"])
    if config.kind == "words":
        return Tokenizer(config)
    path = directory / SENTENCEPIECE_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{directory}: the model uses sentencepiece but {path.name} is missing")
    proto = _read_checked(directory, SENTENCEPIECE_FILE, data)
    try:
        return PieceTokenizer(config, proto)
    except RuntimeError as error:  # sentencepiece's parse error
        raise ModelFileError(f"{path}: not a readable sentencepiece model ({error})") from None


def load_vocabulary(directory: str | os.PathLike):
    """The vocabulary saved with a pretrained directory, or None if it has none.

    Raises:
        ModelFileError: vocab.txt differs from the sha256 config.json records, or is unreadable.
    """
    directory = Path(directory)
    path = directory / VOCAB_FILE
    if not path.is_file():
        return None
    from elmo.data.vocab import Vocabulary

    if (directory / CONFIG_FILE).is_file():
        _read_checked(directory, VOCAB_FILE, _read_config(directory))
    try:
        return Vocabulary.load(path)
    except ValueError as error:  # the message names the file and line
        raise ModelFileError(str(error)) from None


def load_bilm(
    model: str | os.PathLike | None = None,
    options_file: str | os.PathLike | None = None,
    weight_file: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
    kernel: str | None = None,
) -> BiLM:
    """Load either kind of model, in eval mode: the one loader behind every command and API.

    Args:
        model: our directory (``from_pretrained``), a directory holding ``options.json`` and
            ``weights.hdf5`` (``elmo.published.load_published``), or the name of a published
            model (``elmo models`` lists them; fetched into the cache by ``elmo.hub``). A local
            path wins over a name.
        options_file, weight_file: the published format's two files (instead of ``model``).
        device: where the model goes.
        kernel: the recurrence kernel by name (``elmo.kernels``: "exact", "fused", "bf16"); None keeps
            the model's default (exact).

    Raises:
        ValueError: both or neither kinds of source given, or files that do not match.
        FileNotFoundError: a missing file or directory, or a directory of neither format.
        elmo.hub.DownloadError: a published model that could not be fetched or whose cached
            files changed since their download.
    """
    bilm = _load_either_format(model, options_file, weight_file, device)
    if kernel is not None:
        bilm.kernel = kernel
    return bilm


def _load_either_format(
    model: str | os.PathLike | None,
    options_file: str | os.PathLike | None,
    weight_file: str | os.PathLike | None,
    device: str | torch.device,
) -> BiLM:
    """The model of whichever format the arguments name (see ``load_bilm``)."""
    from elmo.published import load_published

    if model is not None and (options_file is not None or weight_file is not None):
        raise ValueError("give either a model directory or --options-file/--weight-file, not both")
    if model is None:
        if options_file is None or weight_file is None:
            raise ValueError("a published-format model needs both an options file and a weight file")
        for path in (options_file, weight_file):
            if not Path(path).is_file():
                raise FileNotFoundError(f"no such file: {path}")
        return load_published(options_file, weight_file).to(device)
    directory = Path(model)
    if not directory.exists() and is_model_name(str(model)):
        options_path, weights_path = fetch_model(str(model))
        return load_published(options_path, weights_path).to(device)
    if not directory.is_dir():
        raise FileNotFoundError(f"model directory does not exist: {directory}")
    if (directory / CONFIG_FILE).is_file():
        return from_pretrained(directory, device)
    if (directory / PUBLISHED_OPTIONS_FILE).is_file() and (directory / PUBLISHED_WEIGHTS_FILE).is_file():
        return load_published(
            directory / PUBLISHED_OPTIONS_FILE, directory / PUBLISHED_WEIGHTS_FILE
        ).to(device)
    raise FileNotFoundError(
        f"{directory} holds neither {CONFIG_FILE} (our format) nor {PUBLISHED_OPTIONS_FILE} + "
        f"{PUBLISHED_WEIGHTS_FILE} (the published format)"
    )


def require_word_tokenizer(directory: str | os.PathLike, what: str) -> None:
    """Raise ValueError unless the model reads whitespace words (``what`` needs word units)."""
    kind = load_tokenizer(directory).kind
    if kind != "words":
        raise ValueError(
            f"{directory}: {what} works on word-level models; this one reads {kind} units"
        )
