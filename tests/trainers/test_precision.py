"""Real-model training switches: gradient checkpointing, bf16 autocast with fp32 master weights, length buckets."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from distillgym.trainers import core, grpo  # noqa: E402
from distillgym.trainers.config import load_config  # noqa: E402
from distillgym.trainers.loop import setup  # noqa: E402
from distillgym.types import Sample  # noqa: E402


def make_run(tiny_dir: str, out: Path, *extra: str) -> core.Run:
    cfg, _ = load_config(None, [f"model={tiny_dir}", f"out_dir={out}", "micro_batch_size=2", "progress=false",
                                "tensorboard=false", "threads=1", "lr=0.001", *extra])
    return setup(cfg)


def samples_of(run: core.Run) -> list[Sample]:
    """Five sequences of different lengths (so that micro-batches of 2 pad, and buckets pad less)."""
    texts = [("Push the box.", "<action>Up</action>"), ("You are playing 2048 on a 3x3 board. Merge.", "Left"),
             ("Go.", "<action>Down</action> then right"), ("A long observation: #__P #X_O ##### score 128 x", "Up"),
             ("Short", "<action>Right</action>")]
    out = []
    for prompt, reply in texts:
        p = run.tokenizer(prompt, add_special_tokens=False)["input_ids"]
        c = run.tokenizer(reply, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            old = core.logprobs(run.model, [Sample(p, c, [1] * len(c), [0.0] * len(c))], run.pad_id)[0][0]
        out.append(Sample(p, c, [1] * len(c), old[: len(c)].tolist()))
    return out


def step(run: core.Run, samples: list[Sample]) -> dict[str, float]:
    adv = [[(-1.0) ** i] * len(s.completion_ids) for i, s in enumerate(samples)]
    return grpo.policy_gradient_step(run, samples, adv, grpo.Config())


def test_gradient_checkpointing_gives_the_same_update(tiny_dir: str, tmp_path: Path) -> None:
    plain = make_run(tiny_dir, tmp_path / "a")
    ckpt = make_run(tiny_dir, tmp_path / "b", "gradient_checkpointing=true")
    assert core.checkpointing(ckpt.model) and not core.checkpointing(plain.model)
    samples = samples_of(plain)
    m_plain, m_ckpt = step(plain, samples), step(ckpt, samples)
    assert m_ckpt["loss"] == pytest.approx(m_plain["loss"], rel=1e-5)
    for (name, a), b in zip(plain.model.named_parameters(), ckpt.model.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)
    # generation (eval mode) does not recompute and is unaffected
    prompt = samples[0].prompt_ids
    from distillgym.agents.generation import SamplingParams

    greedy = SamplingParams(temperature=0.0, max_tokens=4)
    assert plain.backend.generate([prompt], greedy)[0].ids == ckpt.backend.generate([prompt], greedy)[0].ids


def test_bf16_autocast_keeps_fp32_master_weights(tiny_dir: str, tmp_path: Path) -> None:
    fp32 = make_run(tiny_dir, tmp_path / "a")
    bf16 = make_run(tiny_dir, tmp_path / "b", "dtype=bf16")
    samples = samples_of(fp32)
    seen: list[torch.dtype] = []
    hook = bf16.model.lm_head.register_forward_hook(lambda mod, inp, out: seen.append(out.dtype))
    m32, m16 = step(fp32, samples), step(bf16, samples)
    hook.remove()
    assert seen and all(d == torch.bfloat16 for d in seen)  # the training forward ran in bf16
    assert all(p.dtype == torch.float32 for p in bf16.model.parameters())  # master weights stay fp32
    assert all(s["exp_avg"].dtype == torch.float32 for s in bf16.optimizer.state.values())
    # the same step to bf16 precision (8 bits of mantissa), not bit for bit
    assert m16["loss"] == pytest.approx(m32["loss"], rel=0.05, abs=0.02)
    assert m16["loss"] != m32["loss"]
    changed_32 = [p.detach().clone() for p in fp32.model.parameters()]
    for a, b in zip(changed_32, bf16.model.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0.05, atol=2e-3)


def test_length_buckets_pad_less_and_change_nothing(tiny_dir: str, tmp_path: Path) -> None:
    plain = make_run(tiny_dir, tmp_path / "a", "bucket_by_length=false")
    buckets = make_run(tiny_dir, tmp_path / "b")
    samples = samples_of(plain)
    ordered = [samples[i] for i in core.length_order(samples)]
    assert core.padded_tokens(ordered, 2) < core.padded_tokens(samples, 2)
    m_plain, m_buckets = step(plain, samples), step(buckets, samples)
    assert m_buckets["loss"] == pytest.approx(m_plain["loss"], rel=1e-5)
    # AdamW's first step divides by |gradient|: a rounding-sized gradient (another summation order) moves a weight by
    # a small fraction of the step; a misaligned column would move weights by about the step size (lr 1e-3)
    for a, b in zip(plain.model.parameters(), buckets.model.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-4)


def test_unknown_dtype_is_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="dtype"):
        load_config(None, [f"out_dir={tmp_path}", "dtype=fp8"])
