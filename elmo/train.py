"""``elmo-train``: the Hydra entry point (the only module that imports Hydra).

    elmo-train model=small data=wikitext2 trainer.max_steps=1000
    elmo-train experiment=quickstart
    elmo-train --multirun model.softmax.kind=full,adaptive

The composed config is checked against the TrainConfig schema (unknown keys and wrong types are
errors), converted to dataclasses once, validated, and handed to ``run_training``.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

from elmo.config import TrainConfig

# configs/ sits next to the package (an editable install, as the README sets up).
CONFIG_DIR = str(Path(__file__).resolve().parents[1] / "configs")
ConfigStore.instance().store(name="train_schema", node=TrainConfig)
log = logging.getLogger("elmo.train")


def to_train_config(cfg: DictConfig) -> TrainConfig:
    """The composed Hydra config as a validated TrainConfig."""
    merged = OmegaConf.merge(OmegaConf.structured(TrainConfig), cfg)
    config: TrainConfig = OmegaConf.to_object(merged)
    return config.validate()


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
def _hydra_main(cfg: DictConfig) -> float:
    from elmo.training.run import run_training

    config = to_train_config(cfg)
    log.info("config:\n%s", OmegaConf.to_yaml(cfg))
    metrics = run_training(config)
    return metrics.get("valid", {}).get("ppl", float("nan"))  # the --multirun sweep objective


def main() -> None:
    try:
        _hydra_main()
    except ValueError as error:  # bad config values: one clear line, not a traceback
        print(f"elmo-train: error: {error}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
