"""Ours against the two reference implementations of ELMo, side by side on this machine.

The implementations (set up by ``peers.py`` in a scratch folder, default /tmp/elmo_peers; see its
docstring for what is installed, trimmed and patched, and how the weights are shared):

* ``elmo embed``: our command, the user's path: a fresh process that writes the HDF5 file
  (``--output``, default ``--all``; stateless, sorted windows);
* ``elmo``: ``ElmoEmbedder.embed_sentences`` (all layers);
* ``elmo per call`` (not run unless named in ``--implementations``): ``ElmoEmbedder.embed_sentence``
  called once per sentence, as interactive use calls it (at batch size 1, ``embed_sentences``
  runs many sentences side by side as lanes, which one call of one sentence cannot);
* ``allennlp``: AllenNLP's ``_ElmoBiLm`` driven as its ``ElmoEmbedder.embed_sentences`` was
  (``peers.allennlp_embed``: batches in input order, stateful, all layers as numpy);
* ``manylangs``: ELMoForManyLangs' ``Embedder(model, batch_size).sents2elmo(sentences,
  output_layer=-2)`` (all layers), as its README shows: it sorts the sentences by length itself,
  and runs with gradients on, as its users call it.

All four read the *same* random weights of a published shape (on ASCII text they compute the
same vectors: ``peers.convert`` checks it). Each run is a fresh process, timed from start to exit
(``end to end``: Python's and torch's start, the model's loading, the embedding, for ``elmo
embed`` the writing), with its peak RSS (``wait4``); the three Python ones also time the
embedding call alone (``embedding``). For ``elmo embed`` that column is the command past its
start: each run is followed by one on the case's first sentence alone, and the difference of the
two times (the other sentences from their first batch to the file closed, as issue 16 timed the
commands) gives the rate of the other sentences' tokens. Rounds interleave the implementations
(rotating which goes first) and the cases; the table gives medians over the rounds and the
largest peak RSS. Threads: ``--threads`` for every process (torch, OMP and MKL).

Our kernels (``--kernels``, default ``exact``): each other kernel named adds our two rows again,
as ``elmo embed --kernel K`` and ``elmo --kernel K`` (and ``elmo --kernel K`` in training), in
the same rounds, with a ratio column each against every row.

Cases (``--cases shape:batch:sentences``): the issue's small shape batch 64, ORIGINAL batch 64 and
small batch 1, on the first N sentences of WikiText-2 valid (``bench_embed.load_sentences``).

Training (``--train-cases shape:batch``, default the published small shape at batch 64): ours
(``bench_train.run_child``: ``train_step`` on B streams x 20 tokens per direction of WikiText-2
train, the shape's sampled softmax of 8,192, AdamW, the exact kernel) against ELMoForManyLangs'
training step on the same text (``peers.manylangs_train_steps``: B pieces of at most 20 tokens,
its own sampled softmax of 8,192 columns, Adam), each in a fresh process, in the same rounds:
LM predictions per second of the median timed step (``--train-steps`` after
``--train-warmup``), and peak RSS. AllenNLP's modules have no language-model trainer.

What running the peers taught (2026-12, torch 2.13 CPU):

* ELMoForManyLangs 0.0.4.post2 imports under torch 2.x after four text patches (``peers.py``);
  its model folder needs ``config.json`` -> ``config_path``, the model config, ``char.dic`` and
  two state dicts (``torch.load`` with torch's default ``weights_only`` reads them). It logs the
  model at INFO on stderr, and ``sents2elmo`` runs without ``no_grad``.
  ``sents2elmo`` sorts all its input by length, then shuffles the batches with Python's
  unseeded ``random`` (the order in which they run changes from run to run; its encoder is
  stateful, so the vectors do too, slightly).
* AllenNLP 2.x has no ``ElmoEmbedder`` any more (``allennlp elmo`` went with 1.0); its modules
  alone, trimmed, load the published files and match ours bit for bit on a fresh batch (so does
  ELMoForManyLangs with the converted weights: ``peers.convert`` prints both differences).
* Peak RSS must be each process's own: Linux starts a child's ``ru_maxrss`` at its parent's
  resident size, so every process is started through ``bench_embed``'s small launcher
  (``timed_process``). Without it all four read the same 1,310 MiB on the original shape (the
  parent had written the model).
* Smoke runs (a few dozen sentences) are dominated by start and load (4-10 s a process); the
  original shape's first setup writes 2 x 360 MiB of weights and holds both peers' models while
  converting (about a minute).

    python scripts/bench_peers.py --allennlp-git /work/.mirror/allenai+allennlp/repo --setup-only
    flock /tmp/cpu.lock python scripts/bench_peers.py --rounds 3
    python scripts/bench_peers.py --cases small:64:40 --rounds 1          # a smoke run
    python scripts/bench_peers.py --cases '' --train-cases small:64 --rounds 3   # training only
    python scripts/bench_peers.py --cases original:64:500 --train-cases '' --kernels exact,bf16
"""

