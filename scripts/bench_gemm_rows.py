"""How the LSTM's per-step GEMMs fare with few rows: GFLOP/s by row count, and whether a row's
bits depend on how many rows share the GEMM (the exactness question behind hoisting the input
projections of all steps into one GEMM; docs/benchmarks.md).

    python scripts/bench_gemm_rows.py --threads 2
    python scripts/bench_gemm_rows.py --threads 1 --bf16     # + the bf16 kernel's products

``--bf16`` adds the rate of the same product as the bf16 kernel takes it (``elmo.kernels.bf16``:
the input turned to bfloat16, a bfloat16 weight, the output turned back to float32, all timed)
and its speed over float32's.

Shapes: the original shape's recurrent product (512 -> 16,384) and projection (4,096 -> 512),
the published small shape's recurrent product (128 -> 4,096), and a 2048 x 2048 x 2048 product
as the peak. Each rate is the mean over --repeats calls after 3 warm-up calls.
"""

import argparse
import time

import torch

SHAPES = {"original recurrent": (512, 16384), "original projection": (4096, 512),
          "small recurrent": (128, 4096), "small projection": (1024, 128)}  # fmt: skip
ROWS = (1, 3, 8, 16, 32, 64, 128, 256)


def gflops(rows: int, inputs: int, outputs: int, repeats: int, bf16: bool = False) -> float:
    x, weight = torch.randn(rows, inputs), torch.randn(outputs, inputs)
    if bf16:
        weight = weight.bfloat16()

    def product() -> torch.Tensor:
        if bf16:  # as the bf16 kernel takes it
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
    extra = " bfloat16 GFLOP/s | bfloat16 / float32 |" if args.bf16 else ""
    print(f"| product | rows | GFLOP/s | of peak | bits as in one big GEMM |{extra}")
    print("| --- | ---: | ---: | ---: | --- |" + " ---: | ---: |" * args.bf16)
    for name, (inputs, outputs) in SHAPES.items():
        for rows in ROWS:
            rate = gflops(rows, inputs, outputs, args.repeats)
            cells = ""
            if args.bf16:
                half = gflops(rows, inputs, outputs, args.repeats, bf16=True)
                cells = f" {half:.0f} | {half / rate:.2f}x |"
            print(f"| {name} {inputs} -> {outputs} | {rows} | {rate:.0f} | {rate / peak:.0%} | "
                  f"{'yes' if same_bits(rows, inputs, outputs) else 'no'} |{cells}")  # fmt: skip


if __name__ == "__main__":
    main()
