"""The fused kernel with its products in bfloat16: faster on CPUs with bfloat16 units.

On a CPU with bfloat16 matrix instructions (Intel AMX) a bfloat16 product of 16 rows or more
runs about 2-4x as fast as a float32 one (oneDNN). One of fewer rows is bound by reading its
weight, and torch's plain bfloat16 path for it is poor (``scripts/bench_gemm_rows.py --bf16``,
``docs/benchmarks.md``); with the weight prepacked for oneDNN (``bf16_linear``) it reads half
the bytes of float32 and is faster wherever the weight is large. So this kernel is the fused one
(``elmo.kernels.fused``) in which a product takes bfloat16 inputs and weights, accumulates in
float32 inside oneDNN and hands back bfloat16, turned to float32 before anything else reads it:

* on a layer whose recurrent weight has ``BF16_FEW_ROWS_MIN_WEIGHTS`` elements or more (the
  published ORIGINAL shape), every product, one sentence at a time included;
* on a smaller layer (the published small and medium shapes), the products of
  ``BF16_MIN_ROWS`` rows or more; the steps with fewer rows stay float32, and a batch of fewer
  than 16 sentences, which has no step of 16 rows, runs the exact kernel bit for bit (its
  TorchScript loop was faster there than any bfloat16 step from Python, ``docs/benchmarks.md``),
  as do the exact kernel's lanes one sentence at a time (``lanes.rows_alone()``).

The input projections are taken a chunk of steps at a time over the rows still in their
sentence (``fused.chunked_inputs``); the per-step products read the prepacked weights. The cell,
its state and everything outside the recurrence stay float32.

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
from typing import NamedTuple

import torch
from torch import nn

from elmo.kernels.exact import ExactKernel, needs_gradient, runs_rows_alone
from elmo.kernels.fused import (
    FusedKernel,
    FusedProducts,
    Product,
    candidate_scale,
    fused_step,
)
from elmo.kernels.probe_store import cpu_identity
from elmo.modules.lstm import LstmLayer

BF16_MIN_ROWS = 16  # on a small layer, products with fewer rows stay float32 (slower in bfloat16)
BF16_FEW_ROWS_MIN_WEIGHTS = 1 << 22  # a recurrent weight this large: every product in bfloat16


class Bf16Weights(NamedTuple):
    """A layer's fused weights (``fused.fused_weights``) as the bf16 step reads them."""

    input: torch.Tensor  # (4H, D_in) bfloat16
    bias: torch.Tensor  # (4H,) bfloat16
    recurrent: Product  # (R, D) bfloat16 -> (R, 4H) bfloat16 (``bf16_linear``)
    projection: Product  # (R, H) bfloat16 -> (R, D) bfloat16


class Bf16Kernel(FusedKernel):
    """The fused kernel with its products in bfloat16 (module docstring); equal up to bfloat16 rounding."""

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
        if runs_rows_alone(layer, inputs, lengths, state):  # each row as alone, lanes if exact
            return self.rows_alone_layer(layer, inputs, lengths, state, reverse)
        if len(lengths) < BF16_MIN_ROWS and not few_rows_in_bf16(layer):  # exact: faster here
            return ExactKernel.run_layer(self, layer, inputs, lengths, state, reverse)
        products = bf16_products(layer, self.bf16_weights(layer))
        return layer(inputs, lengths, state, reverse, step=fused_step(layer, inputs, lengths, products))

    def one_row_is_exact(self, layer: LstmLayer, inputs: torch.Tensor) -> bool:
        if inputs.dtype != torch.float32:
            return super().one_row_is_exact(layer, inputs)  # the fused kernel's
        return not few_rows_in_bf16(layer)  # then one row runs the exact kernel

    def bf16_weights(self, layer: LstmLayer) -> Bf16Weights:
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
                kept = (tuple(map(weakref.ref, sources)), versions, _to_bf16(layer))
            self._converted[layer] = kept
        return kept[2]


def bf16_products(layer: LstmLayer, weights: Bf16Weights) -> FusedProducts:
    """The fused step's products in bfloat16: all of them on a large layer, else those of
    ``BF16_MIN_ROWS`` rows or more and float32 below (module docstring).

    Args:
        weights: ``layer``'s fused weights in bfloat16 (``Bf16Kernel.bf16_weights``).
    """
    scale = candidate_scale(layer)[:, 0]  # (4H,)
    min_rows = 1 if few_rows_in_bf16(layer) else BF16_MIN_ROWS

    def product(half: Product, full: tuple, doubled: bool, output_float32: bool = True) -> Product:
        """``half``: the product in bfloat16, fused; ``full``: the layer's own float32 (weight,
        bias), read by products of fewer than ``min_rows`` rows, which double the candidate's
        columns after (``doubled``; exact: a power of two) rather than keep a doubled copy."""

        def run(x: torch.Tensor) -> torch.Tensor:  # x (..., D_in) -> (..., D_out)
            if x.numel() < min_rows * x.shape[-1]:
                out = nn.functional.linear(x, *full)
                return out.mul_(scale) if doubled else out
            out = half(x.to(torch.bfloat16))
            return out.float() if output_float32 else out

        return run

    # The input products stay bfloat16: the gates' sum with the float32 recurrent product is float32.
    def inputs(x: torch.Tensor) -> torch.Tensor:  # (C, R, D_in) bfloat16 -> (C, R, 4H), the bias in
        return nn.functional.linear(x, weights.input, weights.bias)

    return FusedProducts(
        product(inputs, (layer.input_weight, layer.gate_bias()), True, output_float32=False),
        product(weights.recurrent, (layer.recurrent_weight, None), True),
        product(weights.projection, (layer.projection_weight, None), False),
    )