from __future__ import annotations

import argparse
import importlib
import json
import statistics
import sys
import time
from pathlib import Path

from bench_embed import TEXT, _cpu_model, elmo_command, load_sentences, timed_process
from peers import SCRATCH, allennlp_embed, manylangs_train_steps, peer_environment, setup

IMPLEMENTATIONS = ("elmo embed", "elmo", "allennlp", "manylangs")
OURS = ("elmo embed", "elmo", "elmo per call")
CASES = "small:64:2000,original:64:500,small:1:200"
TRAINERS = ("elmo", "manylangs")  # AllenNLP's modules hold no language-model trainer
TRAIN_CASES = "small:64"
TRAIN_TEXT = TEXT.parent / "wiki.train.tokens"


def ours(name: str) -> tuple[str, str]:
    """``"elmo embed --kernel bf16"`` -> ``("elmo embed", "bf16")``; a peer's kernel is ``""``."""
    base, _, kernel = name.partition(" --kernel ")
    return base, kernel or ("exact" if base in OURS else "")


def variants(names: list[str], kernels: list[str]) -> list[str]:
    """``names`` with our rows repeated for each kernel other than exact (``--kernels``)."""
    extra = [f"{name} --kernel {kernel}" for kernel in kernels if kernel != "exact"
             for name in names if name in ("elmo embed", "elmo")]  # fmt: skip
    return names + extra


def train_child(spec: dict) -> dict:
    """Time training steps of one implementation in this (fresh) process: LM predictions/s."""
    if spec["implementation"] == "elmo":
        importlib.import_module("elmo")  # first, as elmo-train does: its settings made before torch loads
    import torch

    torch.set_num_threads(spec["threads"])
    if spec["implementation"] == "elmo":
        from bench_train import run_child as time_our_steps

        mine = time_our_steps({"shape": spec["shape"], "kernel": spec["kernel"], "device": "cpu",
                               "text": spec["text"], "baseline": False,
                               "batch_size": spec["batch_size"], "unroll_steps": 20,
                               "warmup": spec["warmup"], "steps": spec["steps"],
                               "threads": spec["threads"], "parts": False})  # fmt: skip
        return {"predictions_per_s": mine["tokens_per_s"], "softmax": mine["softmax"]}
    timed = manylangs_train_steps(Path(spec["model"]) / "manylangs" / "cnn.json",
                                  Path(spec["text"]), spec["batch_size"], spec["warmup"],
                                  spec["steps"])  # fmt: skip
    return {"predictions_per_s": statistics.median(n / seconds for n, seconds in timed),
            "softmax": "sampled"}  # fmt: skip


def train_once(name: str, case: dict, paths: dict, args: argparse.Namespace) -> dict:
    """One fresh process training one implementation: its median step's rate and peak RSS."""
    base, kernel = ours(name)
    spec = {"task": "train", "implementation": base, "kernel": kernel, "shape": case["shape"],
            "model": str(paths["models"] / case["shape"]), "text": str(TRAIN_TEXT),
            "batch_size": case["batch_size"], "warmup": args.train_warmup,
            "steps": args.train_steps, "threads": args.threads}  # fmt: skip
    command = [sys.executable, __file__, "--child", json.dumps(spec)]
    _, peak_kib, stdout = timed_process(command, peer_environment(paths, args.threads))
    result = json.loads(stdout.strip().splitlines()[-1])
    return {**result, "peak_rss_mib": peak_kib / 1024}


