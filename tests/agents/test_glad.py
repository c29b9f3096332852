"""GLAD: chains that name the move the search chose, episodes that win, and SFT that imitates the chains."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import gymnasium as gym
import pytest

import distillgym  # noqa: F401
from distillgym.agents.generation import Completion, SamplingParams
from distillgym.agents.glad import GladConfig, chain_text, glad_episodes, llm_chain
from distillgym.envs.core.protocol import parse_directional
from distillgym.envs.core.search import mcts
from distillgym.envs.sokoban.env import SokobanEnv
from distillgym.eval.export import read_jsonl, write_jsonl
from tests.conftest import ONE_PUSH, sokoban_at


def test_the_chain_names_the_move_the_tree_chose_and_its_alternatives() -> None:
    result = mcts(sokoban_at(ONE_PUSH), simulations=40, seed=0)
    text = chain_text(result, alternatives=2)
    assert result.best_action == "Right"
    assert text.startswith("thought: Right: This solves the task.")
    assert text.endswith("So Right.\n<action>Right</action>")
    assert parse_directional(text) == "Right"
    runners = [c.action for c in result.ranked()[1:3]]
    assert all(f"{a}: " in text for a in runners)  # the alternatives, each with its consequence
    assert "bumped" in text or "Reward" in text
    with pytest.raises(ValueError, match="visited no action"):
        chain_text(mcts(_terminal_env(), simulations=2))


def _terminal_env() -> SokobanEnv:
    env = sokoban_at(ONE_PUSH)
    env.step("Right")
    return env


def test_glad_episodes_win_and_every_chain_ends_in_the_move_played(tmp_path: Path) -> None:
    episodes = glad_episodes("Sokoban-6x6-1-v0", [0, 1, 2], cfg=GladConfig(simulations=60), progress=False)
    assert [e.success for e in episodes] == [True, True, True]
    for ep in episodes:
        assert ep.agent == "glad" and ep.split == "train"
        for turn in ep.turns:
            assert parse_directional(turn.info["reply"]) == turn.action
            assert turn.info["search"]["visits"][turn.action] == max(turn.info["search"]["visits"].values())
        replay = gym.make("distillgym/Sokoban-6x6-1-v0")
        replay.reset(options={"task_index": ep.task_index})
        for turn in ep.turns:
            *_, info = replay.step(turn.action)
        assert info["success"]
    path = write_jsonl(episodes, tmp_path / "glad.jsonl")
    assert read_jsonl(path) == episodes
    pytest.importorskip("datasets")
    from distillgym.eval.export import from_dataset, to_dataset

    assert from_dataset(to_dataset(episodes)) == episodes


class ScriptedBackend:
    """A backend that writes a fixed text (the acceptance rule of `llm_chain` on a reply a real writer could give)."""

    def __init__(self, tokenizer: object, text: str) -> None:
        self.tokenizer, self.text = tokenizer, text

    def generate(self, prompts: Sequence[Sequence[int]], params: SamplingParams) -> list[Completion]:
        return [Completion([1], [0.0], self.text, "stop") for _ in prompts]


def test_a_model_written_chain_is_kept_only_when_it_ends_in_the_chosen_move(tiny_model: tuple) -> None:
    from distillgym.agents.generation import TransformersBackend

    model, tokenizer = tiny_model
    result = mcts(sokoban_at(ONE_PUSH), simulations=40, seed=0)
    task, obs = "push the box", "#@$.#"
    good = ScriptedBackend(tokenizer, "thought: pushing right puts the box on the target.\n<action>Right")
    assert llm_chain(good, result, task, obs, parse=parse_directional) == (
        "thought: pushing right puts the box on the target.\n<action>Right</action>")
    wrong = ScriptedBackend(tokenizer, "Left looks good. <action>Left</action>")
    assert llm_chain(wrong, result, task, obs, parse=parse_directional) is None
    untrained = TransformersBackend(model, tokenizer, batch_size=1)  # a real model that cannot write it yet
    assert llm_chain(untrained, result, task, obs, parse=parse_directional, max_tokens=8) is None
    episodes = glad_episodes("Sokoban-6x6-1-v0", [0], cfg=GladConfig(simulations=30), backend=untrained,
                             progress=False)
    assert episodes[0].meta["chains_by_model"] == 0  # every chain fell back to the template
    assert all(t.info["reply"].startswith("thought: ") for t in episodes[0].turns)
