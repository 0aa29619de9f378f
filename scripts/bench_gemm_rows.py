"""How the LSTM's per-step GEMMs fare with few rows: GFLOP/s by row count, and whether a row's
bits depend on how many rows share the GEMM (the exactness question behind hoisting the input
projections of all steps into one GEMM; docs/benchmarks.md).

    python scripts/bench_gemm_rows.py --threads 2
    python scripts/bench_gemm_rows.py --threads 1 --bf16     # + the bf16 kernel's products

``--bf16`` adds the rate of the same product in bfloat16 (the input turned to bfloat16, a
bfloat16 weight, the output turned back to float32, all timed), taken two ways: plain
``linear``, and as the bf16 kernel's per-step products take it (``elmo.kernels.bf16.bf16_linear``:
the weight prepacked for oneDNN where this torch can), each with its speed over float32's.

Shapes: the recurrent product and the projection of the original shape (512 -> 16,384 and
4,096 -> 512), the medium one (256 -> 8,192, 2,048 -> 256) and the published small one
(128 -> 4,096, 1,024 -> 128), and a 2048 x 2048 x 2048 product as the peak. Each rate is the mean over --repeats calls after 3 warm-up calls.
"""

import argparse
import time

import torch

from elmo.kernels.bf16 import bf16_linear

SHAPES = {"original recurrent": (512, 16384), "original projection": (4096, 512),
          "medium recurrent": (256, 8192), "medium projection": (2048, 256),
          "small recurrent": (128, 4096), "small projection": (1024, 128)}  # fmt: skip
ROWS = (1, 3, 8, 16, 32, 64, 128, 256)


def gflops(rows: int, inputs: int, outputs: int, repeats: int, bf16: str = "") -> float:
    """``bf16``: "" (float32), "plain" (bfloat16 ``linear``) or "kernel" (``bf16_linear``)."""
    x, weight = torch.randn(rows, inputs), torch.randn(outputs, inputs)
    half = bf16_linear(weight.bfloat16()) if bf16 == "kernel" else None
    weight = weight.bfloat16() if bf16 else weight

    def product() -> torch.Tensor:
        if half is not None:  # as the bf16 kernel's per-step products take it
            return half(x.bfloat16()).float()
        if bf16:
            return torch.nn.functional.linear(x.bfloat16(), weight).float()
        return torch.nn.functional.linear(x, weight)

    for _ in range(3):
        product()
    started = time.perf_counter()
    for _ in range(repeats):
        product()
    return 2 * rows * inputs * outputs * repeats / (time.perf_counter() - started) / 1e9


def same_bits(rows: int, inputs: int, outputs: int, steps: int = 40, batch: int = 64) -> bool:
    """Rows of one GEMM over all steps equal the per-step GEMM of the first ``rows`` rows."""
    torch.manual_seed(0)
    x, weight = torch.randn(steps, batch, inputs), torch.randn(outputs, inputs) * 0.05
    hoisted = torch.nn.functional.linear(x.reshape(steps * batch, inputs), weight)
    hoisted = hoisted.view(steps, batch, outputs)
    return torch.equal(torch.nn.functional.linear(x[5, :rows], weight), hoisted[5, :rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--bf16", action="store_true", help="add the bfloat16 product's rate")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    peak = max(gflops(2048, 2048, 2048, 5) for _ in range(3))  # the best of 3: the peak
    print(f"{args.threads} threads, torch {torch.__version__}; 2048^3 product: {peak:.0f} GFLOP/s\n")
    extra = " bfloat16 plain / float32 | bfloat16 as the kernel / float32 |" if args.bf16 else ""
    print(f"| product | rows | GFLOP/s | of peak | bits as in one big GEMM |{extra}")
    print("| --- | ---: | ---: | ---: | --- |" + " ---: | ---: |" * args.bf16)
    for name, (inputs, outputs) in SHAPES.items():
        for rows in ROWS:
            rate = gflops(rows, inputs, outputs, args.repeats)
            cells = ""
            if args.bf16:
                plain = gflops(rows, inputs, outputs, args.repeats, bf16="plain")
                kernel = gflops(rows, inputs, outputs, args.repeats, bf16="kernel")
                cells = f" {plain / rate:.2f}x | {kernel / rate:.2f}x |"
            print(f"| {name} {inputs} -> {outputs} | {rows} | {rate:.0f} | {rate / peak:.0%} | "
                  f"{'yes' if same_bits(rows, inputs, outputs) else 'no'} |{cells}")  # fmt: skip


if __name__ == "__main__":
    main()