def train_table(cases: list[dict], runs: dict, trainers: list[str]) -> str:
    """The markdown table of the training rounds' medians."""
    mine = [name for name in trainers if ours(name)[1]]
    lines = ["| case | implementation | LM predictions/s | peak RSS (MiB) | "
             + " | ".join(f"{name} / this" for name in mine) + " |",
             "| --- | --- | ---: | ---: |" + " ---: |" * len(mine)]  # fmt: skip
    for case in cases:
        rates = {name: statistics.median(r["predictions_per_s"] for r in done)
                 for name in trainers if (done := runs.get((case["name"], name)))}  # fmt: skip
        for name, rate in rates.items():
            rss = max(r["peak_rss_mib"] for r in runs[(case["name"], name)])
            ratios = [_number(rates.get(own) and rates[own] / rate, "{:.2f}x") for own in mine]
            lines.append(f"| {case['name']} | {name} | {rate:,.0f} | {rss:,.0f} | "
                         + " | ".join(ratios) + " |")  # fmt: skip
    return "\n".join(lines)


def run_child(spec: dict) -> dict:
    """Embed the spec's sentences with one implementation, in this (fresh) process."""
    if spec.get("task") == "train":
        return train_child(spec)
    import torch

    torch.set_num_threads(spec["threads"])
    sentences = load_sentences(Path(spec["text"]), spec["sentences"])
    model = Path(spec["model"])
    (name, kernel), batch_size = ours(spec["implementation"]), spec["batch_size"]
    if name in ("elmo", "elmo per call"):
        from elmo.embedder import ElmoEmbedder

        embedder = ElmoEmbedder.from_published(model / "options.json", model / "weights.hdf5",
                                               batch_size=batch_size, kernel=kernel)  # fmt: skip
        embed = embedder.embed_sentences
        if name == "elmo per call":

            def embed(sentences):
                return [embedder.embed_sentence(sentence) for sentence in sentences]
    elif name == "allennlp":
        from allennlp.data.token_indexers.elmo_indexer import ELMoCharacterMapper
        from allennlp.modules.elmo import _ElmoBiLm

        bilm = _ElmoBiLm(str(model / "options.json"), str(model / "weights.hdf5"), requires_grad=False)
        mapper = ELMoCharacterMapper()

        def embed(sentences):
            return allennlp_embed(bilm, mapper, sentences, batch_size)
    elif name == "manylangs":
        from elmoformanylangs import Embedder

        embedder = Embedder(str(model / "manylangs"), batch_size=batch_size)

        def embed(sentences):
            return embedder.sents2elmo(sentences, output_layer=-2)
    else:
        raise SystemExit(f"unknown implementation {name!r}")
    started = time.perf_counter()
    vectors = embed(sentences)
    seconds = time.perf_counter() - started
    return {"embed_seconds": seconds, "vectors": sum(v.shape[1] for v in vectors)}


