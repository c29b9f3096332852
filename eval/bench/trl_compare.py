"""One training step, distillgym vs TRL 1.16.0: seconds per step of GRPO and of on-policy distillation (GKD), as a
ratio, on the same tiny model, batch and lengths (CPU, fp32, `--threads` torch threads).

    bash eval/bench/trl_venv.sh                # builds .trl-venv: TRL beside an editable distillgym (~1 min)
    .trl-venv/bin/python -m distillgym.eval.bench.trl_compare [--steps 10] [--warmup 2] [--threads 2]
        [--only grpo gkd distill] [--models runs/bench/trl_models] [--out runs/bench/trl_compare]

Both sides run in this one process, on fresh copies of the same model directory: the `tiny` preset (seed 0;
Qwen2-style, hidden 128, 2 layers, its locally trained tokenizer; the result records its size) as the student, and for
distillation a teacher of the same shape with other weights (seed 1) saved with the student's tokenizer.

- grpo: 4 prompts x 4 generations = 16 completions of 64 new tokens from prompts of 100 tokens, temperature 1,
  reward = the completion's vowel count, group-normalized advantages, the PPO-clipped surrogate (clip 0.2, dapo
  aggregation, no KL term), one optimizer step over the 16 sequences (one micro-batch, no accumulation).
  TRL: `GRPOTrainer` with per_device_train_batch_size=16 (completions, not prompts), num_generations=4, beta=0
  (no reference model). distillgym: `TransformersBackend.generate` (what the trainers' rollouts call), then
  `trainers.grpo.policy_gradient_step` on a `core.Run` made by `trainers.loop.setup` (as `distillgym train`).
- gkd: 16 distinct prompts; the student samples 16 x 64 tokens, the teacher scores them, full-vocabulary
  generalized JSD (beta 0.5) at every completion position, one optimizer step.
  TRL: `trl.experimental.gkd.GKDTrainer` (lmbda=1: always on-policy). distillgym: `TransformersBackend.generate`,
  then `trainers.opd.distill_step` (shared by OPD and OPSD), the teacher loaded by `trainers.opd.setup`.
- distill: the same distillation step against TRL's newer `DistillationTrainer` (on-policy only, chunked JSD),
  which TRL itself recommends over GKDTrainer for lmbda=1, temperature=1.

Matched work. Neither side scores old logprobs in a separate pass: TRL uses the detached current logprobs when
generation and update are aligned (num_iterations=1), distillgym the sampling logprobs from generation. Every
completion is 64 tokens on both sides: TRL forbids EOS before 64 tokens (`min_new_tokens=64`); distillgym's backend
ignores EOS (`backend.stop_ids = set()`): the same forward passes. TRL tokenizes the prompt texts itself;
distillgym gets the same texts tokenized the same way. Checks in the output: mean completion length of each side,
and each side's mean loss (the JSD losses agree to ~0.1%; GRPO's on-policy surrogate is ~0 on both).
Not matched, by design (each side as its users run it): TRL's optimizer is its default fused AdamW, distillgym's
the `torch.optim.AdamW` that `loop.setup` makes; learning rate 1e-5, constant, grad-norm clip 1.0 on both.

Timing. A TRL step is the Trainer's on_step_begin -> on_step_end (a TrainerCallback): generation, rewards,
forward, backward, clipping, optimizer and scheduler. A distillgym step is generation through the optimizer step.
The sides are interleaved: right after each TRL step (outside its timed span) the callback runs one distillgym step,
so step k of both ran back to back under the same load. Reported per comparison: the median s/step of each side over
`--steps` steps after `--warmup` warm-up steps, the ratio of medians TRL / distillgym (> 1: distillgym is faster),
the median of the per-pair ratios, and the generation time (TRL: `_generate` for GRPO and DistillationTrainer,
prompt tokenization + `model.generate` + decoding; `generate_on_policy_outputs` for GKD; distillgym:
`backend.generate`, decoding included); "update" is the rest of the step. TRL's defaults bf16=True and
gradient_checkpointing=True are switched off (on this CPU they make it 3.6-16x slower). On a machine whose cores are
busy with other work, 2 torch threads can wait on each other and run many times slower than 1: read the load
warning, and compare `--threads 1` when in doubt.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from distillgym.eval.bench.common import machine, markdown_table, write_json

COMPARISONS = ("grpo", "gkd", "distill")
GROUP = 4  # GRPO generations per prompt
BATCH = 16  # completions per step
LR = 1e-5


@dataclass
class Timings:
    """Per-step wall times of one side of a comparison."""

    step: list[float] = field(default_factory=list)
    generate: list[float] = field(default_factory=list)
    lengths: list[float] = field(default_factory=list)  # mean completion length of each step
    loss: list[float] = field(default_factory=list)  # the step's loss (a check that both sides optimize alike)

    def summary(self, warmup: int) -> dict[str, Any]:
        step, gen = self.step[warmup:], self.generate[warmup:]
        med = statistics.median(step)
        gen_med = statistics.median(gen) if gen else None
        return {
            "median_s": med,
            "min_s": min(step),
            "max_s": max(step),
            "generate_median_s": gen_med,
            "update_median_s": statistics.median([s - g for s, g in zip(step, gen, strict=True)]) if gen else None,
            "mean_completion_len": statistics.fmean(self.lengths) if self.lengths else None,
            "mean_loss": statistics.fmean(self.loss) if self.loss else None,
            "steps_s": step,
        }


# ----------------------------------------------------------------------------------------------------- set-up


def build_models(root: Path) -> tuple[Path, Path]:
    """The student (the tiny preset, seed 0) and a teacher of the same shape with other weights (seed 1) saved with
    the student's tokenizer: build_tiny with another seed trains another tokenizer, with another vocabulary."""
    import torch
    from transformers import AutoModelForCausalLM

    from distillgym.agents.models import TinyConfig, build_tiny, save

    student, teacher = root / "student", root / "teacher"
    if not (student / "config.json").is_file():
        build_tiny(TinyConfig(seed=0), out_dir=student)
    if not (teacher / "config.json").is_file():
        model, tokenizer = load_model(student)
        torch.manual_seed(1)
        save(AutoModelForCausalLM.from_config(model.config), tokenizer, teacher)
    return student, teacher


