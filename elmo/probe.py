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
from elmo.hydra_app import CONFIGS, exit_on_error, store_schemas, undo_on_failure
from elmo.tasks.config import TASK_CONFIGS, ProbeConfig

CONFIG_DIR = str(CONFIGS / "probe")
log = logging.getLogger("elmo.probe")


def register_schemas() -> None:
    """Make ``probe_schema`` and each task's ``<task>_schema`` known to Hydra: the YAML defaults
    lists under configs/probe/ name them.

    The task schemas sit at the root (``task/<task>.yaml`` reads ``/<task>_schema@_here_``), not
    in the group ``task``: there Hydra would offer them as tasks, in ``--help`` and in the list of
    options after a wrong ``task=``.
    """
    store_schemas({"probe_schema": ProbeConfig})
    store_schemas({f"{name}_schema": schema for name, schema in TASK_CONFIGS.items()})


def to_probe_config(cfg: DictConfig) -> ProbeConfig:
    """The composed Hydra config as a validated ProbeConfig (the task as its own dataclass).

    Raises:
        ValueError: no task chosen (``task=`` is required), or a value out of range.
    """
    if OmegaConf.select(cfg, "task") is None:
        raise ValueError(f"choose a task: task=<{'|'.join(TASK_CONFIGS)}>")
    merged = OmegaConf.merge(OmegaConf.structured(ProbeConfig), cfg)
    config: ProbeConfig = OmegaConf.to_object(merged)
    return config.validate()


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="probe")
def _hydra_main(cfg: DictConfig) -> None:
    from elmo.tasks.report import RESULTS_FILE
    from elmo.tasks.run import run_probe

    # A probe that fails leaves nothing (probe.log, .hydra/) unless it wrote its results.
    with undo_on_failure(valuable=[RESULTS_FILE]), exit_on_error(
        "elmo-probe", ValueError, TypeError, OSError, DownloadError
    ):
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
