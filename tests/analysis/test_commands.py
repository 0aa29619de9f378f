"""``elmo substitutes``, ``elmo neighbours`` and ``elmo senses``: tables, files and clean errors."""

from __future__ import annotations

import pytest
from progress_log import log_every_update, progress_lines

from elmo.cli import main
from elmo.pretrained import save_pretrained


def _run(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_substitutes_prints_a_table(capsys, model_dir):
    code, out, _ = _run(
        capsys, "substitutes", "--model", str(model_dir), "the [bank] of the river", "--top-k", "4"
    )
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "query: the [bank] of the river"
    assert lines[1].split() == ["rank", "word", "combined", "forward", "backward"]
    assert [line.split()[0] for line in lines[2:6]] == ["1", "2", "3", "4"]
    assert lines[6].startswith("the marked word 'bank': rank ")


def test_neighbours_prints_the_query_occurrence_first(
    capsys, model_dir, corpus_file, tmp_path, monkeypatch, caplog
):
    log_every_update(monkeypatch, caplog)
    args = [
        "neighbours",
        "--model",
        str(model_dir),
        "--corpus",
        str(corpus_file),
        "We sat on the [bank] of the river .",
        "--top-k",
        "3",
        "--cache-dir",
        str(tmp_path / "c"),
    ]
    code, out, _ = _run(capsys, *args)
    assert code == 0
    lines = out.splitlines()
    assert lines[1].split() == ["rank", "cosine", "word", "line", "context"]
    assert lines[2].split()[:4] == ["1", "1.000", "bank", "2"]
    assert "We sat on the [bank] of the river ." in lines[2]
    assert len(lines) == 5 and progress_lines(caplog, "indexing corpus")
    caplog.clear()
    code, out_again, _ = _run(capsys, *args)  # from the cache: same table, no progress
    assert code == 0 and out_again == out and not progress_lines(caplog, "indexing corpus")


def test_a_huge_token_is_elided_instead_of_widening_every_row(capsys, model_dir, corpus_file):
    huge = "x" * 10_000
    with corpus_file.open("a", encoding="utf-8") as handle:
        handle.write(f"{huge} near the bank .\n{huge}\n")
    code, out, _ = _run(capsys, "neighbours", "--model", str(model_dir), "--corpus",
                        str(corpus_file), "the [bank]", "--top-k", "20", "--no-cache")  # fmt: skip
    assert code == 0
    table = out.splitlines()[1:]
    assert len(table) == 1 + 20 and max(len(line) for line in table) < 200
    assert "x" * 31 + "…" in out and huge not in out

    code, out, _ = _run(capsys, "neighbours", "--model", str(model_dir), "--corpus",
                        str(corpus_file), f"[{huge}]", "--top-k", "3", "--no-cache")  # fmt: skip
    assert code == 0
    rows = out.splitlines()[2:]
    assert rows[0].split()[2] == "x" * 31 + "…"  # the word column, elided too
    assert max(len(line) for line in out.splitlines()[1:]) < 200


def test_senses_writes_the_png_and_csv(capsys, model_dir, corpus_file, tmp_path):
    pytest.importorskip("matplotlib")
    png, table = tmp_path / "bank.png", tmp_path / "bank.csv"
    code, out, _ = _run(
        capsys,
        "senses",
        "--model",
        str(model_dir),
        "--corpus",
        str(corpus_file),
        "--word",
        "bank",
        "--out",
        str(png),
        "--csv",
        str(table),
        "--k",
        "2",
    )
    assert code == 0
    assert out.startswith("'bank': 8 occurrences in ")
    assert png.read_bytes()[:4] == b"\x89PNG" and len(table.read_text().splitlines()) == 9
    assert f"wrote {png}" in out and f"wrote {table}" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["substitutes", "the bank of the river"], "has no marked word"),
        (["substitutes", "the [bank] of the [river]"], "marks 2 words"),
        (["neighbours", "--corpus", "{missing}", "the [bank]"], "no such file"),
        (["neighbours", "--corpus", "{empty}", "the [bank]"], "is empty"),
        (["neighbours", "--corpus", "{corpus}", "the bank"], "has no marked word"),
        (
            ["neighbours", "--corpus", "{corpus}", "the [bank]", "--layer", "middle"],
            "layer must be",
        ),
        (
            ["senses", "--corpus", "{corpus}", "--word", "levee", "--out", "{png}"],
            "'levee' does not occur",
        ),
        (["senses", "--corpus", "{empty}", "--word", "bank", "--out", "{png}"], "is empty"),
        (
            ["senses", "--corpus", "{corpus}", "--word", "bank", "--out", "/no/such/dir/x.png"],
            "output directory",
        ),
    ],
)
def test_errors_are_one_line_with_exit_code_2(
    capsys, model_dir, corpus_file, tmp_path, argv, message
):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n")
    names = {
        "missing": tmp_path / "missing.txt",
        "empty": empty,
        "corpus": corpus_file,
        "png": tmp_path / "x.png",
    }
    argv = [a.format(**names) for a in argv]
    code, out, err = _run(capsys, argv[0], "--model", str(model_dir), *argv[1:])
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith(f"elmo {argv[0]}: error: ") and message in err


def test_substitutes_needs_a_model_with_a_softmax(capsys, tiny_bilm, tmp_path):
    directory = save_pretrained(tiny_bilm, tmp_path / "embedding-only")
    code, _, err = _run(capsys, "substitutes", "--model", str(directory), "the [bank] of the river")
    assert code == 2 and "has no softmax and vocab.txt" in err
    code, _, err = _run(capsys, "substitutes", "--model", str(tmp_path / "nowhere"), "the [bank]")
    assert code == 2 and "does not exist" in err


def test_a_transformer_model_answers_every_command(capsys, tiny_transformer_config, vocab,
                                                   corpus_file, tmp_path):  # fmt: skip
    """Substitutes, neighbours (on its top layer, index 3 of L = 4) and senses."""
    import dataclasses

    import torch

    from elmo.model import BiLM

    torch.manual_seed(0)
    bilm = BiLM(dataclasses.replace(tiny_transformer_config, vocab_size=len(vocab))).eval()
    model = str(save_pretrained(bilm, tmp_path / "model", vocab))
    code, out, _ = _run(capsys, "substitutes", "--model", model, "the [bank] of the river",
                        "--top-k", "3")  # fmt: skip
    assert code == 0 and [line.split()[0] for line in out.splitlines()[2:5]] == ["1", "2", "3"]
    code, out, _ = _run(capsys, "neighbours", "--model", model, "--corpus", str(corpus_file),
                        "We sat on the [bank] of the river .", "--top-k", "2", "--layer", "3",
                        "--cache-dir", str(tmp_path / "cache"))  # fmt: skip
    rows = [line.split() for line in out.splitlines()[2:4]]
    assert code == 0 and [row[2] for row in rows] == ["bank", "bank"]  # a random model: any order
    code, _, err = _run(capsys, "neighbours", "--model", model, "--corpus", str(corpus_file),
                        "the [bank]", "--layer", "4")  # fmt: skip
    assert code == 2 and "out of range" in err
    pytest.importorskip("matplotlib")
    png = tmp_path / "bank.png"
    code, out, _ = _run(capsys, "senses", "--model", model, "--corpus", str(corpus_file),
                        "--word", "bank", "--out", str(png), "--k", "2")  # fmt: skip
    assert code == 0 and png.read_bytes()[:4] == b"\x89PNG"
