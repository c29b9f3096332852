"""Rollouts: every token recorded, the loss mask exactly on model tokens, determinism, groups, agents."""

from __future__ import annotations

from typing import Any

import pytest

from distillgym.agents.policies import ExpertAgent, RandomAgent
from distillgym.agents.rollout import collect
from distillgym.types import Episode
from tests.conftest import SOKOBAN_IDS

torch = pytest.importorskip("torch")

from distillgym.agents.generation import SamplingParams, TransformersBackend  # noqa: E402
from distillgym.agents.policies import ModelAgent  # noqa: E402

SHORT = {"max_steps": 4}


def model_agent(tiny_model: tuple, history: int | None = None, **kw: Any) -> ModelAgent:
    model, tokenizer = tiny_model
    return ModelAgent(TransformersBackend(model, tokenizer), sampling=SamplingParams(max_tokens=10), history=history,
                      **kw)


@pytest.fixture(scope="module")
def episodes(tiny_model: tuple) -> list[Episode]:
    return collect(model_agent(tiny_model), "Sokoban-6x6-1-v0", 3, group_size=2, num_envs=4, seed=5,
                   env_kwargs=SHORT, progress=False)


def test_loss_mask_is_zero_exactly_on_environment_tokens(episodes: list[Episode], tiny_model: tuple) -> None:
    tokenizer = tiny_model[1]
    for ep in episodes:
        (sample,) = ep.samples()  # whole history shown: the turns chain into one sequence
        assert sample.prompt_ids == ep.turns[0].prompt_ids
        seq, mask = sample.completion_ids, sample.loss_mask
        # split the completion into runs of model tokens (mask 1) and environment tokens (mask 0)
        runs: list[tuple[int, list[int]]] = []
        for tok, m in zip(seq, mask, strict=True):
            if runs and runs[-1][0] == m:
                runs[-1][1].append(tok)
            else:
                runs.append((m, [tok]))
        model_runs = [ids for m, ids in runs if m == 1]
        env_runs = [ids for m, ids in runs if m == 0]
        assert model_runs == [t.completion_ids for t in ep.turns]
        assert len(env_runs) == len(ep.turns) - 1
        for k, env_ids in enumerate(env_runs, start=1):
            # what sits between two replies is exactly the chat template around the env's next observation
            closed = ep.turns[k - 1].completion_ids[-1] == tokenizer.eos_token_id
            head = "\n" if closed else "<|im_end|>\n"
            expected = f"{head}<|im_start|>user\n{ep.turns[k].observation}<|im_end|>\n<|im_start|>assistant\n"
            assert tokenizer.decode(env_ids) == expected
        logp = [lp for lp, m in zip(sample.old_logprobs, mask, strict=True) if m]
        assert logp == [x for t in ep.turns for x in t.logprobs]
        assert sample.turn_index == [-1 if m == 0 else k for k, m in _turn_of(ep, mask)]
        per_turn = ep.samples(chain=False)
        assert [s.completion_ids for s in per_turn] == [t.completion_ids for t in ep.turns]
        assert all(s.loss_mask == [1] * len(s.completion_ids) for s in per_turn)


def _turn_of(ep: Episode, mask: list[int]) -> list[tuple[int, int]]:
    """(turn, mask) per token, counting model runs as turns."""
    out, turn, prev = [], -1, 0
    for m in mask:
        if m == 1 and prev == 0:
            turn += 1
        out.append((turn, m))
        prev = m
    return out


def test_sampled_logprobs_match_the_scorer(episodes: list[Episode], tiny_model: tuple) -> None:
    backend = TransformersBackend(*tiny_model)
    turns = [t for ep in episodes for t in ep.turns][:12]
    scores = backend.score([t.prompt_ids for t in turns], [t.completion_ids for t in turns])
    for t, s in zip(turns, scores, strict=True):
        assert max(abs(a - b) for a, b in zip(t.logprobs, s.logprobs, strict=True)) < 1e-4


def test_same_seed_same_episodes(episodes: list[Episode], tiny_model: tuple) -> None:
    again = collect(model_agent(tiny_model), "Sokoban-6x6-1-v0", 3, group_size=2, num_envs=4, seed=5,
                    env_kwargs=SHORT, progress=False)
    assert [e.to_json() for e in again] == [e.to_json() for e in episodes]
    other = collect(model_agent(tiny_model), "Sokoban-6x6-1-v0", 1, group_size=2, num_envs=4, seed=6,
                    env_kwargs=SHORT, progress=False)
    assert [e.to_json() for e in other] != [e.to_json() for e in episodes[:2]]
    assert [Episode.from_json(e.to_json()) for e in episodes] == episodes


