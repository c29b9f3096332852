"""The hint-use diagnostic scores exactly what SFT trains on: its NLL is the trainer's own, turn for turn."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")


def test_hint_use_matches_the_trainers_nll_and_sees_the_hint(tiny_dir: str, tmp_path: Path) -> None:
    from distillgym.agents.models import load
    from distillgym.agents.policies import ExpertAgent
    from distillgym.eval.bench.hint_use import hint_use
    from distillgym.trainers import core
    from distillgym.trainers.config import load_config
    from distillgym.trainers.loop import setup

    model, tok = load(tiny_dir)
    kwargs = {"max_steps": 6}
    res = hint_use(model, tok, "Sokoban-6x6-1-v0", kwargs, 2, placement="action", show=2)
    # the same replies through the trainer: expert episodes on test tasks 0 and 1, tokenized as SFT does
    cfg, _ = load_config(None, [f"model={tiny_dir}", "env=Sokoban-6x6-1-v0", "env_kwargs.max_steps=6", "history=1",
                                "privileged_at=action", f"out_dir={tmp_path}", "threads=1", "progress=false"])
    run = setup(cfg)
    episodes = core.rollout(run, ExpertAgent(), [0, 1], 1, split="test")
    for context, view in (("plain", None), ("privileged", core.step_privileged)):
        samples = [s for ep in core.tokenize_demonstrations(run, episodes, privileged=view)
                   for s in ep.samples(chain=False)]
        logp, _ = core.logprobs(run.model, samples, run.pad_id)
        mask = core.make_batch(samples, run.device).mask
        per_turn = (-(logp * mask).sum(1) / mask.sum(1)).tolist()
        assert res[context]["turns"] == len(samples) > 0
        assert res[context]["nll"] == pytest.approx(sum(per_turn) / len(per_turn), rel=1e-4)
        assert 0.0 <= res[context]["exact"] <= res[context]["token_acc"] <= 1.0
    # the untrained model reads nothing: the hint changes its scores only a little, and it ranks tokens wrongly
    assert abs(res["plain"]["nll"] - res["privileged"]["nll"]) < 0.5 * res["plain"]["nll"]
    assert len(res["errors"]["plain"]) == 2 and all(e["wanted"] != e["ranked_first"] for e in res["errors"]["plain"])
