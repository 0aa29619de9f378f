"""``elmo-train``: the Hydra entry point of training (with ``elmo.probe`` and ``elmo.hydra_app``,
the only modules that import Hydra).

    elmo-train model=small data=wikitext2 trainer.max_steps=1000
    elmo-train experiment=quickstart
    elmo-train --multirun model.softmax.kind=full,adaptive
    elmo-train init_from=elmo-small data=text data.train=domain.txt   # a published model by name
    elmo-train --config-dir ./my_configs experiment=mine              # your own YAML files too

The composed config is checked against the TrainConfig schema (unknown keys and wrong types are
errors), converted to dataclasses once, validated, and handed to ``run_training``.
"""

from __future__ import annotations

import logging

import hydra
from omegaconf import MISSING, DictConfig, OmegaConf

from elmo.config import TrainConfig
from elmo.files import InputFileError, ModelFileError
from elmo.hub import DownloadError
from elmo.hydra_app import CONFIGS, exit_on_error, store_schemas, undo_on_failure

CONFIG_DIR = str(CONFIGS)
log = logging.getLogger("elmo.train")


def _schema() -> DictConfig:
    """TrainConfig as the schema Hydra composes onto, with the training text required.

    A YAML ``???`` cannot undo a schema default (OmegaConf's merge keeps the old value), so
    without this ``data=text`` lacking ``data.train=...`` would silently train on WikiText-2.
    Every data/ option names its training text.
    """
    schema = OmegaConf.structured(TrainConfig)
    schema.data.train = MISSING
    return schema


def register_schemas() -> None:
    """Make ``train_schema`` (configs/train.yaml's first default) known to Hydra."""
    store_schemas({"train_schema": _schema()})


def to_train_config(cfg: DictConfig) -> TrainConfig:
    """The composed Hydra config as a validated TrainConfig.

    Raises:
        ValueError: a required value is missing (``???``) or a value is out of range.
    """
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:  # checked first: merging onto the dataclass defaults would fill them in
        raise ValueError(
            f"missing required value(s) {', '.join(missing)}; give them as overrides, "
            f"e.g. data.train=/path/to/train.txt"
        )
    merged = OmegaConf.merge(OmegaConf.structured(TrainConfig), cfg)
    config: TrainConfig = OmegaConf.to_object(merged)
    return config.validate()


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
def _hydra_main(cfg: DictConfig) -> float:
    from elmo.training.checkpoint import CHECKPOINT_FILE
    from elmo.training.run import fetch_inputs, run_training

    output_dir = _job_output_dir(str(OmegaConf.select(cfg, "output_dir", default="")))
    # A run that fails before its first checkpoint leaves nothing (train.log, vocab.txt, ...).
    with undo_on_failure(valuable=[CHECKPOINT_FILE], folders=[output_dir] if output_dir else []):
        # A bad config value, or an input that is missing or cannot be fetched: one clear line,
        # not a traceback, before any work.
        with exit_on_error("elmo-train", ValueError, OSError, DownloadError):
            config = to_train_config(cfg)
            fetch_inputs(config)
        config.output_dir = output_dir
        log.info("config:\n%s", OmegaConf.to_yaml(cfg))
        # A bad input file, or a damaged or stale file of the run's state: one line naming it.
        with exit_on_error("elmo-train", ModelFileError, InputFileError):
            metrics = run_training(config)
    return metrics.get("valid", {}).get("ppl", float("nan"))  # the --multirun sweep objective


def _job_output_dir(output_dir: str) -> str:
    """Where this job writes: ``output_dir``, or in a ``--multirun`` sweep the job's own folder.

    Every job of a sweep composes the same ``output_dir``; sharing it, the second job would
    resume from the first one's checkpoint. So each job trains in its sweep subfolder
    (``multirun/<time>/<job number>``); rerun with the same ``hydra.sweep.dir`` to resume a sweep.
    """
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    hydra_config = HydraConfig.get()
    if hydra_config.mode != RunMode.MULTIRUN:
        return output_dir
    job_dir = hydra_config.runtime.output_dir
    log.info("sweep job %s writes to %s", hydra_config.job.num, job_dir)
    return job_dir


def main() -> None:
    register_schemas()
    _hydra_main()


if __name__ == "__main__":
    main()