def load_model(path: Path) -> tuple[Any, Any]:
    from distillgym.agents.models import load

    model, tokenizer = load(path, offline=True)
    return model.float(), tokenizer


def make_prompts(tokenizer: Any, n: int, length: int) -> list[str]:
    """`n` distinct prompt texts of about `length` tokens (windows of environment text, decoded)."""
    from distillgym.eval.bench.backends import make_prompts as token_prompts

    return [tokenizer.decode(ids) for ids in token_prompts(tokenizer, n, length)]


def reward(text: str) -> float:
    """A cheap reward with spread: the number of vowels."""
    return float(sum(c in "aeiouAEIOU" for c in text))


def trl_reward(completions: list[str], **_: Any) -> list[float]:
    return [reward(c) for c in completions]


def common_trl_args(out: Path, steps: int, seed: int) -> dict[str, Any]:
    """TrainingArguments shared by every TRL trainer here: CPU, fp32, no checkpointing, logging or saving."""
    return {
        "output_dir": str(out),
        "max_steps": steps,
        "per_device_train_batch_size": BATCH,
        "gradient_accumulation_steps": 1,
        "learning_rate": LR,
        "lr_scheduler_type": "constant",
        "max_grad_norm": 1.0,
        "bf16": False,
        "fp16": False,
        "gradient_checkpointing": False,
        "use_cpu": True,
        "report_to": "none",
        "logging_strategy": "no",
        "save_strategy": "no",
        "disable_tqdm": True,
        "dataloader_num_workers": 0,
        "dataloader_pin_memory": False,
        "seed": seed,
    }


