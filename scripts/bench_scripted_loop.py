"""One sentence at a time: a layer's steps from Python against the same steps as one TorchScript
loop, alone and with two layers side by side on two threads (as the two stacks of a biLM run).

    python scripts/bench_scripted_loop.py                   # published small and ORIGINAL shapes
    python scripts/bench_scripted_loop.py --shapes small --steps 25 --repeats 7

Each row is one layer of a published shape (``--shapes``) over one sentence of ``--steps``
tokens, run by the exact kernel (``ExactKernel.run_layer``) with the TorchScript loop
(``elmo.kernels.scripted``) or with it turned off (the loop from Python, as before it), on one
torch thread per Python thread. "alone": one layer on one thread; "side by side": two layers at
once on two Python threads (the forward and the backward stack of ``run_directions``), each on
one torch thread. Times are microseconds per step, the median of ``--repeats`` runs of the
whole sentence after one warm-up; "side by side" is the slower of the two threads. Both ways
give the same bits (checked before timing).
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time

import torch

from elmo.config import LSTMConfig
from elmo.kernels import exact
from elmo.kernels.cpu import thread_count
from elmo.kernels.exact import ExactKernel
from elmo.kernels.scripted import scripted_loop
from elmo.modules.lstm import LstmLayer

SHAPES = {  # name: (input and projection size D, cell size H), as the published options
    "small": (128, 1024),
    "original": (512, 4096),
}
KERNEL = ExactKernel()


def make_layer(dim: int, cell: int, seed: int) -> LstmLayer:
    torch.manual_seed(seed)
    config = LSTMConfig(num_layers=1, cell_size=cell, projection_dim=dim, cell_clip=3.0,
                        projection_clip=3.0)  # fmt: skip
    return LstmLayer(dim, config).eval()


def run(layer: LstmLayer, inputs: torch.Tensor, scripted: bool) -> torch.Tensor:
    """One sentence through ``layer`` by the exact kernel, its steps scripted or from Python."""
    batch, steps, dim = inputs.shape
    state = (inputs.new_zeros(batch, dim), inputs.new_zeros(batch, layer.cell_size))
    loop = scripted_loop if scripted else (lambda: None)
    original, exact.scripted_loop = exact.scripted_loop, loop
    try:
        return KERNEL.run_layer(layer, inputs, [steps], state, reverse=False)[0]
    finally:
        exact.scripted_loop = original


def per_step(layer: LstmLayer, inputs: torch.Tensor, scripted: bool, repeats: int) -> list[float]:
    """Microseconds per step of each of ``repeats`` runs, on one torch thread."""
    times = []
    with torch.no_grad():
        run(layer, inputs, scripted)  # warm-up
        for _ in range(repeats):
            started = time.perf_counter()
            run(layer, inputs, scripted)
            times.append((time.perf_counter() - started) / inputs.shape[1] * 1e6)
    return times


def side_by_side(layers: list[LstmLayer], inputs: torch.Tensor, scripted: bool, repeats: int) -> float:
    """The slower thread's median microseconds per step, two layers run at once."""
    results: list[list[float]] = [[], []]

    def work(index: int) -> None:
        results[index] = per_step(layers[index], inputs, scripted, repeats)

    threads = [threading.Thread(target=work, args=(index,)) for index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return max(statistics.median(times) for times in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", default="small,original")
    parser.add_argument("--steps", type=int, default=25, help="tokens in the sentence")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if scripted_loop() is None:
        raise SystemExit("TorchScript could not compile the loop here: nothing to compare")
    print(f"torch {torch.__version__}, one torch thread per Python thread; batch 1, "
          f"{args.steps} steps, median of {args.repeats}\n")  # fmt: skip
    print("| shape | loop | alone (us/step) | side by side (us/step, the slower thread) | "
          "side by side / alone |")  # fmt: skip
    print("| --- | --- | ---: | ---: | ---: |")
    with thread_count(1):
        for name in args.shapes.split(","):
            dim, cell = SHAPES[name]
            layers = [make_layer(dim, cell, seed) for seed in (0, 1)]
            inputs = torch.randn(1, args.steps, dim)
            with torch.no_grad():
                if not torch.equal(run(layers[0], inputs, True), run(layers[0], inputs, False)):
                    raise SystemExit(f"{name}: the two loops differ")
            for scripted in (False, True):
                alone = statistics.median(per_step(layers[0], inputs, scripted, args.repeats))
                both = side_by_side(layers, inputs, scripted, args.repeats)
                loop = "TorchScript" if scripted else "Python"
                print(f"| {name} | {loop} | {alone:.0f} | {both:.0f} | {both / alone:.2f} |")


if __name__ == "__main__":
    main()
