"""A whole training run from a TrainConfig: data, model, resume, loop, evaluation, export.

``elmo.train`` (Hydra) builds the TrainConfig; everything below sees plain dataclasses.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import random
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from torch import nn

from elmo.config import TrainConfig, config_to_dict
from elmo.data.paths import resolve_data_path
from elmo.data.stream import LMBatcher, iter_lines
from elmo.data.tokenizer import PieceTokenizer, Tokenizer, train_sentencepiece
from elmo.data.vocab import Vocabulary
from elmo.model import BiLM
from elmo.modules.lstm import LstmState
from elmo.pretrained import (
    SENTENCEPIECE_FILE,
    VOCAB_FILE,
    load_bilm,
    load_tokenizer,
    load_vocabulary,
    save_pretrained,
)
from elmo.training import distributed
from elmo.training.checkpoint import (
    CHECKPOINT_FILE,
    capture_rng_state,
    load_checkpoint,
    restore_rng_state,
    save_checkpoint,
)
from elmo.training.evaluate import Perplexity, evaluate_perplexity
from elmo.training.loop import RunState, fit
from elmo.training.objective import LMObjective
from elmo.training.optim import build_optimizer, build_scheduler

log = logging.getLogger(__name__)


def run_training(config: TrainConfig) -> dict:
    """Train (or resume) as ``config`` says; returns the final metrics (also in metrics.json)."""
    config.validate()
    world = distributed.setup()
    output_dir = Path(config.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    device = _device(config.trainer.device, world.local_rank)
    if config.trainer.num_threads:
        torch.set_num_threads(config.trainer.num_threads)
    _seed_everything(config.trainer.seed + world.rank)
    train_path = resolve_data_path(config.data.train)

    tokenizer = _tokenizer(config, output_dir, train_path, world)
    vocab = _vocabulary(config, output_dir, train_path, world, tokenizer)
    bilm = _model(config, vocab).to(device)
    objective: nn.Module = LMObjective(bilm, fast_lstm=config.trainer.fast_lstm)
    if world.size > 1:
        objective = distributed.wrap(objective, device, find_unused=config.model.softmax.kind == "adaptive")
    optimizer = build_optimizer(objective.parameters(), config.trainer)
    scheduler = build_scheduler(optimizer, config.trainer)
    batchers = [
        LMBatcher(train_path, vocab, config.data.batch_size, config.data.unroll_steps,
                  max_chars=config.model.char_cnn.max_characters_per_token, reverse=reverse,
                  rank=world.rank, world_size=world.size, shuffle_buffer=config.data.shuffle_buffer,
                  seed=config.trainer.seed, tokenize=tokenizer.units)  # fmt: skip
        for reverse in (False, True)
    ]
    run = RunState()
    checkpoint_path = output_dir / CHECKPOINT_FILE
    if config.resume and checkpoint_path.is_file():
        _resume(checkpoint_path, bilm, optimizer, scheduler, batchers, run, world, device)
        log.info("resumed from %s at step %d", checkpoint_path, run.step)

    valid_path = resolve_data_path(config.data.valid) if config.data.valid else None

    scored: dict = {}  # step -> the whole validation file's Perplexity, reused at the end

    def evaluate() -> dict:
        if valid_path is None:
            return {}
        result = evaluate_perplexity(bilm, valid_path, vocab, config.data.eval_batch_size,
                                     config.data.unroll_steps, config.trainer.eval_max_batches,
                                     tokenizer=tokenizer)  # fmt: skip
        if config.trainer.eval_max_batches is None:
            scored[run.step] = result
        return {f"valid_{k}": v for k, v in result.as_dict().items() if v is not None}

    def checkpoint(state: RunState) -> None:
        payload = _checkpoint_payload(config, bilm, optimizer, scheduler, batchers, state, world)
        if world.is_main:
            save_checkpoint(checkpoint_path, payload)

    fit(objective, optimizer, scheduler, batchers, config.trainer, run, device,
        autocast=_autocast(config.trainer.precision, device),
        evaluate=evaluate if world.is_main and valid_path else None, checkpoint=checkpoint,
        show_progress=world.is_main)  # fmt: skip
    metrics = (
        _finish(config, bilm, vocab, tokenizer, run, output_dir, scored.get(run.step))
        if world.is_main
        else {}
    )
    distributed.teardown(world)
    return metrics


def _tokenizer(config: TrainConfig, output_dir: Path, train_path: str, world) -> Tokenizer:
    """The run's tokenizer: ``init_from``'s when it brings a vocabulary, else the configured one.

    A sentencepiece model is trained on the training text once and saved with the run, so a
    resumed run reads the same pieces.
    """
    settings = config.tokenizer
    if config.init_from and load_vocabulary(config.init_from) is not None:
        source = load_tokenizer(config.init_from)
        if source.kind != settings.kind:
            raise ValueError(
                f"{config.init_from} reads {source.kind} but tokenizer.kind is {settings.kind!r}; "
                f"fine-tuning keeps the model's tokenizer (its softmax is over its units)"
            )
        return source
    if settings.kind == "words":
        return Tokenizer(settings)
    saved = output_dir / SENTENCEPIECE_FILE
    distributed.barrier(world)  # every process looks only after this (see _vocabulary)
    if world.is_main and not saved.is_file():
        log.info("training a sentencepiece %s model of %d pieces on %s",
                 settings.model_type, settings.vocab_size, train_path)  # fmt: skip
        train_sentencepiece(iter_lines(train_path), settings).save(saved)
    distributed.barrier(world)
    return PieceTokenizer.load(settings, saved)


def _vocabulary(
    config: TrainConfig, output_dir: Path, train_path: str, world, tokenizer: Tokenizer
) -> Vocabulary:
    """The run's vocabulary: saved with the run, taken from ``init_from``, or built from train."""
    saved = output_dir / VOCAB_FILE
    resuming = saved.is_file()
    # Every process looks before the main one may write the file below; otherwise a late process
    # would find it, skip the barrier that the main process waits in, and training would hang.
    distributed.barrier(world)
    if resuming:
        return Vocabulary.load(saved)
    if config.init_from and load_vocabulary(config.init_from) is not None:
        vocab = load_vocabulary(config.init_from)
        log.info("vocabulary of %s: %d entries", config.init_from, len(vocab))
    elif world.is_main and tokenizer.inventory is not None:
        log.info("counting the pieces of %s", train_path)
        vocab = Vocabulary.from_inventory(tokenizer.inventory, iter_lines(train_path),
                                          tokenizer.units, progress=True)  # fmt: skip
        log.info("vocabulary: %d entries (all the pieces)", len(vocab))
    elif world.is_main:
        log.info("building the vocabulary from %s", train_path)
        vocab = Vocabulary.build(iter_lines(train_path), config.data.vocab_min_count,
                                 config.data.vocab_max_size, progress=True)  # fmt: skip
        log.info("vocabulary: %d entries", len(vocab))
    if world.is_main:
        vocab.save(saved)
    distributed.barrier(world)
    return Vocabulary.load(saved)


