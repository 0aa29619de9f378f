"""``elmo-probe``: what the embeddings are worth (the only module of it that imports Hydra).

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
from pathlib import Path

import hydra
from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

from elmo.tasks.config import TASK_CONFIGS, ProbeConfig

CONFIG_DIR = str(Path(__file__).resolve().parents[1] / "configs" / "probe")
_store = ConfigStore.instance()
_store.store(name="probe_schema", node=ProbeConfig)
for _name, _schema in TASK_CONFIGS.items():
    _store.store(group="task", name=f"{_name}_schema", node=_schema)
log = logging.getLogger("elmo.probe")


def to_probe_config(cfg: DictConfig) -> ProbeConfig:
    """The composed Hydra config as a validated ProbeConfig (the task as its own dataclass)."""
    merged = OmegaConf.merge(OmegaConf.structured(ProbeConfig), cfg)
    config: ProbeConfig = OmegaConf.to_object(merged)
    return config.validate()


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="probe")
def _hydra_main(cfg: DictConfig) -> None:
    from elmo.tasks.run import run_probe

    try:
        config = to_probe_config(cfg)
        log.info("config:\n%s", OmegaConf.to_yaml(cfg))
        line = run_probe(config)
    except (ValueError, TypeError, FileNotFoundError) as error:
        # One clear line instead of a traceback; SystemExit passes through Hydra's error handler.
        print(f"elmo-probe: error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    sys.stdout.flush()
    print(json.dumps(line), flush=True)


def main() -> None:
    _hydra_main()


if __name__ == "__main__":
    main()
