"""Advantage estimators against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from distillgym.trainers.advantages import (
    discounted_returns,
    episode_advantages,
    gigpo_advantages,
    group_advantages,
)
from distillgym.types import Episode, Turn


def test_group_normalization_by_hand() -> None:
    a = group_advantages([1.0, 3.0, 10.0, 10.0, 5.0], ["a", "a", "b", "b", "c"], eps=0.0)
    assert a.tolist() == pytest.approx([-1.0, 1.0, 0.0, 0.0, 0.0])
    b = group_advantages([1.0, 3.0, 8.0], [0, 0, 0], normalize_std=False)
    assert b.tolist() == pytest.approx([-3.0, -1.0, 4.0])
    with pytest.raises(ValueError, match="group ids"):
        group_advantages([1.0], [0, 1])


def test_discounted_returns_by_hand() -> None:
    assert discounted_returns([1.0, 0.0, 2.0], 0.5) == pytest.approx([1.5, 1.0, 2.0])


def ep(group: int, steps: list[tuple[str, float]]) -> Episode:
    turns = [Turn(observation=o, action="Up", reward=r) for o, r in steps]
    return Episode("e", 0, 0, "test", "t", steps[0][0], turns=turns, group_id=group)


def test_gigpo_anchor_state_groups_by_hand() -> None:
    # two rollouts of one task: both start in state A; rollout 0 then reaches B, rollout 1 reaches C
    eps = [ep(0, [("A", 0.0), ("B", 1.0)]), ep(0, [("A", 0.0), ("C", 0.0)])]
    adv = gigpo_advantages(eps, gamma=0.5, step_weight=1.0, eps=0.0)
    ep_adv = episode_advantages(eps, eps=0.0)
    assert ep_adv.tolist() == pytest.approx([1.0, -1.0])
    # state A: returns 0.5 (= 0 + 0.5 * 1) and 0 -> step advantages +1 and -1; B and C are alone -> 0
    assert adv[0] == pytest.approx([1.0 + 1.0, 1.0 + 0.0])
    assert adv[1] == pytest.approx([-1.0 - 1.0, -1.0 + 0.0])
    # another task's identical observation is a different anchor group
    more = gigpo_advantages([*eps, ep(1, [("A", 5.0)])], gamma=0.5, eps=0.0)
    assert more[2] == [0.0] and np.allclose(more[0], adv[0])
