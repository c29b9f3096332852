"""Learning benchmark: held-out success versus training environment steps and generated tokens for SFT, GRPO, OPD,
OPSD (both variants), pi-Distill (alpha 0, 0.5, 1) and Skill-SD (with its ablations), with the `tiny` preset on a
CPU, several seeds each, on one task (`--task`):

- sokoban: Sokoban 6x6 with one box (10-step episodes, 8-token replies; the quickstart's setting), 64 test rooms;
- sokoban2: Sokoban 6x6 with two boxes (20 steps; the Skill-SD paper's setting), 256 test rooms;
- household: Household-v0 (12 steps, 16-token replies), 256 test tasks;
- apps: Apps-v0, level-1 tasks of the train templates, held out by world (the test split's seeds: a 2-layer model
  cannot write code for templates it never saw), code cells of up to 224 tokens, 3 cells per episode; every run
  after the warm start at lr 1e-4 (see TASKS).

Protocol (every step is a resumable `distillgym train` run under --out; a killed benchmark continues):

once, shared by every seed:
1. base: the tiny preset (seed 0; its tokenizer trained on the task's text);
2. warm start: SFT on expert episodes from the base, each demonstration also imitated under the teacher's prompt
   (`sft.teacher_prompt_copies`, so that a self-teacher reads its privileged context); every algorithm below starts
   from this same checkpoint, as papers start from an instruct model;
3. teacher (for OPD only): the warm start trained longer with SFT, a stronger model with the same vocabulary;
then per seed s (training tasks and sampling):
4. each algorithm trains from the warm start for the same number of iterations of 32 episodes (SFT: 32 expert
   demonstrations), evaluating greedy success on the same held-out tasks every few iterations (self-teachers also
   with their context: `eval/teacher_gap`).

    python -m distillgym.eval.bench.learning [--task sokoban|sokoban2|household|apps] [--seeds 0 1 2]
        [--algos sft grpo opd opsd pi_distill | all] [--iterations 20] [--out runs/bench/learning[_TASK]] [--plot PNG]

Writes result.json, results.md (success at start and end, mean +- std over seeds, env steps and generated tokens)
and the plot (mean over seeds against env steps and against generated tokens, shaded +- one standard deviation).
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from distillgym.eval.bench.common import finish_figure, machine, markdown_table, write_json
from distillgym.trainers.quickstart import ENV, EPISODES


@dataclass(frozen=True)
class Task:
    """What every run of one benchmark task shares, and how its base model and warm start are made."""

    label: str  # for the plot's title
    shared: list[str]  # overrides of every run (env, episode shape, evaluation)
    families: tuple[str, ...] | None  # TinyConfig.families: the text the tokenizer is trained on
    warm_iters: int  # default SFT iterations of the warm start
    teacher_iters: int  # default further SFT iterations for OPD's teacher
    warm: list[str] = field(default_factory=list)  # extra overrides of the warm start (and OPD's teacher)
    tuned: list[str] = field(default_factory=list)  # overrides of every algorithm's run after the warm start


TASKS: dict[str, Task] = {
    # 10-step episodes, 8-token replies, one past turn in the prompt (as the quickstart)
    "sokoban": Task(ENV, [*EPISODES, "eval_episodes=64"], ("sokoban", "2048"), 600, 300),
    # issue 16's settings: the Skill-SD paper's two-box rooms (20 moves) and Household-v0, 256 held-out tasks each
    # (one task is 0.4 points); the warm start imitates every demonstration under the teacher's prompt too (the SFT
    # default), so that the self-teacher reads the expert's next action
    "sokoban2": Task("Sokoban-6x6-2-v0",
                     ["env=Sokoban-6x6-2-v0", "env_kwargs.max_steps=20", "max_tokens=8", "history=1", "num_envs=32",
                      "eval_episodes=256"], ("sokoban", "2048"), 150, 100),
    "household": Task("Household-v0",
                      ["env=Household-v0", "env_kwargs.max_steps=12", "max_tokens=16", "history=1", "num_envs=32",
                       "eval_episodes=256"], ("household",), 120, 60),
    # one code cell solves a level-1 task (46-201 tokens with the apps tokenizer); 3 cells, so that a traceback can
    # be acted on; held-out = the test split's worlds of the same (train) templates
    "apps": Task("Apps-v0, level 1, unseen worlds",
                 ["env=Apps-v0", "env_kwargs.difficulty=1", "env_kwargs.templates=train", "env_kwargs.max_steps=3",
                  "max_tokens=224", "history=1", "num_envs=16", "eval_episodes=64"],
                 ("apps",), 400, 150, ["sft.teacher_prompt_copies=true", "eval_every=100"],
                 # GRPO at lr 3e-4 took the warm start from 48% to 31% in 20 iterations (rollouts at temperature 0.7
                 # to 22% in 10); at 1e-4 it held 53% after 10 (seed 0, 64 pool tasks): the tiny model's long code
                 # replies are mostly wrong when sampled, and larger steps away from them unlearn the format
                 ["lr=1e-4"]),
}
# Per algorithm: its trainer's overrides (each on-policy iteration = 8 tasks x 4 rollouts = 32 episodes).
ON_POLICY = ["tasks_per_iter=8", "group_size=4", "lr=3e-4"]
ALGOS: dict[str, list[str]] = {
    "sft": ["algo=sft", "tasks_per_iter=32", "lr=1e-3"],
    "grpo": ["algo=grpo", *ON_POLICY, "grpo.advantage=gigpo"],
    "opd": ["algo=opd", *ON_POLICY, "opd.teacher=model"],  # opd.teacher_path is set per seed
    "opsd": ["algo=opsd", *ON_POLICY, "opsd.variant=jsd", "opsd.teacher=frozen"],
    "opsd_rl": ["algo=opsd", *ON_POLICY, "opsd.variant=rl", "opsd.teacher=frozen"],
    "pi_distill": ["algo=pi_distill", *ON_POLICY, "pi_distill.alpha=0.5"],
    "pi_distill_a0": ["algo=pi_distill", *ON_POLICY, "pi_distill.alpha=0"],
    "pi_distill_a1": ["algo=pi_distill", *ON_POLICY, "pi_distill.alpha=1"],
    # Skill-SD and its baselines on a fixed pool of 64 training rooms (skills are filed per task, as the paper's
    # 96 training levels): GRPO on the same pool, Skill-SD, and the paper's two ablations.
    "grpo_pool": ["algo=grpo", *ON_POLICY, "train_pool=64", "grpo.advantage=gigpo"],
    "skill_sd": ["algo=skill_sd", *ON_POLICY, "train_pool=64", "skill_sd.advantage=gigpo"],
    "skill_sd_lambda0.1": ["algo=skill_sd", *ON_POLICY, "train_pool=64", "skill_sd.advantage=gigpo",
                           "skill_sd.lmbda=0.1"],
    "skill_sd_frozen": ["algo=skill_sd", *ON_POLICY, "train_pool=64", "skill_sd.advantage=gigpo",
                        "skill_sd.teacher=frozen"],
    "skill_sd_student": ["algo=skill_sd", *ON_POLICY, "train_pool=64", "skill_sd.advantage=gigpo",
                         "skill_sd.skill_in=student"],
}


def run_phase(overrides: list[str], progress: bool, report_only: bool = False) -> float | None:
    """One resumable training run; returns its wall time in seconds (0 if it had already finished; None if it has
    not and `report_only`). A finished run asked for more iterations continues from its last checkpoint (so a
    benchmark re-run with a larger --iterations extends its runs); one without checkpoints (an adopted warm start)
    is finished as it is."""
    from distillgym.trainers import checkpoint
    from distillgym.trainers.config import load_config
    from distillgym.trainers.loop import read_metrics, train

    cfg, algo_cfg = load_config(None, [*overrides, f"progress={str(progress).lower()}"])
    out = Path(cfg.out_dir)
    if (out / "model" / "config.json").is_file() and (
        report_only
        or checkpoint.latest(out) is None
        or max((m["iteration"] for m in read_metrics(out)), default=0) >= cfg.iterations
    ):
        return 0.0
    if report_only:
        return None
    t = time.perf_counter()
    train(cfg, algo_cfg, resume=True)
    return time.perf_counter() - t


def sets_for(args: argparse.Namespace, algo: str) -> list[str]:
    """The user's `--set`s that apply to a run of `algo` (e.g. "opsd"): all but those of another algorithm's
    section (`opsd.skip_uninformed=true` reaches OPSD's runs, not the SFT warm start)."""
    from distillgym.trainers import ALGORITHMS

    def section(o: str) -> str | None:
        head = o.split("=", 1)[0]
        return head.split(".", 1)[0] if "." in head and head.split(".", 1)[0] in ALGORITHMS else None

    return [o for o in args.set if section(o) in (None, algo)]


def shared_overrides(args: argparse.Namespace, algo: str = "sft") -> list[str]:
    """The overrides of every run of this benchmark: the task's, then the user's `--set`s that apply to `algo`."""
    return [*TASKS[args.task].shared, *sets_for(args, algo)]


def adopt_warm_start(source: Path, warm: Path) -> None:
    """Use a finished SFT run made elsewhere (for instance by the teacher_view benchmark, with the same episode shape)
    as the shared warm start: its model, config and metrics are copied under `warm` (checkpoints are not)."""
    import shutil

    if (warm / "model" / "config.json").is_file():
        return
    if not (source / "model" / "config.json").is_file() or not (source / "metrics.jsonl").is_file():
        raise SystemExit(f"--warm-from {source}: not a finished training run (no model/ or metrics.jsonl)")
    warm.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "metrics.jsonl"):
        shutil.copy2(source / name, warm / name)
    shutil.copytree(source / "model", warm / "model")
    (warm / "adopted_from").write_text(f"{source.resolve()}\n")


