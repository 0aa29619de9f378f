"""Every training YAML under configs/ composes with Hydra and converts to a validated TrainConfig.

Each option of each group (model/, data/, trainer/, tokenizer/) and each experiment is composed
the way ``elmo-train`` composes it and turned into dataclasses by ``elmo.train.to_train_config``;
the values a YAML file sets must arrive in the dataclass unchanged. Bad overrides (unknown keys,
wrong types, out-of-range values, a missing required value) must fail with a message naming the
offending key. (configs/probe/ belongs to ``elmo-probe`` and is tested with it.)
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from elmo.config import TrainConfig, config_to_dict
from elmo.train import CONFIG_DIR, register_schemas, to_train_config

CONFIGS = Path(CONFIG_DIR)
GROUPS = ("model", "data", "trainer", "tokenizer")
# Values some options need before they convert (data=text has no default training text).
REQUIRED_OVERRIDES = {("data", "text"): ["data.train=/corpus/shard-*.txt"]}


TRAIN_YAMLS = sorted(CONFIGS.glob("*.yaml")) + sorted(
    path for group in (*GROUPS, "experiment") for path in (CONFIGS / group).glob("*.yaml")
)


def _options(group: str) -> list[str]:
    return sorted(path.stem for path in (CONFIGS / group).glob("*.yaml"))


def _compose(overrides: list[str]):
    register_schemas()  # as elmo-train's main() does (importing elmo.train registers nothing)
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return compose(config_name="train", overrides=overrides)


def _leaves(node: dict, prefix: str = "") -> dict:
    """{"a.b.c": value} for every non-dict value of a nested dict."""
    flat = {}
    for key, value in node.items():
        if isinstance(value, dict):
            flat.update(_leaves(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _yaml_values(path: Path) -> dict:
    """The values a YAML file sets (without its defaults list), as flat dotted keys."""
    data = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    data.pop("defaults", None)
    return _leaves(data)


def test_the_groups_hold_options():
    for group in (*GROUPS, "experiment"):
        assert _options(group), f"configs/{group}/ has no YAML files"


@pytest.mark.parametrize(
    "group, option", [(group, option) for group in GROUPS for option in _options(group)]
)
def test_group_option_composes_and_converts(group: str, option: str):
    overrides = [f"{group}={option}", *REQUIRED_OVERRIDES.get((group, option), [])]
    config = to_train_config(_compose(overrides))

    assert isinstance(config, TrainConfig)
    converted = _leaves(config_to_dict(config)[group])
    expected = _yaml_values(CONFIGS / group / f"{option}.yaml")
    for key, value in expected.items():
        if value != "???":
            assert converted[key] == value, f"{group}/{option}.yaml: {key}"


@pytest.mark.parametrize("experiment", _options("experiment"))
def test_experiment_composes_and_converts(experiment: str):
    config = to_train_config(_compose([f"experiment={experiment}"]))

    assert isinstance(config, TrainConfig)
    converted = _leaves(config_to_dict(config))
    for key, value in _yaml_values(CONFIGS / "experiment" / f"{experiment}.yaml").items():
        assert converted[key] == value, f"experiment/{experiment}.yaml: {key}"


@pytest.mark.parametrize("path", TRAIN_YAMLS, ids=lambda path: str(path.relative_to(CONFIGS)))
def test_every_yaml_says_what_it_is_for(path: Path):
    comments = [
        line for line in path.read_text().splitlines()
        if line.startswith("#") and not line.startswith("# @package")
    ]  # fmt: skip
    assert comments, f"{path} needs a comment at the top saying what it is for"


def test_default_composition_converts():
    config = to_train_config(_compose([]))

    assert config.model.lstm.cell_size == 512  # model: small
    assert config.data.name == "wikitext2"
    assert config.trainer.device == "cpu"
    assert config.output_dir.startswith("outputs/wikitext2-")  # ${now:...} resolved


def test_the_default_recipe_is_the_dataclasss_and_the_papers_is_one_override_away():
    from elmo.config import TrainerConfig

    fields = ("optimizer", "lr", "schedule", "warmup_steps", "weight_decay", "adam_betas")
    default = to_train_config(_compose([])).trainer
    assert {f: getattr(default, f) for f in fields} == {f: getattr(TrainerConfig(), f) for f in fields}
    assert (default.optimizer, default.schedule) == ("adam", "cosine")
    paper = to_train_config(_compose(["optim=bilm_tf"])).trainer
    assert (paper.optimizer, paper.lr, paper.adagrad_initial_accumulator) == ("adagrad", 0.2, 1.0)
    assert (paper.schedule, paper.warmup_steps) == ("constant", 0)


def test_the_recipe_sets_how_the_softmax_biases_start():
    # The measured default starts them at the log unigram frequencies; the paper's from zero.
    assert to_train_config(_compose([])).model.softmax.init_bias == "unigram"
    assert to_train_config(_compose(["optim=bilm_tf"])).model.softmax.init_bias == "zero"
    overridden = to_train_config(_compose(["model.softmax.init_bias=zero"]))
    assert (overridden.model.softmax.init_bias, overridden.trainer.optimizer) == ("zero", "adam")


def test_the_quickstart_trains_with_the_default_recipe():
    quickstart, default = (to_train_config(_compose(o)) for o in (["experiment=quickstart"], []))
    fields = ("optimizer", "lr", "schedule", "warmup_steps", "weight_decay", "adam_betas")
    assert {f: getattr(quickstart.trainer, f) for f in fields} == {f: getattr(default.trainer, f) for f in fields}
    assert quickstart.model.softmax.init_bias == default.model.softmax.init_bias == "unigram"
    assert quickstart.trainer.max_steps == 300


def test_overrides_reach_the_dataclass():
    config = to_train_config(
        _compose(["model=tiny", "trainer.lr=0.05", "model.lstm.cell_clip=null", "data.valid=null"])
    )

    assert config.trainer.lr == 0.05
    assert config.model.lstm.cell_clip is None
    assert config.data.valid is None


def test_one_override_makes_the_small_shape_a_transformer():
    config = to_train_config(_compose(["model.contextualizer=transformer"]))  # model: small
    named = to_train_config(_compose(["model=transformer_small"]))
    unused = {"lstm": named.model.lstm}  # the LSTM sizes that model=small sets, unused
    assert dataclasses.replace(config.model, **unused) == named.model
    assert config.model.contextualizer == "transformer" and config.model.token_dim == 128
    with pytest.raises(ValueError, match="contextualizer must be lstm or transformer, got 'gru'"):
        to_train_config(_compose(["model.contextualizer=gru"]))


def test_text_data_without_a_training_file_is_a_clear_error():
    # The schema default (WikiText-2) must not stand in for the missing value.
    with pytest.raises(ValueError, match=r"missing required value\(s\) data\.train"):
        to_train_config(_compose(["data=text"]))


def test_unknown_key_is_a_clear_error():
    with pytest.raises(ConfigCompositionException) as error:
        _compose(["model.lstm.bogus=1"])
    message = f"{error.value} {error.value.__cause__}"
    assert "bogus" in message and "LSTMConfig" in message


def test_wrong_type_is_a_clear_error():
    with pytest.raises(ConfigCompositionException) as error:
        _compose(["trainer.lr=abc"])
    message = f"{error.value} {error.value.__cause__}"
    assert "trainer.lr" in message and "abc" in message


@pytest.mark.parametrize(
    "override, message",
    [
        ("trainer.optimizer=sgd", r"trainer\.optimizer must be adagrad or adam, got 'sgd'"),
        (
            "model.char_cnn.activation=gelu",
            r"char_cnn\.activation must be relu or tanh, got 'gelu'",
        ),
        ("trainer.schedule=step", r"trainer\.schedule .* got 'step'"),
        ("trainer.max_steps=0", r"trainer\.max_steps must be > 0, got 0"),
        ("data.batch_size=-1", r"data\.batch_size must be > 0, got -1"),
        ("model.dropout=1.5", r"dropout must be in \[0, 1\), got 1\.5"),
        (
            "model.softmax.init_bias=uniform",
            r"softmax\.init_bias must be zero or unigram, got 'uniform'",
        ),
        (
            "model.softmax.cutoffs=[5000,100]",
            r"softmax\.cutoffs must be increasing ids > 0, got \[5000, 100\]",
        ),
        (
            "data.vocab_max_size=5000",  # the default model's cutoffs reach 10000
            r"model\.softmax\.cutoffs must all be below data\.vocab_max_size=5000",
        ),
    ],
)
def test_bad_value_is_a_clear_error(override: str, message: str):
    cfg = _compose([override])  # composes: the value has the right type

    with pytest.raises(ValueError, match=message):
        to_train_config(cfg)


def test_importing_the_entry_points_registers_nothing():
    """Registration in Hydra's ConfigStore happens in main(), not as a side effect of importing."""
    code = (
        "import elmo.train, elmo.probe\n"
        "from hydra.core.config_store import ConfigStore\n"
        "print(sorted(ConfigStore.instance().list('/')))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert not any("schema" in name for name in result.stdout.split("'")), result.stdout
