"""The scripts that compare kernels: bench_peers.py's rows per kernel (--kernels) and
kernel_accuracy.py's statistics."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


@pytest.fixture(scope="module")
def scripts():
    sys.path.insert(0, str(SCRIPTS))  # both import their sibling bench_embed.py (bench_peers: peers.py)
    try:
        import bench_peers
        import kernel_accuracy

        yield bench_peers, kernel_accuracy
    finally:
        sys.path.remove(str(SCRIPTS))


def test_each_other_kernel_adds_our_rows_and_a_ratio_column(scripts):
    bench_peers, _ = scripts
    names = bench_peers.variants(["elmo embed", "elmo", "manylangs"], ["exact", "bf16"])
    assert names == ["elmo embed", "elmo", "manylangs", "elmo embed --kernel bf16", "elmo --kernel bf16"]
    assert bench_peers.ours("elmo embed --kernel bf16") == ("elmo embed", "bf16")
    assert bench_peers.ours("elmo") == ("elmo", "exact") and bench_peers.ours("manylangs") == ("manylangs", "")
    assert bench_peers.ours("elmo per call") == ("elmo per call", "exact")  # embed_sentence, one each
    case = {"name": "original:64:10", "tokens": 1000}
    times = {"elmo embed": (2.0, 1.2), "elmo": (2.5, 1.5), "manylangs": (8.0, 6.0),
             "elmo embed --kernel bf16": (1.0, None), "elmo --kernel bf16": (1.5, 0.5)}  # fmt: skip
    runs = {(case["name"], name): [{"seconds": total, "embed_seconds": embedding, "peak_rss_mib": 100.0}]
            for name, (total, embedding) in times.items()}  # fmt: skip
    lines = bench_peers.table([case], runs, names).splitlines()
    assert lines[0].endswith("| elmo embed --kernel bf16 / this, end to end | elmo --kernel bf16 / this, embedding |")
    manylangs = [cell.strip() for cell in lines[4].split("|")[1:-1]]
    assert manylangs[1] == "manylangs"
    assert manylangs[-2:] == ["8.00x", "12.00x"]  # 8 s / 1 s end to end, 6 s / 0.5 s embedding
    assert manylangs[6] == "4.00x"  # the exact elmo embed's column: 8 s / 2 s
    assert manylangs[7] == "5.00x"  # elmo embed past its start against the embedding: 6 s / 1.2 s


def test_the_accuracy_statistics_per_layer(scripts):
    _, kernel_accuracy = scripts
    exact = [torch.tensor([[[3.0, 4.0], [1.0, 0.0]], [[0.0, 1.0], [2.0, 2.0]]])]  # (L=2, n=2, 2)
    moved = [exact[0].clone()]
    moved[0][1, 0] = torch.tensor([1.0, 1.0])  # layer 1, token 0: 45 degrees off
    same, other = kernel_accuracy.compare(exact, moved)
    assert same == {"layer": 0, "max_abs": 0.0, "relative": 0.0, "cos_min": pytest.approx(1.0),
                    "cos_p001": pytest.approx(1.0), "cos_median": pytest.approx(1.0)}  # fmt: skip
    assert other["max_abs"] == 1.0
    assert other["relative"] == pytest.approx(1.0 / 3.0)  # ||(1, 0)|| / ||(0, 1, 2, 2)||
    assert other["cos_min"] == pytest.approx(2**-0.5)
