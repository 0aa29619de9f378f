"""Unfreezing groups (top first), the schedule, and the two learning rates."""

from __future__ import annotations

import pytest
import torch

from elmo.tasks.finetune import (
    bilm_layer_groups,
    finetune_optimizer,
    set_unfrozen,
    unfrozen_groups,
)


def test_groups_go_top_down_and_cover_the_encoder_once(tiny_bilm):
    groups = bilm_layer_groups(tiny_bilm)
    assert len(groups) == 3  # LSTM layer 1, LSTM layer 0, char CNN
    names = {id(p): n for n, p in tiny_bilm.named_parameters()}
    assert {names[id(p)].split(".")[:3][-1] for p in groups[0]} == {"1"}  # *_lstm.layers.1.*
    assert all(names[id(p)].startswith("char_cnn.") for p in groups[2])
    grouped = [id(p) for group in groups for p in group]
    assert len(grouped) == len(set(grouped)) == len(list(tiny_bilm.parameters()))


def test_unfreezing_schedule():
    assert [unfrozen_groups(step, 0, 3) for step in (0, 5)] == [3, 3]
    assert [unfrozen_groups(step, 10, 3) for step in (0, 9, 10, 19, 20, 30, 1000)] == [
        0,
        0,
        1,
        1,
        2,
        3,
        3,
    ]
    with pytest.raises(ValueError, match=">= 0"):
        unfrozen_groups(0, -1, 3)


def test_set_unfrozen_and_two_learning_rates(tiny_bilm):
    groups = bilm_layer_groups(tiny_bilm)
    set_unfrozen(groups, 1)
    assert all(p.requires_grad for p in groups[0])
    assert not any(p.requires_grad for group in groups[1:] for p in group)
    head = torch.nn.Linear(4, 2)
    optimizer = finetune_optimizer(
        tiny_bilm, list(head.parameters()), lr=1e-3, bilm_lr=1e-5, weight_decay=0
    )
    assert [group["lr"] for group in optimizer.param_groups] == [1e-3, 1e-5]
    assert len(optimizer.param_groups[1]["params"]) == len(list(tiny_bilm.parameters()))
