"""The fused kernel with its larger products in bfloat16: faster on CPUs with bfloat16 units.

On a CPU with bfloat16 matrix instructions (Intel AMX) a bfloat16 product of 16 rows or more
runs about 2-4x as fast as a float32 one (oneDNN), one of fewer rows often slower: it is bound
by reading the weight, and torch's bfloat16 path for it is poor (``scripts/bench_gemm_rows.py
--bf16``, ``docs/benchmarks.md``). So this kernel is the fused one (``elmo.kernels.fused``) in
which every product of at least ``BF16_MIN_ROWS`` rows takes bfloat16 inputs and weights,
accumulates in float32 inside oneDNN and hands back bfloat16, turned to float32 before anything
else reads it: the steps' products with 16 rows or more, and the input projections, taken a
chunk of steps at a time over the rows still in their sentence (``fused.chunked_inputs``). The
cell, its state and everything outside the recurrence stay float32, as do the products of the
steps with fewer rows. A batch of fewer than 16 sentences has no such step, and there the exact
kernel, with its levers for few rows, was faster than the fused one with bfloat16 input
products on the published small shape (``docs/benchmarks.md``): such a batch runs the exact
kernel, bit for bit.

Not exact: each such product rounds its inputs, weights and output to 8 bits of mantissa. How
far the vectors move is measured in ``docs/benchmarks.md`` (``scripts/kernel_accuracy.py``).
Opt-in, and only where it is faster. For inference: with a gradient to take (training, or
fine-tuning the biLM) a step through it was no faster than the exact kernel's, whose backward is
written by hand (``docs/benchmarks.md``), so a layer that needs one is refused, and
``trainer.kernel`` does not accept it (a frozen biLM under a trained model is inference). On a
CPU without bfloat16 instructions (AMX-BF16 or AVX512-BF16) its products would be emulated and
slower than float32, so there a float32 model is refused at its first layer. A float64 model
runs the fused kernel as it is.

The weights' bfloat16 copies are made once per layer and kept (without a gradient) until the
layer's weights change (another tensor, or an in-place write): for the ORIGINAL shape, 150 MB.
"""

from __future__ import annotations

import functools
import weakref

import torch
from torch import nn

from elmo.kernels.exact import ExactKernel, needs_gradient
from elmo.kernels.fused import (
    FusedKernel,
    FusedProducts,
    FusedWeights,
    Product,
    candidate_scale,
    fused_step,
    fused_weights,
)
from elmo.kernels.probe_store import cpu_identity
from elmo.modules.lstm import LstmLayer

BF16_MIN_ROWS = 16  # products with fewer rows stay float32 (slower in bfloat16 where measured)


class Bf16Kernel(FusedKernel):
    """The fused kernel with its products of >= 16 rows in bfloat16; equal up to bfloat16 rounding."""

    name = "bf16"
    exact = False
    trains = False

    def __init__(self) -> None:
        # layer -> (weak references to its weights then, their versions, their bfloat16 copies)
        self._converted: weakref.WeakKeyDictionary[LstmLayer, tuple] = weakref.WeakKeyDictionary()

    def run_layer(self, layer, inputs, lengths, state, reverse):
        if inputs.dtype != torch.float32:  # float64: the fused kernel as it is
            return super().run_layer(layer, inputs, lengths, state, reverse)
        require_native_bf16(inputs.device)
        if needs_gradient(layer, inputs, state):
            raise ValueError(
                "kernel 'bf16' is for inference, and this layer needs a gradient (training or "
                "fine-tuning the biLM): there it is no faster than 'exact', the default; use 'exact' "
                "or 'fused', or torch.no_grad() / a frozen biLM for inference"
            )
        if len(lengths) < BF16_MIN_ROWS:  # no step has 16 rows: the exact kernel is faster here
            return ExactKernel.run_layer(self, layer, inputs, lengths, state, reverse)
        products = bf16_products(layer, self.bf16_weights(layer))
        return layer(inputs, lengths, state, reverse, step=fused_step(layer, inputs, lengths, products))

    def bf16_weights(self, layer: LstmLayer) -> FusedWeights:
        """``layer``'s fused weights in bfloat16; kept while its weights stay the same."""
        sources = (
            layer.input_weight,
            layer.recurrent_weight,
            layer.bias,
            layer.projection_weight,
            layer.forget_offset,
        )
        versions = tuple(source._version for source in sources)
        kept = self._converted.get(layer)
        if kept is None or kept[1] != versions or any(r() is not s for r, s in zip(kept[0], sources)):
            with torch.no_grad():  # weak references: weights replaced since are not held here
                kept = (tuple(map(weakref.ref, sources)), versions, _to_bf16(fused_weights(layer)))
            self._converted[layer] = kept
        return kept[2]


