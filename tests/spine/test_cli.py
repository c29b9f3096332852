"""The command line: `distillgym envs`, `play` (a person's terminal session), `expert`."""

from __future__ import annotations

import subprocess
import sys

import gymnasium as gym
from typer.testing import CliRunner

import distillgym
from distillgym.cli import app

runner = CliRunner()


def test_envs_lists_every_registered_id_one_line_each() -> None:
    result = runner.invoke(app, ["envs"])
    assert result.exit_code == 0
    lines = result.output.strip().splitlines()
    assert [line.split()[0] for line in lines] == [e.id for e in distillgym.ENVS]


def test_console_script_is_installed() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "distillgym.cli", "envs"], capture_output=True, text=True, check=True
    ).stdout
    assert "distillgym/Sokoban-v0" in out


def test_play_shows_the_agent_text_and_hint_gives_the_expert_move() -> None:
    env = gym.make("distillgym/Sokoban-v0")
    obs, info = env.reset(seed=3)
    solution = info["privileged"]["solution"]
    moves = "\n".join(["hint", "actions", "", *solution]) + "\n"
    result = runner.invoke(app, ["play", "Sokoban-v0", "--seed", "3"], input=moves)
    assert result.exit_code == 0, result.output
    assert info["task"] in result.output and obs in result.output
    assert f"hint: {solution[0]}" in result.output
    assert "SUCCESS" in result.output


def test_play_rejects_an_unknown_env_and_bad_options() -> None:
    result = runner.invoke(app, ["play", "Chess-v0"])
    assert result.exit_code != 0 and "unknown environment" in result.output
    result = runner.invoke(app, ["play", "Sokoban-v0", "-o", "symbols"])
    assert result.exit_code != 0 and "KEY=VALUE" in result.output


def test_play_2048_with_options_and_junk_input() -> None:
    result = runner.invoke(
        app, ["play", "distillgym/2048-3x3-v0", "--seed", "1", "-o", "target_tile=16"],
        input="hint\n🙂 junk\nleft\nquit\n",
    )
    assert result.exit_code == 0, result.output
    assert "hint: " in result.output and "Invalid action" in result.output


def test_expert_command_reports_success() -> None:
    result = runner.invoke(app, ["expert", "Sokoban-6x6-2-v0", "--episodes", "5", "--no-show"])
    assert result.exit_code == 0, result.output
    assert "| distillgym/Sokoban-6x6-2-v0 | 5 | 5/5 (100%)" in result.output


def test_train_help_names_every_algorithm_and_help_config_documents_their_fields() -> None:
    from distillgym.trainers import ALGORITHMS

    result = runner.invoke(app, ["train", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for name in ALGORITHMS:
        assert f"{name}: " in result.output, name
    result = runner.invoke(app, ["train", "--help-config"])
    assert result.exit_code == 0
    for name in ALGORITHMS:
        assert f"{name}.* fields:" in result.output, name
    # every field, shared or an algorithm's, carries its documentation, and a choice field lists its choices
    fields = [line for line in result.output.splitlines() if line.startswith("  ")]
    assert len(fields) > 60 and all(len(line.split("    # ", 1)[-1].strip()) > 8 for line in fields), [
        line for line in fields if len(line.split("    # ", 1)[-1].strip()) <= 8]
    assert any(line.startswith("  variant = 'jsd'") and "[one of: jsd, rl]" in line for line in fields)


def test_glad_command_writes_chains_and_rejects_bad_options(tmp_path: object) -> None:
    from pathlib import Path

    from distillgym.eval.export import read_jsonl

    out = Path(str(tmp_path)) / "glad.jsonl"
    result = runner.invoke(app, ["glad", "Sokoban-6x6-1-v0", "--out", str(out), "--tasks", "2", "--simulations", "30"])
    assert result.exit_code == 0, result.output
    assert "2 episodes (2 solved" in result.output
    episodes = read_jsonl(out)
    assert [e.task_index for e in episodes] == [0, 1] and all(e.agent == "glad" for e in episodes)
    assert all(t.info["reply"].endswith(f"<action>{t.action}</action>") for e in episodes for t in e.turns)
    bad = runner.invoke(app, ["glad", "Sokoban-6x6-1-v0", "--out", str(out), "--rollout-policy", "greedy"])
    assert bad.exit_code != 0 and "random or expert" in bad.output
    unknown = runner.invoke(app, ["glad", "Sokobam-v0", "--out", str(out)])
    assert unknown.exit_code != 0 and "unknown environment" in unknown.output
