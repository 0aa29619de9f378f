"""A whole training run from a TrainConfig, as a sequence of steps (each step lives elsewhere).

``elmo.train`` (Hydra) builds the TrainConfig; everything below sees plain dataclasses. The
steps: units (``elmo.data.prepare``), the model (``initialize``), resume (``checkpoint``), the
loop (``loop``), then the export (``export``) and the final scores.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import json
import logging
import random
from pathlib import Path

import numpy as np
import torch
from torch import nn

from elmo.config import TrainConfig
from elmo.data.prepare import prepare_tokenizer, prepare_vocabulary
from elmo.data.stream import LMBatcher, expand_paths, iter_lines
from elmo.data.tokenizer import Tokenizer
from elmo.data.vocab import Vocabulary
from elmo.files import InputFileError, remove_leftover_temps, sha256_file
from elmo.hub import fetch_model, is_model_name, resolve_data_path
from elmo.model import BiLM
from elmo.pretrained import SENTENCEPIECE_FILE, VOCAB_FILE
from elmo.training import distributed
from elmo.training.budget import log_budget, run_budget
from elmo.training.checkpoint import CHECKPOINT_FILE, checkpoint_payload, resume, save_checkpoint
from elmo.training.evaluate import Perplexity, evaluate_perplexity
from elmo.training.export import MODEL_DIR, PUBLISHED_DIR, export_model, write_metrics
from elmo.training.initialize import build_model, inherited_units
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
    checkpoint_path = output_dir / CHECKPOINT_FILE
    if world.is_main:
        _remove_leftover_temps(output_dir)
    # The saved vocabulary and tokenizer are reused only by a run that resumes the checkpoint
    # trained with them (and checked against it); otherwise they are made again.
    reuse = config.resume and checkpoint_path.is_file()

    tokenizer, vocab = _units(config, output_dir, train_path, world, reuse)
    units = _unit_sums(output_dir, tokenizer)
    if world.is_main:  # counted on this text unless init_from may have brought the units
        log_budget(run_budget(config, vocab, world.size, bool(config.init_from)), config.trainer.schedule)
    bilm = build_model(config.model, vocab, config.init_from).to(device)
    bilm.kernel = config.trainer.kernel
    objective: nn.Module = LMObjective(bilm)
    if world.size > 1:
        objective = distributed.wrap(
            objective, device, find_unused=bilm.softmax.has_unused_parameters
        )
    optimizer = build_optimizer(objective.parameters(), config.trainer)
    scheduler = build_scheduler(optimizer, config.trainer)
    batchers = _batchers(config, train_path, vocab, tokenizer, world)
    run = RunState()
    if reuse:
        resume(checkpoint_path, bilm, optimizer, scheduler, batchers, run, world, device, units)
        log.info("resumed from %s at step %d", checkpoint_path, run.step)

    valid_path = resolve_data_path(config.data.valid) if config.data.valid else None
    scored: dict = {}  # step -> the whole validation file's Perplexity, reused at the end

    def evaluate() -> dict:
        if valid_path is None:
            return {}
        result = evaluate_perplexity(bilm, valid_path, vocab, config.data.eval_batch_size,
                                     config.data.unroll_steps, config.trainer.eval_max_batches,
                                     progress=True, tokenizer=tokenizer,
                                     desc=f"validation at step {run.step}")  # fmt: skip
        if config.trainer.eval_max_batches is None:
            scored[run.step] = result
        return {f"valid_{k}": v for k, v in result.as_dict().items() if v is not None}

    def checkpoint(state: RunState) -> None:
        payload = checkpoint_payload(config, bilm, optimizer, scheduler, batchers, state, world,
                                     units)  # fmt: skip
        if world.is_main:
            save_checkpoint(checkpoint_path, payload)

    fit(objective, optimizer, scheduler, batchers, config.trainer, run, device,
        autocast=_autocast(config.trainer.precision, device),
        evaluate=evaluate if world.is_main and valid_path else None, checkpoint=checkpoint,
        show_progress=world.is_main)  # fmt: skip
    metrics = {}
    if world.is_main:
        export_model(bilm, output_dir, vocab, tokenizer, published=config.export_published)
        metrics = _final_metrics(config, bilm, vocab, tokenizer, run, scored.get(run.step))
        write_metrics(output_dir, metrics)
    distributed.teardown(world)
    return metrics


def fetch_inputs(config: TrainConfig) -> None:
    """Make sure every file the run reads is here: the data files (found where
    ``resolve_data_path`` looks, or downloaded) and ``init_from`` given as a published model's
    name. Called before the run, so that a missing input stops it at once with a clear message.

    Raises:
        FileNotFoundError: a data file that is nowhere and belongs to no known data set.
        elmo.hub.DownloadError: a file that could not be fetched (or ``ELMO_OFFLINE=1``).
        InputFileError: a directory given as a data file, training text without a sentence, or
            validation or test text that is not UTF-8 (read whole: it is scored only at the end).
    """
    for path in (config.data.train, config.data.valid, config.data.test):
        if path:
            expand_paths(resolve_data_path(path))
    for path in (config.data.valid, config.data.test):
        if path:
            collections.deque(iter_lines(resolve_data_path(path)), maxlen=0)  # decodes every line
    train_path = resolve_data_path(config.data.train)
    if not any(line.strip() for line in iter_lines(train_path)):  # stops at the first sentence
        raise InputFileError(
            f"{train_path}: no sentences to train on (the text is empty or every line is blank)"
        )
    if config.init_from and not Path(config.init_from).exists() and is_model_name(config.init_from):
        fetch_model(config.init_from)


def _units(
    config: TrainConfig, output_dir: Path, train_path: str, world: distributed.World, reuse: bool
) -> tuple[Tokenizer, Vocabulary]:
    """The run's tokenizer and vocabulary: ``init_from``'s when it brings them (fine-tuning keeps
    its model's units), else made from the training text once and saved with the run (``reuse``:
    the saved ones are read back, for the checkpoint that was trained with them)."""
    barrier = functools.partial(distributed.barrier, world)
    inherited = inherited_units(config.init_from, config.tokenizer)
    if inherited is not None:
        tokenizer = inherited.tokenizer
    else:
        saved = output_dir / SENTENCEPIECE_FILE
        tokenizer = prepare_tokenizer(config.tokenizer, train_path, saved, world.is_main, barrier,
                                      reuse=reuse)  # fmt: skip
    vocab = prepare_vocabulary(
        config.data, train_path, output_dir / VOCAB_FILE, tokenizer, world.is_main, barrier,
        inherited=inherited.vocab if inherited is not None else None,
        inherited_from=config.init_from or "", reuse=reuse,
    )  # fmt: skip
    return tokenizer, vocab


def _unit_sums(output_dir: Path, tokenizer: Tokenizer) -> dict[str, str]:
    """The sha256 of the run's vocabulary and tokenizer files, by name (kept in checkpoints)."""
    names = [VOCAB_FILE] + ([SENTENCEPIECE_FILE] if tokenizer.kind == "sentencepiece" else [])
    return {name: sha256_file(output_dir / name) for name in names if (output_dir / name).is_file()}