def prepare(args: argparse.Namespace) -> dict[str, Any]:
    """The base model, the SFT warm start and OPD's teacher, built once (seed 0) and shared by every run."""
    from distillgym.agents.models import TinyConfig, build_tiny
    from distillgym.trainers.loop import read_metrics

    root = Path(args.out) / "shared"
    base, warm, teacher = root / "base", root / "warm", root / "teacher"
    task = TASKS[args.task]
    if args.warm_from:
        adopt_warm_start(Path(args.warm_from), warm)
    if not (base / "config.json").is_file() and not args.report_only:
        build_tiny(TinyConfig(seed=0, families=task.families), out_dir=base)
    common = [*shared_overrides(args), "seed=0", f"threads={args.threads}", "eval_every=0", "algo=sft",
              "tasks_per_iter=16", f"lr={args.warm_lr}", *task.warm]
    if args.report_only and not (warm / "model").is_dir():
        raise SystemExit(f"--report-only: no finished warm start under {warm}")
    run_phase([*common, f"model={base}", f"out_dir={warm}", f"iterations={args.warm_iters}"], args.progress)
    out: dict[str, Any] = {"warm": warm / "model", "warm_success": read_metrics(warm)[-1]["eval/success"]}
    teacher_run = [*common, f"model={warm / 'model'}", f"out_dir={teacher}", f"iterations={args.teacher_iters}"]
    if "opd" in args.algos and run_phase(teacher_run, args.progress, args.report_only) is not None:
        out["teacher"] = teacher / "model"
        out["teacher_success"] = read_metrics(teacher)[-1]["eval/success"]
    return out