def few_rows_in_bf16(layer: LstmLayer) -> bool:
    """Whether ``layer``'s products of fewer than ``BF16_MIN_ROWS`` rows run in bfloat16 too.

    A product of a few rows is bound by reading its weight; prepacked in bfloat16 it reads half
    the bytes, 1.3-1.7x float32's speed at 1-3 rows on the large shapes' products
    (``scripts/bench_gemm_rows.py --bf16``). But one sentence at a time the exact kernel runs its
    steps as one TorchScript loop, and this kernel's steps run from Python. On the published
    ORIGINAL shape (a recurrent weight of 2^23 elements, 32 MiB in float32) the weights dominate
    and the bf16 kernel embedded 1.8x as fast as the exact one; on the medium shape (2^21, 8 MiB)
    it was 0.92x, and the small one (2^19) loses in its products too (``docs/benchmarks.md``).
    The threshold, ``BF16_FEW_ROWS_MIN_WEIGHTS`` (2^22), lies between the two measured sizes.
    """
    weight = layer.recurrent_weight
    return weight.device.type == "cpu" and weight.numel() >= BF16_FEW_ROWS_MIN_WEIGHTS and packs_bf16()


def bf16_linear(weight: torch.Tensor) -> Product:
    """``x -> x W^T`` in bfloat16 for the per-step products: x (R, in) bfloat16 -> (R, out) bfloat16.

    On a CPU where oneDNN takes a prepacked bfloat16 weight (``packs_bf16``) the weight is
    packed once: the packed product was 1.1-1.9x the plain bfloat16 ``linear``'s speed at 16-64
    rows, and much faster than it at fewer (``scripts/bench_gemm_rows.py --bf16``), with the
    same values where compared. Elsewhere (a GPU; a torch without oneDNN) the plain ``linear``.

    Args:
        weight: (out, in), bfloat16.
    """
    if weight.device.type == "cpu" and packs_bf16():
        packed = torch.ops.mkldnn._reorder_linear_weight(weight, 1)  # 1: laid out for few rows
        return lambda x: torch.ops.mkldnn._linear_pointwise(x, packed, None, "none", [], "")
    return lambda x: nn.functional.linear(x, weight)


@functools.cache
def packs_bf16() -> bool:
    """Whether this torch's oneDNN takes a prepacked bfloat16 weight on the CPU and gives the
    plain bfloat16 product's values, up to its rounding (probed once, on a small product)."""
    if not torch.backends.mkldnn.is_available():
        return False
    generator = torch.Generator().manual_seed(0)
    weight = torch.randn(48, 40, generator=generator).bfloat16()
    x = torch.randn(5, 40, generator=generator).bfloat16()
    try:
        packed = torch.ops.mkldnn._reorder_linear_weight(weight, 1)
        out = torch.ops.mkldnn._linear_pointwise(x, packed, None, "none", [], "")
    except (RuntimeError, AttributeError, NotImplementedError):  # no such op, or not for bfloat16
        return False
    expected = nn.functional.linear(x.float(), weight.float())
    return out.shape == expected.shape and bool(torch.allclose(out.float(), expected, rtol=2e-2, atol=2e-2))


def _to_bf16(layer: LstmLayer) -> Bf16Weights:
    """``fused_weights(layer)`` in bfloat16, the per-step ones ready for their products.

    Each weight is turned to bfloat16 before the candidate's rows are doubled: the same values
    (a power of two commutes with rounding), without a float32 copy of each doubled weight
    (64 MiB a layer of the ORIGINAL shape, which raised the peak memory)."""
    scale = candidate_scale(layer).to(torch.bfloat16)  # (4H, 1): 1 and 2, exact in bfloat16

    def half(weight: torch.Tensor) -> torch.Tensor:
        return weight.detach().to(torch.bfloat16)

    return Bf16Weights(
        half(layer.input_weight).mul_(scale),
        half(layer.gate_bias()).mul_(scale[:, 0]),
        bf16_linear(half(layer.recurrent_weight).mul_(scale)),
        bf16_linear(half(layer.projection_weight)),
    )


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