def _remove_leftover_temps(output_dir: Path) -> None:
    """Delete the temporary files of atomic writes that a killed run left (checkpoint,
    vocabulary, exports, metrics)."""
    for folder in (output_dir, output_dir / MODEL_DIR, output_dir / PUBLISHED_DIR):
        remove_leftover_temps(folder)


def _batchers(
    config: TrainConfig,
    train_path: str,
    vocab: Vocabulary,
    tokenizer: Tokenizer,
    world: distributed.World,
) -> list[LMBatcher]:
    """The forward and the backward stream of this process's share of the training text."""
    return [
        LMBatcher(train_path, vocab, config.data.batch_size, config.data.unroll_steps,
                  max_chars=config.model.char_cnn.max_characters_per_token, reverse=reverse,
                  rank=world.rank, world_size=world.size, shuffle_buffer=config.data.shuffle_buffer,
                  seed=config.trainer.seed, tokenize=tokenizer.units)
        for reverse in (False, True)
    ]  # fmt: skip


def _final_metrics(
    config: TrainConfig,
    bilm: BiLM,
    vocab: Vocabulary,
    tokenizer: Tokenizer,
    run: RunState,
    valid_scored: Perplexity | None = None,
) -> dict:
    """The run's summary with the valid and test perplexities.

    ``valid_scored``: the whole validation file scored after the last step already (the loop's
    final validation with no ``eval_max_batches`` cap); reused instead of scoring it twice.
    """
    metrics = {"step": run.step, "tokenizer": tokenizer.kind, "vocab_size": len(vocab),
               "history": run.history}  # fmt: skip
    for split in ("valid", "test"):
        path = getattr(config.data, split)
        if not path:
            continue
        if split == "valid" and valid_scored is not None:
            result = valid_scored
        else:
            path = resolve_data_path(path)
            log.info("scoring the %s text %s", split, path)
            result = evaluate_perplexity(bilm, path, vocab, config.data.eval_batch_size,
                                         config.data.unroll_steps, progress=True,
                                         tokenizer=tokenizer, desc=f"scoring {split}")  # fmt: skip
        metrics[split] = result.as_dict()
        log.info("%s perplexity: %s", split, json.dumps(result.as_dict()))
    return metrics


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
