"""The learning-rate schedule (a pure function of the step) and the optimizers built from config."""

from __future__ import annotations

import math

import pytest
import torch

from elmo.config import TrainerConfig
from elmo.training.optim import _can_fuse, build_optimizer, build_scheduler, lr_factor


def _factors(config: TrainerConfig) -> list[float]:
    return [lr_factor(step, config) for step in range(config.max_steps)]


def test_constant_schedule_is_one_at_every_step():
    assert _factors(TrainerConfig(schedule="constant", warmup_steps=0, max_steps=5)) == [1.0] * 5


def test_warmup_rises_linearly_then_holds():
    config = TrainerConfig(schedule="constant", warmup_steps=4, max_steps=8)

    assert _factors(config) == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0, 1.0, 1.0]


def test_linear_decays_to_zero_at_max_steps():
    config = TrainerConfig(schedule="linear", warmup_steps=0, max_steps=4)

    assert _factors(config) == [1.0, 0.75, 0.5, 0.25]
    assert lr_factor(4, config) == 0.0
    assert lr_factor(100, config) == 0.0  # past the end: stays at zero, never negative


def test_linear_decay_starts_after_warmup():
    config = TrainerConfig(schedule="linear", warmup_steps=2, max_steps=6)

    assert _factors(config) == [0.5, 1.0, 1.0, 0.75, 0.5, 0.25]


def test_cosine_follows_half_a_cosine_to_zero():
    config = TrainerConfig(schedule="cosine", warmup_steps=0, max_steps=4)

    expected = [0.5 * (1 + math.cos(math.pi * step / 4)) for step in range(4)]
    assert _factors(config) == pytest.approx(expected, abs=1e-12)
    assert _factors(config)[2] == pytest.approx(0.5)
    assert lr_factor(4, config) == pytest.approx(0.0, abs=1e-12)


def test_cosine_after_warmup():
    config = TrainerConfig(schedule="cosine", warmup_steps=2, max_steps=6)

    factors = _factors(config)
    assert factors[:3] == [0.5, 1.0, 1.0]
    assert factors[3:] == pytest.approx([0.5 * (1 + math.cos(math.pi * k / 4)) for k in (1, 2, 3)])


def test_warmup_as_long_as_the_run_does_not_divide_by_zero():
    config = TrainerConfig(schedule="linear", warmup_steps=3, max_steps=3)

    assert _factors(config) == pytest.approx([1 / 3, 2 / 3, 1.0])


def test_unknown_schedule_is_an_error():
    with pytest.raises(ValueError, match="unknown schedule 'step'"):
        lr_factor(0, TrainerConfig(schedule="step"))


def _parameter() -> torch.nn.Parameter:
    return torch.nn.Parameter(torch.ones(3))


def test_scheduler_applies_the_factor_before_each_step():
    config = TrainerConfig(lr=0.2, schedule="linear", warmup_steps=2, max_steps=6)
    optimizer = build_optimizer([_parameter()], config)
    scheduler = build_scheduler(optimizer, config)

    used = []
    for _ in range(config.max_steps):
        used.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()

    assert used == pytest.approx([0.2 * f for f in _factors(config)])


def test_scheduler_state_dict_resumes_the_schedule():
    config = TrainerConfig(lr=1.0, schedule="cosine", warmup_steps=0, max_steps=10)
    optimizer = build_optimizer([_parameter()], config)
    scheduler = build_scheduler(optimizer, config)
    for _ in range(4):
        optimizer.step()
        scheduler.step()

    resumed_optimizer = build_optimizer([_parameter()], config)
    resumed = build_scheduler(resumed_optimizer, config)
    resumed_optimizer.load_state_dict(optimizer.state_dict())
    resumed.load_state_dict(scheduler.state_dict())

    assert resumed.last_epoch == 4
    assert resumed_optimizer.param_groups[0]["lr"] == pytest.approx(lr_factor(4, config))


def test_adagrad_as_the_original():
    config = TrainerConfig(optimizer="adagrad", lr=0.2, adagrad_initial_accumulator=1.0)
    optimizer = build_optimizer([_parameter()], config)

    assert isinstance(optimizer, torch.optim.Adagrad)
    assert optimizer.defaults["lr"] == 0.2
    assert optimizer.defaults["initial_accumulator_value"] == 1.0


def test_adam_is_adamw_with_the_configured_betas():
    config = TrainerConfig(optimizer="adam", lr=1e-3, adam_betas=[0.8, 0.99], weight_decay=0.01)
    optimizer = build_optimizer([_parameter()], config)

    assert isinstance(optimizer, torch.optim.AdamW)
    assert optimizer.defaults["betas"] == (0.8, 0.99)
    assert optimizer.defaults["weight_decay"] == 0.01


def test_frozen_parameters_are_left_out():
    frozen = _parameter()
    frozen.requires_grad_(False)
    optimizer = build_optimizer([_parameter(), frozen], TrainerConfig())

    assert len(optimizer.param_groups[0]["params"]) == 1


def test_unknown_optimizer_is_an_error():
    with pytest.raises(ValueError, match="unknown optimizer 'sgd'"):
        build_optimizer([_parameter()], TrainerConfig(optimizer="sgd"))


@pytest.mark.parametrize("name", ["adagrad", "adam"])
def test_cpu_parameters_get_the_fused_step_equal_to_the_default_to_rounding(name):
    torch.manual_seed(0)
    config = TrainerConfig(optimizer=name, lr=0.1, weight_decay=0.01)
    start = torch.randn(64, 32)
    fused, default = torch.nn.Parameter(start.clone()), torch.nn.Parameter(start.clone())
    fused_optimizer = build_optimizer([fused], config)
    default_optimizer = build_optimizer([default], config)
    for group in default_optimizer.param_groups:
        group["fused"] = None  # torch's default step

    assert fused_optimizer.defaults["fused"] is True
    for _ in range(3):
        gradient = torch.randn(64, 32)
        for parameter, optimizer in ((fused, fused_optimizer), (default, default_optimizer)):
            parameter.grad = gradient.clone()
            optimizer.step()
    assert not torch.equal(fused.detach(), start)
    torch.testing.assert_close(fused.detach(), default.detach(), rtol=1e-6, atol=1e-6)


def test_parameters_torch_cannot_fuse_get_its_default():
    integer = torch.nn.Parameter(torch.zeros(3, dtype=torch.int64), requires_grad=False)
    assert _can_fuse([_parameter()]) is True
    assert _can_fuse([integer]) is None and _can_fuse([]) is None