def bf16_products(layer: LstmLayer, weights: FusedWeights) -> FusedProducts:
    """The fused step's products: in bfloat16 from ``BF16_MIN_ROWS`` rows up, else float32.

    Args:
        weights: ``layer``'s fused weights in bfloat16 (``Bf16Kernel.bf16_weights``).
    """
    scale = candidate_scale(layer)[:, 0]  # (4H,)

    def product(half: tuple, full: tuple, doubled: bool, output_float32: bool = True) -> Product:
        """``half``: (weight, bias) in bfloat16, fused; ``full``: the layer's own float32 ones,
        read by products of fewer rows, which double the candidate's columns after (``doubled``;
        exact: a power of two) rather than keep a doubled copy of each weight."""

        def run(x: torch.Tensor) -> torch.Tensor:  # x (..., D_in) -> (..., D_out)
            if x.numel() < BF16_MIN_ROWS * x.shape[-1]:
                out = nn.functional.linear(x, *full)
                return out.mul_(scale) if doubled else out
            out = nn.functional.linear(x.to(torch.bfloat16), *half)
            return out.float() if output_float32 else out

        return run

    # The input products stay bfloat16: the gates' sum with the float32 recurrent product is float32.
    return FusedProducts(
        product((weights.input, weights.bias), (layer.input_weight, layer.gate_bias()), True, output_float32=False),
        product((weights.recurrent, None), (layer.recurrent_weight, None), True),
        product((weights.projection, None), (layer.projection_weight, None), False),
    )


def _to_bf16(weights: FusedWeights) -> FusedWeights:
    return FusedWeights(*(weight.to(torch.bfloat16) for weight in weights))


def require_native_bf16(device: torch.device) -> None:
    """Raise ValueError (the kernel setting is wrong for this machine) unless ``device`` computes
    bfloat16 products natively, where this kernel is faster."""
    if not native_bf16(device.type):
        raise ValueError(
            f"kernel 'bf16' runs its products in bfloat16, and this {_device_name(device.type)} has no "
            "bfloat16 matrix instructions (Intel AMX-BF16 or AVX512-BF16; a CUDA GPU with bfloat16), so "
            "there they would be emulated and slower than float32: use kernel 'exact' (the default) or "
            "'fused'"
        )


@functools.cache
def native_bf16(device_type: str) -> bool:
    """Whether a device of this type has bfloat16 matrix instructions (CPU: AMX-BF16, AVX512-BF16)."""
    if device_type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device_type != "cpu":
        return False
    flags = _cpu_flags()
    return bool(flags.get("amx_bf16") or flags.get("avx512_bf16"))


def _cpu_flags() -> dict:
    """The CPU's features as torch's cpuinfo reads them, else Linux's /proc/cpuinfo ({} if neither)."""
    capability = getattr(torch._C._cpu, "_get_cpu_capability", None)  # a dict in recent torch
    flags = capability() if capability is not None else None
    if isinstance(flags, dict):
        return flags
    return dict.fromkeys(str(cpu_identity().get("flags", "")).split(), True)


def _device_name(device_type: str) -> str:
    if device_type == "cpu":
        return f"CPU ({_cpu_flags().get('cpu_name', 'model unknown')})"
    return f"{device_type} device"