def _model(config: TrainConfig, vocab: Vocabulary) -> BiLM:
    """A fresh BiLM, or one initialised from ``init_from`` (fine-tuning) with a softmax for vocab."""
    if not config.init_from:
        return BiLM(dataclasses.replace(config.model, vocab_size=len(vocab)))
    source = load_bilm(model=config.init_from)
    # The architecture is the source's; the softmax and the training dropout are this run's.
    model_config = dataclasses.replace(
        source.config, vocab_size=len(vocab), softmax=config.model.softmax, dropout=config.model.dropout
    )
    model = BiLM(model_config)
    state = source.state_dict()
    if source.softmax is not None and source.config.vocab_size != len(vocab):
        raise ValueError(
            f"{config.init_from}: its softmax has {source.config.vocab_size} words but the "
            f"vocabulary has {len(vocab)}"
        )
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or any(not key.startswith("softmax.") for key in missing):
        raise ValueError(f"{config.init_from}: weights do not fit: missing {missing}, unexpected {unexpected}")
    log.info("initialised from %s%s", config.init_from, " (new softmax)" if missing else "")
    return model


def _resume(path, bilm, optimizer, scheduler, batchers, run: RunState, world, device) -> None:
    payload = load_checkpoint(path)
    if payload["world_size"] != world.size:
        raise ValueError(
            f"{path} was written by {payload['world_size']} processes; resume with as many "
            f"(this run has {world.size})"
        )
    bilm.load_state_dict(payload["model"])
    optimizer.load_state_dict(payload["optimizer"])
    scheduler.load_state_dict(payload["scheduler"])
    mine = payload["ranks"][world.rank]
    for batcher, state in zip(batchers, mine["data"]):
        batcher.load_state_dict(state)
    run.step = payload["step"]
    run.history = payload["history"]
    run.forward_state = _state_from_list(mine["forward_state"], device)
    run.backward_state = _state_from_list(mine["backward_state"], device)
    restore_rng_state(mine["rng"])


