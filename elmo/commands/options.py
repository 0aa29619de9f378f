"""The options several ``elmo`` subcommands share, each defined once, and the checks they need.

A subcommand adds the groups it uses (``add_model_arguments``, ``add_device_argument``, ...),
checks them with ``check_arguments`` before any work, and loads its model with ``load_model``.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from elmo.model import BiLM

KERNEL_HELP = (
    "the LSTM recurrence kernel: exact (bit-exact, default), fused (equal up to float rounding) or "
    "bf16 (fused, with its products in bfloat16: faster on CPUs with AMX or AVX512-BF16, refused "
    "elsewhere; one sentence at a time it helps the ORIGINAL shape, not the small or medium one)"
)


def add_model_arguments(
    parser: argparse.ArgumentParser, published_files: bool = False, needs_softmax: bool = False
) -> None:
    """``--model DIR|NAME``; with ``published_files``, also ``--options-file`` and
    ``--weight-file`` (then ``--model`` is optional: one of the two ways must be given). A name is
    a published model's (``elmo models``), fetched by ``load_bilm``; a local path wins over it.

    Args:
        published_files: the command takes the published format's two files as well.
        needs_softmax: the command needs a language model (our format with ``vocab.txt``).
    """
    if published_files:
        parser.add_argument(
            "--model",
            help="our pretrained directory, one with options.json + weights.hdf5, or a published "
            "model's name (elmo-small, ...: elmo models)",
        )
        parser.add_argument("--options-file", help="published-format options.json")
        parser.add_argument("--weight-file", help="published-format weights.hdf5")
    elif needs_softmax:
        parser.add_argument(
            "--model", required=True, help="our pretrained directory (with vocab.txt)"
        )
    else:
        parser.add_argument(
            "--model",
            required=True,
            help="our pretrained directory, a published one, or a published model's name",
        )


def add_layer_argument(parser: argparse.ArgumentParser) -> None:
    """``--layer``: which vectors to compare, as text (``elmo.layer_choice.parse_choice``)."""
    parser.add_argument(
        "--layer",
        default="top",
        help="an index (0 = characters), top, average, or weights like 0,1,1 (default top)",
    )


def add_device_argument(parser: argparse.ArgumentParser) -> None:
    """``--device``: where the model runs (``resolve_device``)."""
    parser.add_argument(
        "--device", default="auto", help="cpu, cuda, cuda:1, ... (default: cuda if available)"
    )


def add_kernel_argument(parser: argparse.ArgumentParser, fast_alias: bool = False) -> None:
    """``--kernel {exact,fused,bf16}``: how the biLM's LSTM recurrences run (``elmo.kernels``).

    Args:
        fast_alias: also accept ``--fast``, the deprecated spelling of ``--kernel fused``.
    """
    from elmo.kernels import DEFAULT_KERNEL, kernel_names

    parser.add_argument(
        "--kernel", choices=kernel_names(), default=DEFAULT_KERNEL, help=KERNEL_HELP
    )
    if fast_alias:  # sets the same destination: of the two flags, the last one given counts
        parser.add_argument(
            "--fast",
            dest="kernel",
            action="store_const",
            const="fused",
            help="deprecated: the same as --kernel fused",
        )


def add_batch_size_argument(parser: argparse.ArgumentParser, default: int, unit: str) -> None:
    """``--batch-size``: ``unit`` (e.g. "sentences") per forward pass."""
    parser.add_argument(
        "--batch-size", type=int, default=default, help=f"{unit} per batch (default {default})"
    )


def add_cache_size_argument(parser: argparse.ArgumentParser) -> None:
    """``--cache-size``: the token-vector cache of ``ElmoEmbedder`` (``elmo.token_cache``)."""
    parser.add_argument(
        "--cache-size",
        type=int,
        default=50_000,
        help="token vectors kept so the character CNN runs once per word type "
        "(exact; 0 = off; default 50000)",
    )


def check_arguments(args: argparse.Namespace) -> None:
    """Raise ValueError, naming the flag, for a bad value of any shared option ``args`` has."""
    needs_files = "options_file" in args and args.model is None
    if needs_files and (args.options_file is None or args.weight_file is None):
        raise ValueError("give --model DIR, or both --options-file and --weight-file")
    if "batch_size" in args and args.batch_size <= 0:
        raise ValueError(f"--batch-size must be > 0, got {args.batch_size}")
    if "cache_size" in args and args.cache_size < 0:
        raise ValueError(f"--cache-size must be >= 0, got {args.cache_size}")


def resolve_device(device: str) -> str:
    """``--device``'s value as a torch device name: "auto" is cuda when available, else cpu."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def load_model(args: argparse.Namespace) -> BiLM:
    """The biLM the model options of ``args`` name, on its device, with its kernel
    (``elmo.pretrained.load_bilm``)."""
    from elmo.pretrained import load_bilm

    return load_bilm(
        args.model,
        getattr(args, "options_file", None),
        getattr(args, "weight_file", None),
        device=resolve_device(args.device),
        kernel=args.kernel,
    )