def test_groups_share_their_task(episodes: list[Episode]) -> None:
    assert [e.group_id for e in episodes] == [0, 0, 1, 1, 2, 2]
    for a, b in zip(episodes[::2], episodes[1::2], strict=True):
        assert a.task_seed == b.task_seed and a.initial_observation == b.initial_observation
        assert a.split == "test" and a.task_seed >= 2**31
    assert len({e.task_seed for e in episodes}) == 3


def test_windowed_history_gives_one_sample_per_turn_after_the_window(tiny_model: tuple) -> None:
    (ep,) = collect(model_agent(tiny_model, history=1), "Sokoban-6x6-1-v0", 1, seed=1, env_kwargs=SHORT,
                    progress=False)
    samples = ep.samples()
    # turns 0 and 1 chain (window 1 still shows everything); from turn 2 on, the window slides
    assert len(samples) == ep.num_steps - 1
    assert all(sum(s.loss_mask) == len(t.completion_ids) for s, t in zip(samples[1:], ep.turns[2:], strict=True))


def test_teacher_agent_sees_privileged_info_and_records_it(tiny_model: tuple) -> None:
    (ep,) = collect(model_agent(tiny_model, privileged=True), "Sokoban-6x6-2-v0", 1, env_kwargs=SHORT,
                    progress=False)
    tokenizer = tiny_model[1]
    plan = ep.turns[0].info["privileged"]["expert_plan"]
    assert "The expert's plan from here: " + ", ".join(plan) in tokenizer.decode(ep.turns[0].prompt_ids)


@pytest.mark.parametrize("env_id", SOKOBAN_IDS[:3])
def test_expert_agent_solves_sokoban(env_id: str) -> None:
    eps = collect(ExpertAgent(), env_id, 6, num_envs=3, progress=False)
    assert all(e.success for e in eps)
    assert all(t.prompt_ids is None for e in eps for t in e.turns)  # no model tokens: no training samples
    assert eps[0].samples() == []


def test_random_agent_plays_legal_moves_deterministically() -> None:
    a = collect(RandomAgent(), "2048-3x3-v0", 2, seed=3, progress=False)
    b = collect(RandomAgent(), "2048-3x3-v0", 2, seed=3, progress=False)
    assert [e.to_json() for e in a] == [e.to_json() for e in b]
    assert all(t.action in ("Up", "Down", "Left", "Right") and not t.invalid_action for e in a for t in e.turns)
    assert all(e.done for e in a)


def test_bad_rollout_arguments() -> None:
    with pytest.raises(ValueError, match="group_size"):
        collect(RandomAgent(), "2048-v0", 1, group_size=0)
    with pytest.raises(ValueError, match="num_envs"):
        collect(RandomAgent(), "2048-v0", 1, num_envs=0)


def test_random_agent_does_not_depend_on_batching() -> None:
    a = collect(RandomAgent(), "Sokoban-v0", 3, seed=4, num_envs=1, progress=False)
    b = collect(RandomAgent(), "Sokoban-v0", 3, seed=4, num_envs=3, progress=False)
    assert [e.to_json() for e in a] == [e.to_json() for e in b]


def test_model_agent_does_not_depend_on_batching(tiny_model: tuple) -> None:
    """A sampling model agent plays each episode the same with 1 or 4 environments at once: every reply is seeded
    by (rollout seed, episode, step), not by its row in the batch."""
    a = collect(model_agent(tiny_model), "Sokoban-6x6-1-v0", 3, group_size=2, num_envs=1, seed=9, env_kwargs=SHORT,
                progress=False)
    b = collect(model_agent(tiny_model), "Sokoban-6x6-1-v0", 3, group_size=2, num_envs=4, seed=9, env_kwargs=SHORT,
                progress=False)
    assert [[t.completion_ids for t in e.turns] for e in a] == [[t.completion_ids for t in e.turns] for e in b]
    assert len({tuple(t.completion_ids or []) for e in a for t in e.turns}) > 1  # it does sample