def run_once(name: str, case: dict, paths: dict, args: argparse.Namespace) -> dict:
    """One fresh process of one implementation on one case: its times and peak RSS."""
    model = paths["models"] / case["shape"]
    env = peer_environment(paths, args.threads)
    base, kernel = ours(name)
    if base == "elmo embed":
        output = Path(args.scratch) / "vectors.hdf5"
        output.unlink(missing_ok=True)
        command = [*elmo_command(), "embed", str(case["file"]), str(output), f"--{args.output}",
                   "--options-file", str(model / "options.json"), "--weight-file",
                   str(model / "weights.hdf5"), "--batch-size", str(case["batch_size"]),
                   "--kernel", kernel]  # fmt: skip
        seconds, peak_kib, _ = timed_process(command, env)
        output.unlink(missing_ok=True)
        at = command.index(str(case["file"]))  # the same on the first sentence alone: the start
        start, _, _ = timed_process([*command[:at], str(case["first_file"]), *command[at + 1 :]], env)
        output.unlink(missing_ok=True)
        # past the start: the other sentences from their first batch to the file closed, scaled to
        # all the case's tokens (the table divides them by it)
        past = (seconds - start) * case["tokens"] / (case["tokens"] - case["first_tokens"])
        return {"seconds": seconds, "embed_seconds": past if past > 0 else None,
                "peak_rss_mib": peak_kib / 1024}  # fmt: skip
    spec = {"implementation": name, "model": str(model), "text": str(args.text),
            "sentences": case["sentences"], "batch_size": case["batch_size"],
            "threads": args.threads}  # fmt: skip
    command = [sys.executable, __file__, "--child", json.dumps(spec)]
    seconds, peak_kib, stdout = timed_process(command, env)
    result = json.loads(stdout.strip().splitlines()[-1])
    if result["vectors"] != case["tokens"]:
        raise SystemExit(f"{name} returned {result['vectors']} vectors for {case['tokens']} tokens")
    return {"seconds": seconds, "embed_seconds": result["embed_seconds"],
            "peak_rss_mib": peak_kib / 1024}  # fmt: skip


def parse_cases(text: str, corpus: Path, scratch: Path) -> list[dict]:
    """``shape:batch:sentences,...`` -> cases, each with its sentences written one per line."""
    cases = []
    for item in text.split(","):
        shape, batch_size, count = item.split(":")
        sentences = load_sentences(corpus, int(count))
        file = scratch / f"sentences-{len(sentences)}.txt"
        file.write_text("".join(" ".join(s) + "\n" for s in sentences), encoding="utf-8")
        first = scratch / f"sentences-{len(sentences)}-first.txt"
        first.write_text(" ".join(sentences[0]) + "\n", encoding="utf-8")
        cases.append({"name": item, "shape": shape, "batch_size": int(batch_size),
                      "sentences": len(sentences), "tokens": sum(map(len, sentences)),
                      "file": file, "first_file": first, "first_tokens": len(sentences[0])})  # fmt: skip
    return cases


def table(cases: list[dict], runs: dict, names: list[str]) -> str:
    """The markdown table of medians (see the module docstring)."""
    extra = [name for name in names if ours(name)[1] not in ("", "exact")]  # other kernels' rows
    lines = [
        ("| case | implementation | tokens | tokens/s end to end | tokens/s embedding | peak RSS "
         "(MiB) | elmo embed / this, end to end | elmo embed / this, embedding (ours past its "
         "start) | elmo / this, embedding | this RSS / elmo embed's |"
         + "".join(f" {name} / this, {_kind(name)} |" for name in extra)),
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |" + " ---: |" * len(extra),
    ]  # fmt: skip
    for case in cases:
        rates = {}
        for name in names:
            done = runs.get((case["name"], name))
            if not done:
                continue
            embedding = [r["embed_seconds"] for r in done if r["embed_seconds"] is not None]
            rates[name] = {
                "total": case["tokens"] / statistics.median(r["seconds"] for r in done),
                "embedding": case["tokens"] / statistics.median(embedding) if embedding else None,
                "rss": max(r["peak_rss_mib"] for r in done),
            }  # fmt: skip
        for name, rate in rates.items():
            cli, api = rates.get("elmo embed"), rates.get("elmo")
            cells = [case["name"], name, f"{case['tokens']:,}", f"{rate['total']:,.0f}",
                     _number(rate["embedding"], "{:,.0f}"), f"{rate['rss']:,.0f}",
                     _number(cli and cli["total"] / rate["total"], "{:.2f}x"),
                     _number(cli and cli["embedding"] and rate["embedding"]
                             and cli["embedding"] / rate["embedding"], "{:.2f}x"),
                     _number(api and rate["embedding"] and api["embedding"] / rate["embedding"],
                             "{:.2f}x"),
                     _number(cli and rate["rss"] / cli["rss"], "{:.2f}")]  # fmt: skip
            for other in extra:  # this kernel's row against this row: end to end or embedding
                key = "total" if _kind(other) == "end to end" else "embedding"
                own = rates.get(other)
                cells.append(_number(own and rate[key] and own[key] / rate[key], "{:.2f}x"))
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _kind(name: str) -> str:
    return "end to end" if ours(name)[0] == "elmo embed" else "embedding"


