"""Every kind of file elmo reads, damaged: a clear error naming the file, never a silent load.

Each file is damaged in two ways: one byte flipped (at several places, from the first byte to the
last) and the file cut short (in half, and by its last byte). Our pretrained directory records
the sha256 of each file, and config.json of its own content, so any damaged byte is found. A
checkpoint is a zip whose entries carry CRC-32s. A published weights.hdf5 written here carries
HDF5's Fletcher-32 sums of every dataset; its header, a truncation and a NaN are found in any
file. What the published format cannot show is a damaged *value* in options.json or in a
weights.hdf5 written without sums (the format records none); those files are checked for
structure, shapes and NaN only (tests/test_published.py).
"""

from __future__ import annotations

import dataclasses
import json

import h5py
import pytest
import torch

from elmo.cli import main
from elmo.config import TrainConfig, TrainerConfig
from elmo.data.vocab import Vocabulary
from elmo.files import ModelFileError
from elmo.model import BiLM
from elmo.pretrained import load_bilm, load_tokenizer, load_vocabulary, save_pretrained
from elmo.published import export_published, load_published
from elmo.training.checkpoint import checkpoint_payload, resume, save_checkpoint
from elmo.training.distributed import World
from elmo.training.loop import RunState
from elmo.training.optim import build_optimizer, build_scheduler

FRACTIONS = (0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0)  # where a byte is flipped (1.0: the last byte)
DAMAGES = [f"flip@{f}" for f in FRACTIONS] + ["half", "last byte cut"]


def damage(path, how: str) -> None:
    """Flip one byte of ``path`` or cut it short, as ``how`` says (one of DAMAGES)."""
    data = bytearray(path.read_bytes())
    if how == "half":
        data = data[: len(data) // 2]
    elif how == "last byte cut":  # of the content: a final newline is not part of a JSON file's
        end = len(data.rstrip(b"\n"))
        del data[end - 1]
    else:
        offset = min(int(float(how.split("@")[1]) * len(data)), len(data) - 1)
        data[offset] ^= 0x10
    path.write_bytes(bytes(data))


@pytest.fixture
def our_directory(tmp_path, tiny_config):
    vocab = Vocabulary.build(["the bank of the river", "money in the bank"])
    model = BiLM(dataclasses.replace(tiny_config, vocab_size=len(vocab))).eval()
    return save_pretrained(model, tmp_path / "model", vocab)


def _load_everything(directory) -> None:
    load_bilm(directory)
    load_vocabulary(directory)
    load_tokenizer(directory)


@pytest.mark.parametrize("how", DAMAGES)
@pytest.mark.parametrize("name", ["model.safetensors", "config.json", "vocab.txt"])
def test_a_damaged_file_of_our_directory_is_refused_naming_it(our_directory, name, how):
    _load_everything(our_directory)  # whole: loads
    damage(our_directory / name, how)
    with pytest.raises(ModelFileError, match=name.replace(".", r"\.")):
        _load_everything(our_directory)


@pytest.fixture
def published(tmp_path, tiny_bilm):
    export_published(tiny_bilm, tmp_path / "options.json", tmp_path / "weights.hdf5")
    return tmp_path


def _value_offsets(weights) -> dict[str, int]:
    """dataset name -> the file offset of the middle of its (first chunk's) stored values."""
    found = {}
    with h5py.File(weights, "r") as handle:
        for name in ("char_embed", "CNN/W_cnn_1", "RNN_1/RNN/MultiRNNCell/Cell1/LSTMCell/W_0"):
            chunk = handle[name].id.get_chunk_info(0)
            found[name] = chunk.byte_offset + chunk.size // 2
    return found


@pytest.mark.parametrize("how", ["values", "signature", "half", "last byte cut"])
def test_a_damaged_published_weight_file_is_refused_naming_it(published, how):
    weights = published / "weights.hdf5"
    if how == "values":
        offsets = _value_offsets(weights)
        whole = weights.read_bytes()
        for name, offset in offsets.items():
            data = bytearray(whole)
            data[offset] ^= 0x10
            weights.write_bytes(bytes(data))
            with pytest.raises(ModelFileError, match=rf"weights\.hdf5: dataset '{name}'"):
                load_published(published / "options.json", weights)
        return
    if how == "signature":
        damage(weights, "flip@0.0")
    else:
        damage(weights, how)
    with pytest.raises(ModelFileError, match=r"weights\.hdf5: "):
        load_published(published / "options.json", weights)


@pytest.mark.parametrize("how", ["half", "last byte cut", "flip@0.0"])
def test_a_damaged_options_file_is_refused_naming_it(published, how):
    damage(published / "options.json", how)
    with pytest.raises(ModelFileError, match=r"options\.json: "):
        load_published(published / "options.json", published / "weights.hdf5")


@pytest.mark.parametrize("name", ["model.safetensors", "config.json"])
def test_elmo_embed_on_a_damaged_model_is_one_line_and_exit_2(our_directory, tmp_path, capsys, name):
    source = tmp_path / "in.txt"
    source.write_text("the bank of the river\n")
    damage(our_directory / name, "flip@0.5")
    code = main(["embed", str(source), str(tmp_path / "out.hdf5"), "--top", "--model",
                 str(our_directory)])  # fmt: skip
    error = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(error) == 1
    assert error[0].startswith("elmo embed: error: ") and name in error[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.txt", "model"]  # no output


def _checkpoint(tmp_path, tiny_config):
    bilm = BiLM(dataclasses.replace(tiny_config, vocab_size=10))
    optimizer = build_optimizer(bilm.parameters(), TrainerConfig())
    scheduler = build_scheduler(optimizer, TrainerConfig())
    world = World(rank=0, size=1, local_rank=0)
    payload = checkpoint_payload(TrainConfig(), bilm, optimizer, scheduler, [], RunState(step=3),
                                 world, {"vocab.txt": "0" * 64})  # fmt: skip
    save_checkpoint(tmp_path / "checkpoint.pt", payload)
    return tmp_path / "checkpoint.pt", (bilm, optimizer, scheduler, [], RunState(), world,
                                        torch.device("cpu"), {"vocab.txt": "0" * 64})  # fmt: skip


@pytest.mark.parametrize("how", DAMAGES)
def test_a_damaged_checkpoint_is_refused_naming_it(tmp_path, tiny_config, how):
    path, parts = _checkpoint(tmp_path, tiny_config)
    resume(path, *parts)  # whole: resumes
    damage(path, how)
    with pytest.raises(ModelFileError, match=r"checkpoint\.pt"):
        resume(path, *parts)


def test_a_published_export_is_still_the_published_format(published, tiny_bilm):
    """The sums change no value and no name: any HDF5 reader reads the datasets as before."""
    loaded = load_published(published / "options.json", published / "weights.hdf5")
    for name, tensor in tiny_bilm.state_dict().items():
        assert torch.equal(tensor, loaded.state_dict()[name]), name
    assert json.loads((published / "options.json").read_text())["lstm"]["dim"] == 16
