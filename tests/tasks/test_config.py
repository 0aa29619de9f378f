"""ProbeConfig validation: bad values are named before any work starts."""

from __future__ import annotations

import pytest

from elmo.tasks.config import (
    PosTaskConfig,
    ProbeConfig,
    ProbeTrainingConfig,
    Sst2TaskConfig,
    WordSimTaskConfig,
)


def test_defaults_validate():
    for task in (PosTaskConfig(), Sst2TaskConfig(), WordSimTaskConfig()):
        assert ProbeConfig(task=task, model="m").validate().task is task


@pytest.mark.parametrize(
    "task, message",
    [
        ("pos", "task must be one of"),
        (PosTaskConfig(probe=ProbeTrainingConfig(epochs=0)), "task.probe.epochs must be > 0"),
        (Sst2TaskConfig(mode="thaw"), "task.mode must be one of"),
        (Sst2TaskConfig(encoder="cnn"), "task.encoder must be one of"),
        (Sst2TaskConfig(unfreeze_every=-1), "task.unfreeze_every must be >= 0"),
        (Sst2TaskConfig(bilm_lr=0.0), "task.bilm_lr must be > 0"),
        (WordSimTaskConfig(datasets=[]), "at least one benchmark"),
        (WordSimTaskConfig(datasets=["WS-353", "XYZ"]), r"task.datasets \['XYZ'\] are not in"),
    ],
)
def test_bad_values_are_named(task, message):
    with pytest.raises(ValueError, match=message):
        ProbeConfig(task=task, model="m").validate()


def test_the_kernel_is_checked_by_name():
    config = ProbeConfig(task=PosTaskConfig(), model="m", kernel="bf16").validate()
    assert config.kernel == "bf16"
    with pytest.raises(ValueError, match=r"kernel must be one of \['exact', 'fused', 'bf16'\], got 'fast'"):
        ProbeConfig(task=PosTaskConfig(), model="m", kernel="fast").validate()
    with pytest.raises(ValueError, match=r"kernel=bf16 is an inference kernel, and task.mode=finetune"):
        ProbeConfig(task=Sst2TaskConfig(mode="finetune"), model="m", kernel="bf16").validate()
    assert ProbeConfig(task=Sst2TaskConfig(), model="m", kernel="bf16").validate().kernel == "bf16"
