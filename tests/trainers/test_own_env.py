"""Bring your own environment: a plain `gymnasium.Env[str, str]` written here, not registered by distillgym, trains
with GRPO and evaluates through the CLI's entry-point form, and wrappers it is made with run in training."""

from __future__ import annotations

import json
import string
from pathlib import Path
from typing import Any

import gymnasium as gym
from typer.testing import CliRunner

from distillgym.cli import app

WORDS = ("red", "blue", "green")


class SayTheWord(gym.Env[str, str]):
    """Shown a word, say it: reward 1 and the episode ends; up to `max_steps` tries."""

    observation_space = gym.spaces.Text(200, charset=string.printable)
    action_space = gym.spaces.Text(200, charset=string.printable)

    def __init__(self, max_steps: int = 3) -> None:
        self.max_steps = max_steps

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
        super().reset(seed=seed)
        self.word, self.t = WORDS[int(self.np_random.integers(len(WORDS)))], 0
        return f"The word is {self.word}", {"task": "Say the word you are shown."}

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        self.t += 1
        win = action.strip().lower() == self.word
        return ("Right." if win else "Wrong."), float(win), win, self.t >= self.max_steps, {"success": win}


def shaped(**kwargs: Any) -> gym.Env:
    """The same env with a reward wrapper: every step earns 1 more (so no step earns less than 1)."""
    return gym.wrappers.TransformReward(SayTheWord(**kwargs), lambda r: float(r) + 1.0)


ENTRY = f"{__name__}:SayTheWord"


def train_args(tiny_dir: str, out: Path, env: str) -> list[str]:
    return ["train", "algo=grpo", f"env={env}", f"model={tiny_dir}", f"out_dir={out}", "iterations=1",
            "tasks_per_iter=2", "group_size=2", "num_envs=4", "max_tokens=6", "eval_episodes=2", "eval_every=0",
            "progress=false", "tensorboard=false", "threads=1", "grpo.drop_zero_advantage=false"]


def test_own_env_trains_with_grpo_and_evaluates_through_the_cli(tiny_dir: str, tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, train_args(tiny_dir, tmp_path / "run", ENTRY))
    assert result.exit_code == 0, result.output
    logged = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert logged[-1]["iteration"] == 1 and logged[-1]["env_steps"] > 0 and "eval/success" in logged[-1]
    assert 0.0 <= logged[-1]["reward"] <= 1.0  # the env's own rewards
    out = tmp_path / "eval"
    result = runner.invoke(app, ["eval", "-a", str(tmp_path / "run" / "model"), "-e", ENTRY, "--episodes", "3",
                                 "--max-tokens", "6", "--no-progress", "--out", str(out)])
    assert result.exit_code == 0, result.output
    saved = json.loads((out / "result.json").read_text())
    assert saved["metrics"][0]["env_id"] == ENTRY and saved["metrics"][0]["episodes"] == 3


def test_a_reward_wrapper_changes_the_rewards_the_trainer_sees(tiny_dir: str, tmp_path: Path) -> None:
    from distillgym.agents.policies import make_agent
    from distillgym.agents.rollout import collect

    agent = make_agent(tiny_dir, batch_size=4)
    plain = collect(agent, SayTheWord, 4, split="train", num_envs=2, progress=False)
    wrapped = collect(agent, shaped, 4, split="train", num_envs=2, progress=False)
    assert [t.action for e in plain for t in e.turns] == [t.action for e in wrapped for t in e.turns]
    assert [t.reward + 1 for e in plain for t in e.turns] == [t.reward for e in wrapped for t in e.turns]
    result = CliRunner().invoke(app, train_args(tiny_dir, tmp_path / "shaped", f"{__name__}:shaped"))
    assert result.exit_code == 0, result.output
    logged = [json.loads(line) for line in (tmp_path / "shaped" / "metrics.jsonl").read_text().splitlines()]
    assert logged[-1]["reward"] >= 1.0  # every episode has a step, and every step earns at least 1 through the wrapper