def _number(value: float | None, form: str) -> str:
    return "-" if value is None else form.format(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scratch", type=Path, default=SCRATCH)
    parser.add_argument("--allennlp-git", type=Path,
                        help="a git copy of allenai/allennlp (first run only)")
    parser.add_argument("--cases", default=CASES, help=f"shape:batch:sentences,... (default {CASES})")
    parser.add_argument("--implementations", default=",".join(IMPLEMENTATIONS))
    parser.add_argument("--kernels", default="exact",
                        help="our recurrence kernels, each with rows of its own (elmo.kernels)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output", default="all", choices=["all", "top", "average"],
                        help="what elmo embed writes")
    parser.add_argument("--text", type=Path, default=TEXT)
    parser.add_argument("--train-cases", default=TRAIN_CASES,
                        help=f"shape:batch,... trained by elmo and ELMoForManyLangs ('' for none; "
                        f"default {TRAIN_CASES})")  # fmt: skip
    parser.add_argument("--train-warmup", type=int, default=3, help="untimed steps first")
    parser.add_argument("--train-steps", type=int, default=8, help="timed training steps")
    parser.add_argument("--setup-only", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_child(json.loads(args.child))))
        return
    names = variants(args.implementations.split(","), args.kernels.split(","))
    items = [item for item in f"{args.cases},{args.train_cases}".split(",") if item]
    shapes = sorted({item.split(":")[0] for item in items})  # the models both parts need
    paths = setup(args.scratch, args.allennlp_git, shapes)
    if args.setup_only:
        return
    cases = parse_cases(args.cases, args.text, args.scratch) if args.cases else []
    train_cases = [{"name": item, "shape": item.split(":")[0], "batch_size": int(item.split(":")[1])}
                   for item in args.train_cases.split(",") if item]  # fmt: skip
    trainers = [name for name in TRAINERS if name in names or name == "elmo" and "elmo embed" in names]
    trainers = variants(trainers, args.kernels.split(","))
    print(f"{_cpu_model()}, {args.threads} threads; {args.rounds} rounds", file=sys.stderr)
    runs: dict[tuple[str, str], list[dict]] = {}
    trained: dict[tuple[str, str], list[dict]] = {}
    for round_index in range(args.rounds):
        for case in cases:
            shift = round_index % len(names)
            for name in names[shift:] + names[:shift]:
                result = run_once(name, case, paths, args)
                runs.setdefault((case["name"], name), []).append(result)
                print(f"round {round_index + 1} {case['name']} {name}: "
                      f"{case['tokens'] / result['seconds']:,.0f} tokens/s end to end, "
                      f"{result['peak_rss_mib']:,.0f} MiB", file=sys.stderr, flush=True)  # fmt: skip
        for case in train_cases:
            shift = round_index % len(trainers)
            for name in trainers[shift:] + trainers[:shift]:
                result = train_once(name, case, paths, args)
                trained.setdefault((case["name"], name), []).append(result)
                print(f"round {round_index + 1} train {case['name']} {name}: "
                      f"{result['predictions_per_s']:,.0f} LM predictions/s, "
                      f"{result['peak_rss_mib']:,.0f} MiB", file=sys.stderr, flush=True)  # fmt: skip
    if cases:
        print(table(cases, runs, names))
    if train_cases:
        print("\nTraining, batch B x 20 tokens per direction, sampled softmax (8,192):\n")
        print(train_table(train_cases, trained, trainers))


if __name__ == "__main__":
    main()
