"""The GEM speed benchmark runs both sides on the same games and reports their ratios (needs gem-llm: the bench
extra)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("gem")

from distillgym.eval.bench import gem_speed


def test_benchmark_times_both_sides_and_writes_ratios(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "gem.json"
    png = tmp_path / "gem.png"
    gem_speed.main(["--resets", "5", "--steps", "40", "--rounds", "1", "--core", "-1", "--out", str(out),
                    "--plot", str(png)])
    assert png.stat().st_size > 1000
    res = json.loads(out.read_text())["results"]
    assert set(res) == set(gem_speed.PAIRS)
    for r in res.values():
        for side in ("ours", "gem"):
            assert r[side]["reset_s"] > 0 and r[side]["step_s"] > 0
        assert r["step_ratio"] == pytest.approx(r["gem"]["step_s"] / r["ours"]["step_s"])
    assert "step ratio" in capsys.readouterr().out
