"""The README's main command, shortened: both phases run, the table has its three rows, the curve is drawn, and a
second call reuses the finished phases instead of training again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("torch")
from typer.testing import CliRunner

from distillgym.cli import app


def test_quickstart_runs_both_phases_and_prints_the_table(tmp_path: Path) -> None:
    args = ["quickstart", "--out", str(tmp_path), "--sft-iters", "2", "--rl-iters", "1", "--episodes", "4",
            "--no-progress"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    rows = [ln for ln in result.output.splitlines() if ln.startswith("| ") and "Sokoban-6x6-1-v0" in ln]
    assert [r.split(" | ")[0] for r in rows] == ["| tiny (untrained)", "| after SFT", "| after SFT + GRPO"]
    assert (tmp_path / "learning_curve.png").stat().st_size > 0
    assert (tmp_path / "results.md").read_text().strip() in result.output
    for phase, iterations in (("sft", 2), ("grpo", 1)):
        metrics = [json.loads(ln) for ln in (tmp_path / phase / "metrics.jsonl").read_text().splitlines()]
        assert metrics[-1]["iteration"] == iterations and "eval/success" in metrics[-1]
    # the GRPO phase starts from the SFT model
    grpo_cfg = json.loads((tmp_path / "grpo" / "config.json").read_text())["config"]
    assert grpo_cfg["model"] == str(tmp_path / "sft" / "model") and grpo_cfg["algo"] == "grpo"
    before = (tmp_path / "grpo" / "metrics.jsonl").read_text()
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0, again.output
    assert (tmp_path / "grpo" / "metrics.jsonl").read_text() == before  # finished phases are not retrained