def _checkpoint_payload(config, bilm, optimizer, scheduler, batchers, run, world) -> dict:
    mine = {
        "data": [b.state_dict() for b in batchers],
        "forward_state": _state_to_list(run.forward_state),
        "backward_state": _state_to_list(run.backward_state),
        "rng": capture_rng_state(),
    }
    return {
        "step": run.step,
        "world_size": world.size,
        "config": config_to_dict(config),
        "model": bilm.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "history": run.history,
        "ranks": distributed.gather(mine, world),
    }


def _finish(
    config: TrainConfig, bilm: BiLM, vocab: Vocabulary, tokenizer: Tokenizer, run: RunState,
    output_dir: Path, valid_scored: Optional[Perplexity] = None,
) -> dict:
    """Export the model, score valid and test, write metrics.json.

    ``valid_scored``: the whole validation file scored after the last step already (the loop's
    final validation with no ``eval_max_batches`` cap); reused instead of scoring it twice.
    """
    model_dir = save_pretrained(bilm, output_dir / "model", vocab, tokenizer)
    log.info("pretrained model written to %s", model_dir)
    if config.export_published and tokenizer.kind != "words":
        # options.json + weights.hdf5 have no place for a tokenizer: AllenNLP and bilm-tf would
        # feed the weights whitespace words, which a piece model has never read.
        log.warning("no published-format export: that format cannot carry a %s tokenizer",
                    tokenizer.kind)  # fmt: skip
    elif config.export_published:
        from elmo.published import export_published

        published = output_dir / "published"
        published.mkdir(exist_ok=True)
        export_published(bilm, published / "options.json", published / "weights.hdf5")
        log.info("published-format export written to %s", published)
    metrics = {"step": run.step, "tokenizer": tokenizer.kind, "vocab_size": len(vocab),
               "history": run.history}  # fmt: skip
    for split in ("valid", "test"):
        path = getattr(config.data, split)
        if not path:
            continue
        if split == "valid" and valid_scored is not None:
            result = valid_scored
        else:
            result = evaluate_perplexity(bilm, resolve_data_path(path), vocab,
                                         config.data.eval_batch_size, config.data.unroll_steps,
                                         tokenizer=tokenizer)  # fmt: skip
        metrics[split] = result.as_dict()
        log.info("%s perplexity: %s", split, json.dumps(result.as_dict()))
    (output_dir / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
    return metrics


def _state_to_list(state: Optional[LstmState]) -> Optional[list]:
    """[hidden, memory] on the CPU: plain data, as ``load_checkpoint(weights_only=True)`` needs
    (it refuses to unpickle classes such as the LstmState NamedTuple)."""
    return None if state is None else [t.cpu() for t in state]


def _state_from_list(state: Optional[list], device) -> Optional[LstmState]:
    return None if state is None else LstmState(*(t.to(device) for t in state))


def _device(name: str, local_rank: int) -> torch.device:
    if name == "auto":
        name = f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu"
    elif name == "cuda":
        name = f"cuda:{local_rank}"
    return torch.device(name)


def _autocast(precision: str, device: torch.device):
    use_bf16 = precision == "bf16" or (precision == "auto" and device.type == "cuda")
    if not use_bf16:
        return contextlib.nullcontext
    return lambda: torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
