"""The options the subcommands share: one definition each, the same flags and help everywhere,
``--kernel`` (and ``--fast``, its deprecated spelling on ``elmo embed``), and their checks."""

from __future__ import annotations

import argparse

import pytest

from elmo.cli import COMMANDS, build_parser
from elmo.commands import options
from elmo.pretrained import save_pretrained

REQUIRED = {
    "embed": ["in.txt", "out.hdf5", "--all", "--model", "m"],
    "eval": ["in.txt", "--model", "m"],
    "substitutes": ["the [bank]", "--model", "m"],
    "neighbours": ["the [bank]", "--model", "m", "--corpus", "c.txt"],
    "senses": ["--model", "m", "--corpus", "c.txt", "--word", "bank", "--out", "x.png"],
}


def _subparser(name: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    COMMANDS[name][0].add_arguments(parser)
    return parser


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_every_subcommand_takes_a_kernel_and_a_device(name):
    args = build_parser().parse_args([name, *REQUIRED[name]])
    assert args.kernel == "exact" and args.device == "auto"
    args = build_parser().parse_args([name, *REQUIRED[name], "--kernel", "fused"])
    assert args.kernel == "fused"
    help_text = " ".join(_subparser(name).format_help().split())
    assert options.KERNEL_HELP in help_text
    assert "cpu, cuda, cuda:1, ... (default: cuda if available)" in help_text


def test_an_unknown_kernel_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["eval", *REQUIRED["eval"], "--kernel", "turbo"])
    assert exit_info.value.code == 2 and "invalid choice: 'turbo'" in capsys.readouterr().err


def test_embed_keeps_fast_as_the_deprecated_spelling_of_kernel_fused():
    parser = build_parser()
    assert parser.parse_args(["embed", *REQUIRED["embed"], "--fast"]).kernel == "fused"
    assert "--fast deprecated: the same as --kernel fused" in " ".join(
        _subparser("embed").format_help().split()
    )
    with pytest.raises(SystemExit):  # only embed ever had --fast
        parser.parse_args(["eval", *REQUIRED["eval"], "--fast"])


def test_batch_sizes_keep_each_commands_default_and_unit():
    assert build_parser().parse_args(["embed", *REQUIRED["embed"]]).batch_size == 64
    assert build_parser().parse_args(["eval", *REQUIRED["eval"]]).batch_size == 32
    assert "sentences per batch (default 64)" in _subparser("embed").format_help()
    assert "streams per batch (default 32)" in _subparser("eval").format_help()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["in.txt", "out.hdf5", "--all"], "give --model DIR, or both --options-file and"),
        (["in.txt", "out.hdf5", "--all", "--options-file", "o.json"], "give --model DIR"),
        ([*REQUIRED["embed"], "--batch-size", "0"], "--batch-size must be > 0, got 0"),
        ([*REQUIRED["embed"], "--cache-size", "-1"], "--cache-size must be >= 0, got -1"),
    ],
)
def test_check_arguments_names_the_bad_flag(argv, message):
    args = build_parser().parse_args(["embed", *argv])
    with pytest.raises(ValueError, match=message):
        options.check_arguments(args)


def test_check_arguments_passes_good_values():
    options.check_arguments(build_parser().parse_args(["embed", *REQUIRED["embed"]]))
    published = ["in.txt", "out.hdf5", "--top", "--options-file", "o", "--weight-file", "w"]
    options.check_arguments(build_parser().parse_args(["embed", *published]))
    options.check_arguments(build_parser().parse_args(["eval", *REQUIRED["eval"]]))


def test_resolve_device():
    assert options.resolve_device("cpu") == "cpu"
    assert options.resolve_device("cuda:1") == "cuda:1"
    assert options.resolve_device("auto") in ("cpu", "cuda")


def test_load_model_goes_through_load_bilm_with_the_kernel(tmp_path, tiny_bilm):
    directory = save_pretrained(tiny_bilm, tmp_path / "model")
    argv = ["in.txt", "--model", str(directory), "--device", "cpu"]
    exact = options.load_model(build_parser().parse_args(["eval", *argv]))
    assert exact.kernel.name == "exact"
    fused = options.load_model(build_parser().parse_args(["eval", *argv, "--kernel", "fused"]))
    assert fused.kernel.name == "fused" and not fused.training
