"""Turn / Episode / Sample: validation and lossless JSON round trips."""

from __future__ import annotations

import pytest

from distillgym.types import Episode, Sample, Turn


def test_episode_json_round_trip_keeps_tokens_exactly() -> None:
    ep = Episode(
        env_id="distillgym/Sokoban-v0", task_index=3, task_seed=3, split="train", task="push boxes",
        initial_observation="#P_#", privileged={"solution": ["Up"]}, agent="tiny", group_id=7,
    )
    ep.turns.append(
        Turn("#P_#", "Up", reward=-0.1, prompt_ids=[1, 2, 3], completion_ids=[9, 10], logprobs=[-0.5, -1e-9])
    )
    ep.turns.append(Turn("#_P#", "Right", reward=10.9, terminated=True))
    back = Episode.from_json(ep.to_json())
    assert back == ep
    assert back.total_reward == pytest.approx(10.8)
    assert back.num_steps == 2 and back.num_completion_tokens == 2 and back.done


def test_turn_and_sample_validate_lengths() -> None:
    with pytest.raises(ValueError, match="logprobs"):
        Turn("o", "a", completion_ids=[1, 2], logprobs=[0.0])
    with pytest.raises(ValueError, match="without completion_ids"):
        Turn("o", "a", logprobs=[0.0])
    with pytest.raises(ValueError, match="loss_mask"):
        Sample([1], [2, 3], loss_mask=[1], old_logprobs=[0.0, 0.0])
    with pytest.raises(ValueError, match="only 0 and 1"):
        Sample([1], [2], loss_mask=[2], old_logprobs=[0.0])
    s = Sample([1], [2, 3], loss_mask=[1, 0], old_logprobs=[-0.1, 0.0], reward=1.0)
    assert s.loss_mask == [1, 0]
