"""Word similarity end to end: scores made from the type vectors' own cosines give rho = +-1."""

from __future__ import annotations

import pytest
import torch

from elmo.embedder import ElmoEmbedder
from elmo.tasks.config import BaselinesConfig, ProbeConfig, WordSimTaskConfig
from elmo.tasks.run import run_probe

PAIRS = [
    ("cat", "dog"),
    ("bank", "river"),
    ("run", "ran"),
    ("Paris", "London"),
    ("a", "the"),
    ("happy", "glad"),
    ("cup", "mug"),
]


def test_wordsim_end_to_end(tmp_path, tiny_model_dir, tiny_bilm, write_file):
    embedder = ElmoEmbedder(tiny_bilm)
    vectors = {w: embedder.embed_sentence([w])[0, 0] for pair in PAIRS for w in pair}  # layer 0
    cosines = [torch.cosine_similarity(vectors[a], vectors[b], dim=0).item() for a, b in PAIRS]
    write_file("same.txt", [f"{a}\t{b}\t{2 * c + 1!r}" for (a, b), c in zip(PAIRS, cosines)])
    write_file(
        "reversed.txt", ["# comment"] + [f"{a} {b} {-c!r}" for (a, b), c in zip(PAIRS, cosines)]
    )
    task = WordSimTaskConfig(
        data_dir=str(tmp_path),
        datasets=["same", "reversed"],
        files={"same": "same.txt", "reversed": "reversed.txt"},
    )
    config = ProbeConfig(
        task=task,
        model=str(tiny_model_dir),
        baselines=BaselinesConfig(random=True),
        output_dir=str(tmp_path / "out"),
    )
    line = run_probe(config)
    assert line["spearman"] == pytest.approx({"same": 1.0, "reversed": -1.0})
    assert line["coverage"] == {"same": 1.0, "reversed": 1.0}
    assert line["details"]["pairs_scored"] == {"same": 7, "reversed": 7}
    assert set(line["baselines"]["random"]["spearman"]) == {"same", "reversed"}