def make_step_clock(after: Callable[[], None]) -> tuple[Any, Timings]:
    """A TrainerCallback timing each optimizer step (on_step_begin -> on_step_end), then calling `after()` (outside
    the timed span: the interleaved distillgym step)."""
    from transformers import TrainerCallback

    timings = Timings()

    class StepClock(TrainerCallback):
        start = 0.0

        def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.start = time.perf_counter()

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            timings.step.append(time.perf_counter() - self.start)
            after()

    return StepClock(), timings


def time_calls(obj: Any, name: str, timings: Timings, length: Callable[[Any], float]) -> None:
    """Replace the method `name` of `obj` (on the instance) by a version that records its wall time into
    timings.generate and the mean completion length of its result into timings.lengths."""
    fn = getattr(obj, name)

    def timed(*args: Any, **kwargs: Any) -> Any:
        t = time.perf_counter()
        out = fn(*args, **kwargs)
        timings.generate.append(time.perf_counter() - t)
        timings.lengths.append(length(out))
        return out

    setattr(obj, name, timed)


# ------------------------------------------------------------------------------------------------ distillgym


def dg_run(model_dir: Path, out: Path, threads: int, seed: int) -> Any:
    """A training Run as `distillgym train` sets it up (trainers.loop.setup), on the student model; its backend
    ignores EOS so that every completion has max_tokens tokens."""
    from distillgym.trainers.config import TrainConfig
    from distillgym.trainers.loop import setup

    cfg = TrainConfig(model=str(model_dir), out_dir=str(out), seed=seed, lr=LR, max_grad_norm=1.0,
                      micro_batch_size=BATCH, num_envs=BATCH, threads=threads, device="cpu", tensorboard=False,
                      progress=False)
    run = setup(cfg)
    run.backend.stop_ids = set()  # ignore EOS: every completion has max_tokens tokens (TRL side: min_new_tokens)
    return run


def dg_generate(run: Any, prompts: list[list[int]], new_tokens: int) -> list[Any]:
    from distillgym.agents.generation import SamplingParams

    return run.backend.generate(prompts, SamplingParams(temperature=1.0, max_tokens=new_tokens))


