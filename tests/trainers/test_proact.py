"""ProAct's two stages through the trainers: SFT on GLAD chains; MC-GRPO's rewards and fallback advantage; MC-PPO's
blended TD(0) advantages."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from distillgym.agents.glad import GladConfig, glad_episodes  # noqa: E402
from distillgym.eval.export import write_jsonl  # noqa: E402
from distillgym.trainers import core  # noqa: E402
from distillgym.trainers.config import load_config  # noqa: E402
from distillgym.trainers.loop import read_metrics, setup, train  # noqa: E402


def test_sft_imitates_the_chains(tiny_dir: str, tmp_path: Path) -> None:
    episodes = glad_episodes("Sokoban-6x6-1-v0", [0, 1], cfg=GladConfig(simulations=30), progress=False)
    data = write_jsonl(episodes, tmp_path / "glad.jsonl")
    args = [f"model={tiny_dir}", f"out_dir={tmp_path / 'run'}", "algo=sft", f"sft.data={data}", "iterations=2",
            "tasks_per_iter=2", "max_tokens=8", "eval_episodes=2", "eval_every=0", "env_kwargs.max_steps=3",
            "progress=false", "tensorboard=false", "threads=1", "sft.teacher_prompt_copies=false"]
    cfg, acfg = load_config(None, args)
    run = setup(cfg)
    taught = core.tokenize_demonstrations(run, episodes)
    for turn in taught[0].turns:
        ids = turn.completion_ids
        assert ids is not None and ids[-1] == run.tokenizer.eos_token_id
        assert run.tokenizer.decode(ids[:-1]) == turn.info["reply"]  # the chain, not just the move
    train(cfg, acfg)
    metrics = read_metrics(tmp_path / "run")
    assert metrics[1]["samples"] == sum(e.num_steps for e in episodes) and metrics[-1]["loss"] > 0