def bench_seed(seed: int, shared: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """Every algorithm from the shared warm start, with this seed (tasks, sampling)."""
    from distillgym.trainers.loop import read_metrics

    root = Path(args.out) / f"seed{seed}"
    common = [*shared_overrides(args), f"seed={seed}", f"threads={args.threads}", f"eval_every={args.eval_every}",
              f"model={shared['warm']}", f"iterations={args.iterations}"]
    out: dict[str, Any] = {"warm_start": shared["warm_success"]}
    for algo in args.algos:
        extra = [f"opd.teacher_path={shared['teacher']}"] if algo == "opd" else []
        name = ALGOS[algo][0].split("=", 1)[1]
        overrides = [*common, *ALGOS[algo], *TASKS[args.task].tuned, *extra, *sets_for(args, name),
                     f"out_dir={root / algo}"]
        wall = run_phase(overrides, args.progress, args.report_only)
        if wall is None:
            continue
        metrics = read_metrics(root / algo)
        curve = [(m["env_steps"], m["eval/success"], m.get("gen_tokens", 0)) for m in metrics if "eval/success" in m]
        gap = [m["eval/teacher_gap"] for m in metrics if "eval/teacher_gap" in m]
        out[algo] = {"curve": curve, "final": curve[-1][1], "env_steps": curve[-1][0], "gen_tokens": curve[-1][2],
                     "teacher_gap": gap, "wall_s": wall,
                     "s_per_iter": statistics.fmean(m["time/iteration_s"] for m in metrics
                                                    if "time/iteration_s" in m)}
    return out


def mean_std(xs: list[float]) -> tuple[float, float]:
    return statistics.fmean(xs), (statistics.stdev(xs) if len(xs) > 1 else 0.0)


def plot(results: dict[int, dict[str, Any]], algos: list[str], path: Path, label: str = ENV) -> Path:
    """Mean held-out success over seeds against mean training environment steps (left) and against mean tokens the
    model generated in training rollouts (right; SFT generates none), +- one std shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for algo in algos:
        curves = [results[s][algo]["curve"] for s in results if algo in results[s]]
        if not curves:
            continue
        n = min(len(c) for c in curves)
        succ = 100 * np.array([[c[i][1] for i in range(n)] for c in curves])
        for ax, k in zip(axes, (0, 2), strict=True):
            x = np.array([[c[i][k] if len(c[i]) > k else 0 for i in range(n)] for c in curves]).mean(0)
            if k == 2 and not x.any():
                continue
            ax.plot(x, succ.mean(0), marker="o", ms=3, label=algo)
            ax.fill_between(x, succ.mean(0) - succ.std(0), succ.mean(0) + succ.std(0), alpha=0.15)
    axes[0].set_xlabel("training environment steps (after the SFT warm start)")
    axes[1].set_xlabel("tokens generated in training rollouts")
    axes[0].set_ylabel("held-out success (%, greedy)")
    return finish_figure(fig, axes, f"tiny model on {label}, up to {len(results)} seeds", path)


def table(results: dict[int, dict[str, Any]], algos: list[str]) -> str:
    """Per algorithm: held-out success at the start (its own iteration-0 evaluation) and the end, mean +- std over
    seeds, the budgets spent, and the teacher-minus-student gap its evaluations measured (trainers with a
    self-teacher)."""
    rows = []
    for algo in algos:
        seeds = [s for s in sorted(results) if algo in results[s]]
        if not seeds:
            continue
        runs = [results[s][algo] for s in seeds]
        start = [100 * r["curve"][0][1] for r in runs]
        final = [100 * r["final"] for r in runs]
        best = [100 * max(p[1] for p in r["curve"]) for r in runs]
        (m0, s0), (m1, s1), (mb, sb) = mean_std(start), mean_std(final), mean_std(best)
        gaps = [100 * r["teacher_gap"][0] for r in runs if r.get("teacher_gap")]
        rows.append([f"{algo} ({len(seeds)} seeds)", f"{m0:.1f} ± {s0:.1f}", f"**{m1:.1f} ± {s1:.1f}**",
                     f"{m1 - m0:+.1f}", f"{mb:.1f} ± {sb:.1f}", " / ".join(f"{x:.0f}" for x in final),
                     f"{statistics.fmean(r['env_steps'] for r in runs):.0f}",
                     f"{statistics.fmean(r.get('gen_tokens', 0) for r in runs):.0f}",
                     f"{statistics.fmean(gaps):+.0f}" if gaps else "",
                     f"{statistics.fmean(r['s_per_iter'] for r in runs):.1f}"])
    header = ["algorithm", "start %", "final %", "change", "best eval %", "final per seed", "env steps",
              "generated tokens", "teacher gap at start (points)", "s/iter"]
    return markdown_table(header, rows)


def teacher_view(overrides: list[str], model_dir: Path, n: int, threads: int) -> dict[str, float]:
    """Greedy held-out success of `model_dir` on the first `n` test tasks under each context a self-teacher gets
    (`evaluate(contexts=...)`): the plain prompt, the env's privileged info, and the expert's own skill of the
    same task."""
    import torch

    from distillgym.agents.generation import SamplingParams, TransformersBackend
    from distillgym.agents.models import load
    from distillgym.agents.policies import ModelAgent
    from distillgym.eval.evaluate import evaluate
    from distillgym.trainers.config import load_config

    if threads:
        torch.set_num_threads(threads)
    cfg, _ = load_config(None, overrides)
    model, tok = load(str(model_dir))
    agent = ModelAgent(TransformersBackend(model.eval(), tok, batch_size=cfg.num_envs), name="warm",
                       sampling=SamplingParams(temperature=0.0, max_tokens=cfg.max_tokens), history=cfg.history,
                       privileged_at=cfg.privileged_at)
    result = evaluate([agent], [cfg.env], n, num_envs=cfg.num_envs, env_kwargs=cfg.env_kwargs, progress=False,
                      contexts=["plain", "privileged", "expert-skill"])
    labels = {"warm": "plain prompt", "warm [privileged]": "+ the env's privileged info",
              "warm [expert-skill]": "+ skill from the expert's episode"}
    return {labels[m.agent]: m.success_rate for m in result.metrics}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", choices=list(TASKS), default="sokoban")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--algos", nargs="+", default=list(ALGOS)[:5], choices=[*ALGOS, "all"],
                   help="algorithms to run (all: every one in ALGOS)")
    p.add_argument("--iterations", type=int, default=20, help="iterations of each algorithm after the warm start")
    p.add_argument("--eval-every", type=int, default=5)
    p.add_argument("--warm-iters", type=int, default=None,
                   help="SFT iterations (16 expert episodes) of the warm start (default: sokoban 600, apps 400)")
    p.add_argument("--warm-lr", type=float, default=1e-3, help="learning rate of the warm start and the teacher")
    p.add_argument("--teacher-iters", type=int, default=None,
                   help="further SFT iterations for OPD's teacher (default: sokoban 300, apps 150)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a config override of every run, over the task's and the algorithm's (e.g. lr=1e-4)")
    p.add_argument("--warm-from", default=None, metavar="RUN_DIR",
                   help="a finished SFT run (same episode shape) to use as the shared warm start")
    p.add_argument("--out", default=None, help="default: runs/bench/learning (sokoban), runs/bench/learning_TASK")
    p.add_argument("--plot", default=None, help="PNG path (default: OUT/learning.png)")
    p.add_argument("--no-progress", dest="progress", action="store_false")
    p.add_argument("--report-only", action="store_true", help="train nothing: table and plot of the finished runs")
    p.add_argument("--teacher-view", type=int, default=0, metavar="N",
                   help="also measure the warm start with each self-teacher context on N held-out tasks")
    args = p.parse_args(argv)
    if "all" in args.algos:
        args.algos = list(ALGOS)
    if args.warm_iters is None:
        args.warm_iters = TASKS[args.task].warm_iters
    if args.teacher_iters is None:
        args.teacher_iters = TASKS[args.task].teacher_iters
    if args.out is None:
        args.out = "runs/bench/learning" + ("" if args.task == "sokoban" else f"_{args.task}")

    t = time.perf_counter()
    shared = prepare(args)
    results = {s: bench_seed(s, shared, args) for s in args.seeds}
    out = Path(args.out)
    fig = plot(results, args.algos, Path(args.plot) if args.plot else out / "learning.png", TASKS[args.task].label)
    md = table(results, args.algos)
    if args.warm_from:
        md += f"\n\nShared warm start: the finished SFT run {args.warm_from} (`--warm-from`)"
    else:
        md += (f"\n\nShared SFT warm start ({args.warm_iters} iterations): {100 * shared['warm_success']:.0f}% "
               "held-out")
    if "teacher_success" in shared:
        md += (f"; OPD's teacher (the warm start after {args.teacher_iters} more SFT iterations): "
               f"{100 * shared['teacher_success']:.0f}%")
    if args.teacher_view:
        view = teacher_view(shared_overrides(args), shared["warm"], args.teacher_view, args.threads)
        md += (f"\n\nThe warm start as a self-teacher ({args.teacher_view} held-out tasks, greedy):\n\n"
               + markdown_table(["context", "success %"], [[k, f"{100 * v:.1f}"] for k, v in view.items()]))
    (out / "results.md").write_text(md + "\n")
    write_json(out / "result.json", {"machine": machine(), "args": vars(args), "results": results,
                                     "shared": {k: str(v) for k, v in shared.items()},
                                     "wall_s": time.perf_counter() - t})
    print(md)
    print(f"\nwrote {out / 'results.md'}, {out / 'result.json'}, {fig}")


if __name__ == "__main__":
    main()