def dg_grpo_step(run: Any, prompts: list[list[int]], new_tokens: int, timings: Timings) -> None:
    """One GRPO step: G completions of each prompt, vowel-count reward, group advantages, the clipped update."""
    from distillgym.trainers import grpo
    from distillgym.trainers.advantages import group_advantages
    from distillgym.types import Sample

    t0 = time.perf_counter()
    ids = [p for p in prompts for _ in range(GROUP)]
    completions = dg_generate(run, ids, new_tokens)
    t1 = time.perf_counter()
    groups = [i // GROUP for i in range(len(ids))]
    rewards = [reward(c.text) for c in completions]
    adv = group_advantages(rewards, groups)
    samples = [Sample(p, c.ids, [1] * len(c.ids), c.logprobs, r, float(a), g)
               for p, c, r, a, g in zip(ids, completions, rewards, adv, groups, strict=True)]
    token_adv = [[float(a)] * len(c.ids) for a, c in zip(adv, completions, strict=True)]
    cfg = grpo.Config(clip_low=0.2, clip_high=0.2, kl_coef=0.0, loss_agg="dapo")
    metrics = grpo.policy_gradient_step(run, samples, token_adv, cfg)
    timings.step.append(time.perf_counter() - t0)
    timings.generate.append(t1 - t0)
    timings.lengths.append(statistics.fmean(len(c.ids) for c in completions))
    timings.loss.append(metrics["loss"])


def dg_distill_step(run: Any, prompts: list[list[int]], new_tokens: int, cfg: Any, timings: Timings) -> None:
    """One on-policy distillation step: the student samples, the teacher scores, full-vocabulary JSD, one update."""
    from distillgym.trainers import opd
    from distillgym.types import Sample

    t0 = time.perf_counter()
    completions = dg_generate(run, prompts, new_tokens)
    t1 = time.perf_counter()
    samples = [Sample(p, c.ids, [1] * len(c.ids), c.logprobs) for p, c in zip(prompts, completions, strict=True)]
    # the teacher sees the same prompts (no privileged info)
    metrics = opd.distill_step(run, samples, prompts, cfg, run.state)
    timings.step.append(time.perf_counter() - t0)
    timings.generate.append(t1 - t0)
    timings.lengths.append(statistics.fmean(len(c.ids) for c in completions))
    timings.loss.append(metrics["loss"])


def dg_distill_run(student: Path, teacher: Path, out: Path, threads: int, seed: int) -> tuple[Any, Any]:
    from distillgym.trainers import opd

    run = dg_run(student, out, threads, seed)
    cfg = opd.Config(teacher="model", teacher_path=str(teacher), loss="jsd", jsd_beta=0.5, lmbda=1.0)
    run.state = opd.setup(run, cfg)
    return run, cfg


def interleaved_clock(prompt_ids: list[list[int]], per_step: int,
                      step: Callable[[list[list[int]], Timings], None]) -> tuple[Any, Timings, Timings]:
    """(TRL callback, TRL timings, our timings): after TRL's step k, `step` runs ours on the prompts TRL used at
    step k (`per_step` distinct prompts, taken in order)."""
    ours = Timings()

    def ours_step() -> None:
        k = len(ours.step)
        step([prompt_ids[(k * per_step + i) % len(prompt_ids)] for i in range(per_step)], ours)

    clock, theirs = make_step_clock(ours_step)
    return clock, theirs, ours


# ------------------------------------------------------------------------------------------------ comparisons


def compare_grpo(student: Path, texts: list[str], args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    total = args.warmup + args.steps
    run = dg_run(student, work / "dg-grpo", args.threads, args.seed)
    prompt_ids = [run.tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    clock, theirs, ours = interleaved_clock(prompt_ids, BATCH // GROUP,  # distinct prompts per step
                                            lambda batch, t: dg_grpo_step(run, batch, args.new_tokens, t))
    model, tokenizer = load_model(student)
    tokenizer.padding_side = "left"
    config = GRPOConfig(**common_trl_args(work / "trl-grpo", total, args.seed), num_generations=GROUP,
                        max_completion_length=args.new_tokens, temperature=1.0, top_p=1.0, top_k=0, beta=0.0,
                        epsilon=0.2, loss_type="dapo", num_iterations=1, shuffle_dataset=False,
                        generation_kwargs={"min_new_tokens": args.new_tokens}, log_completions=False)
    trainer = GRPOTrainer(model=model, reward_funcs=trl_reward, args=config, processing_class=tokenizer,
                          train_dataset=Dataset.from_dict({"prompt": texts}), callbacks=[clock])
    time_calls(trainer, "_generate", theirs, lambda out: statistics.fmean(len(c) for c in out[1]))
    theirs.loss.append(trainer.train().training_loss)
    return result("GRPO step", "trl.GRPOTrainer", trainer, theirs, ours, args)


def compare_gkd(student: Path, teacher: Path, texts: list[str], args: argparse.Namespace, work: Path) -> dict:
    import torch
    from datasets import Dataset
    from trl.experimental.gkd import GKDConfig, GKDTrainer

    from distillgym.agents.generation import pad_left

    total = args.warmup + args.steps
    run, cfg = dg_distill_run(student, teacher, work / "dg-gkd", args.threads, args.seed)
    prompt_ids = [run.tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    clock, theirs, ours = interleaved_clock(prompt_ids, BATCH,
                                            lambda batch, t: dg_distill_step(run, batch, args.new_tokens, cfg, t))
    model, tokenizer = load_model(student)
    t_model, _ = load_model(teacher)
    pad = tokenizer.pad_token_id
    # A GKD dataset row is a prompt and a reference completion (replaced by the student's own when on-policy): the
    # reference completions' token count is what TRL divides the loss by, so give each the 64 tokens generated.
    reference = prompt_ids[1:] + prompt_ids[:1]

    def collate(rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        prompts, prompt_mask = pad_left([r["prompt_ids"] for r in rows], pad)
        full = [r["prompt_ids"] + r["reference_ids"] for r in rows]
        input_ids, attention_mask = pad_left(full, pad)
        labels = input_ids.clone()
        for i, r in enumerate(rows):
            labels[i, : input_ids.shape[1] - len(r["reference_ids"])] = -100
        return {"prompts": prompts, "prompt_attention_mask": prompt_mask, "input_ids": input_ids,
                "attention_mask": attention_mask, "labels": labels}

    data = Dataset.from_dict({"prompt_ids": prompt_ids, "reference_ids": [r[: args.new_tokens] for r in reference]})
    config = GKDConfig(**common_trl_args(work / "trl-gkd", total, args.seed), lmbda=1.0, beta=0.5, temperature=1.0,
                       max_new_tokens=args.new_tokens, seq_kd=False)
    trainer = GKDTrainer(model=model, teacher_model=t_model, args=config, processing_class=tokenizer,
                         train_dataset=data, data_collator=collate, callbacks=[clock])
    # GKDConfig has no generation_kwargs: forbid EOS before the last token as GRPO's min_new_tokens does
    trainer.generation_config.min_new_tokens = args.new_tokens
    trainer.generation_kwargs["min_new_tokens"] = args.new_tokens
    time_calls(trainer, "generate_on_policy_outputs", theirs,
               lambda out: float((out[2] != -100).sum(-1).float().mean()))
    theirs.loss.append(trainer.train().training_loss)
    return result("on-policy distillation step (GKD)", "trl.experimental.gkd.GKDTrainer", trainer, theirs, ours, args)


def compare_distill(student: Path, teacher: Path, texts: list[str], args: argparse.Namespace, work: Path) -> dict:
    from datasets import Dataset
    from trl import DistillationConfig, DistillationTrainer

    total = args.warmup + args.steps
    run, cfg = dg_distill_run(student, teacher, work / "dg-distill", args.threads, args.seed)
    prompt_ids = [run.tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    clock, theirs, ours = interleaved_clock(prompt_ids, BATCH,
                                            lambda batch, t: dg_distill_step(run, batch, args.new_tokens, cfg, t))
    model, tokenizer = load_model(student)
    tokenizer.padding_side = "left"
    t_model, _ = load_model(teacher)
    config = DistillationConfig(**common_trl_args(work / "trl-distill", total, args.seed),
                                max_completion_length=args.new_tokens, temperature=1.0, top_p=1.0, top_k=0, beta=0.5,
                                shuffle_dataset=False, generation_kwargs={"min_new_tokens": args.new_tokens},
                                log_completions=False)
    trainer = DistillationTrainer(model=model, teacher_model=t_model, args=config, processing_class=tokenizer,
                                  train_dataset=Dataset.from_dict({"prompt": texts}), callbacks=[clock])
    time_calls(trainer, "_generate", theirs, lambda out: statistics.fmean(len(c) for c in out[1]))
    theirs.loss.append(trainer.train().training_loss)
    return result("on-policy distillation step (TRL DistillationTrainer)", "trl.DistillationTrainer", trainer,
                  theirs, ours, args)


def result(what: str, trl_name: str, trainer: Any, theirs: Timings, ours: Timings, args: argparse.Namespace) -> dict:
    if len(theirs.step) != len(ours.step):
        raise RuntimeError(f"{what}: {len(theirs.step)} TRL steps but {len(ours.step)} distillgym steps")
    t, o = theirs.summary(args.warmup), ours.summary(args.warmup)
    optimizer = getattr(trainer.optimizer, "optimizer", trainer.optimizer)  # inside accelerate's wrapper
    pairs = [a / b for a, b in zip(t["steps_s"], o["steps_s"], strict=True)]
    return {
        "what": what,
        "trl": {"trainer": trl_name, "optimizer": f"{trainer.args.optim} ({type(optimizer).__name__})", **t},
        "distillgym": o,
        "ratio": t["median_s"] / o["median_s"],
        "ratio_paired_median": statistics.median(pairs),
    }


def table_row(r: dict[str, Any]) -> list[str]:
    def s(x: float | None) -> str:
        return "" if x is None else f"{x:.2f}"

    t, o = r["trl"], r["distillgym"]
    return [r["what"], t["trainer"], s(t["median_s"]), s(t["generate_median_s"]), s(o["median_s"]),
            s(o["generate_median_s"]), s(r["ratio"]), s(r["ratio_paired_median"]),
            f"{t['mean_completion_len']:.1f} / {o['mean_completion_len']:.1f}"]


# ------------------------------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--steps", type=int, default=10, help="timed steps per side (median over them)")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps per side before them")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--only", nargs="+", choices=COMPARISONS, default=list(COMPARISONS))
    p.add_argument("--prompt-tokens", type=int, default=100)
    p.add_argument("--new-tokens", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--models",
        type=Path,
        default=None,
        help="where the student/teacher model dirs are (built there when missing; default: a temp dir)",
    )
    p.add_argument("--out", type=Path, default=Path("runs/bench/trl_compare"), help="result.json goes here")
    args = p.parse_args(argv)

    os.environ["HF_HUB_OFFLINE"] = "1"  # everything loads from local model dirs
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        import trl
    except ImportError as e:
        raise SystemExit("TRL is not installed here: run `bash eval/bench/trl_venv.sh`, then "
                         "`.trl-venv/bin/python -m distillgym.eval.bench.trl_compare`") from e
    import torch
    import transformers

    transformers.utils.logging.disable_progress_bar()
    warnings.filterwarnings("ignore", message=".*gradient_checkpointing.*", category=FutureWarning)
    torch.set_num_threads(args.threads)
    load = os.getloadavg()[0]
    if load > 0.5:
        print(f"warning: load average {load:.1f} before the run: other work on the machine skews the figures")
    work = Path(tempfile.mkdtemp(prefix="bench-trl-"))
    t = time.perf_counter()
    student, teacher = build_models(args.models or work / "models")
    _, tokenizer = load_model(student)
    texts = make_prompts(tokenizer, 4 * BATCH, args.prompt_tokens)
    lengths = [len(tokenizer(x, add_special_tokens=False)["input_ids"]) for x in texts]
    print(f"models ready in {time.perf_counter() - t:.0f} s (vocab {len(tokenizer)}); prompts of "
          f"{min(lengths)}-{max(lengths)} tokens", flush=True)

    results: dict[str, Any] = {}
    for name in args.only:
        t = time.perf_counter()
        if name == "grpo":
            results[name] = compare_grpo(student, texts, args, work)
        elif name == "gkd":
            results[name] = compare_gkd(student, teacher, texts, args, work)
        else:
            results[name] = compare_distill(student, teacher, texts, args, work)
        if torch.get_num_threads() != args.threads:
            raise RuntimeError(f"torch threads changed to {torch.get_num_threads()} during {name}")
        r = results[name]
        print(f"{name}: TRL {r['trl']['median_s']:.2f} s/step, distillgym {r['distillgym']['median_s']:.2f} s/step, "
              f"ratio {r['ratio']:.2f} ({time.perf_counter() - t:.0f} s)", flush=True)

    table = markdown_table(
        ["step", "TRL trainer", "TRL s/step", "TRL gen s", "distillgym s/step", "distillgym gen s",
         "ratio (TRL / ours)", "paired ratio", "completion len TRL / ours"],
        [table_row(r) for r in results.values()],
    )
    print(table)
    settings = {"steps": args.steps, "warmup": args.warmup, "threads": args.threads, "batch": BATCH,
                "grpo_group": GROUP, "prompt_tokens": [min(lengths), max(lengths)], "new_tokens": args.new_tokens,
                "vocab": len(tokenizer), "lr": LR, "dtype": "float32", "interleaved": True}
    report = {
        "machine": machine(),
        "load_average_before": load,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "trl": trl.__version__},
        "settings": settings,
        "results": results,
        "table": table,
    }
    print(f"wrote {write_json(args.out / 'result.json', report)}")


if __name__ == "__main__":
    main()
