"""``elmo-probe``: what the embeddings are worth (its Hydra entry point; see ``elmo.hydra_app``).

    elmo-probe task=pos model=outputs/wikitext2_cpu_1h/model
    elmo-probe task=wic model=DIR baselines.published=/path/to/published_dir
    elmo-probe task=sst2 model=DIR task.mode=finetune task.unfreeze_every=50

Configs live in ``configs/probe/`` (``probe.yaml`` and the group ``task/``), apart from the
training configs: there ``model`` is a config group, which would turn ``model=DIR`` into a
group choice. The composed config is checked against ProbeConfig and the task's schema, converted
to dataclasses once, and handed to ``run_probe``. Progress bars go to stderr; the last line on
stdout is the JSON summary of the metrics.
"""

from __future__ import annotations

import json
import logging
import sys

import hydra
from omegaconf import DictConfig, OmegaConf

from elmo.hub import DownloadError
from elmo.hydra_app import CONFIGS, exit_on_error, store_schemas
from elmo.tasks.config import TASK_CONFIGS, ProbeConfig

CONFIG_DIR = str(CONFIGS / "probe")
log = logging.getLogger("elmo.probe")


def register_schemas() -> None:
    """Make ``probe_schema`` and each task's ``<task>_schema`` (in the group ``task``) known to
    Hydra: the YAML defaults lists under configs/probe/ name them."""
    store_schemas({"probe_schema": ProbeConfig})
    store_schemas({f"{name}_schema": schema for name, schema in TASK_CONFIGS.items()}, group="task")


def to_probe_config(cfg: DictConfig) -> ProbeConfig:
    """The composed Hydra config as a validated ProbeConfig (the task as its own dataclass)."""
    merged = OmegaConf.merge(OmegaConf.structured(ProbeConfig), cfg)
    config: ProbeConfig = OmegaConf.to_object(merged)
    return config.validate()


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="probe")
def _hydra_main(cfg: DictConfig) -> None:
    from elmo.tasks.run import run_probe

    with exit_on_error("elmo-probe", ValueError, TypeError, FileNotFoundError, DownloadError):
        config = to_probe_config(cfg)
        log.info("config:\n%s", OmegaConf.to_yaml(cfg))
        line = run_probe(config)
    sys.stdout.flush()
    print(json.dumps(line), flush=True)


def main() -> None:
    register_schemas()
    _hydra_main()


if __name__ == "__main__":
    main()
