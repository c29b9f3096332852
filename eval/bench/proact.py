"""ProAct benchmark: GLAD SFT then MC-GRPO, against SFT on expert moves and plain GRPO, with the `tiny` preset on a
CPU, several seeds, held-out tasks.

    python -m distillgym.eval.bench.proact [--task sokoban2|2048] [--seeds 0 1 2] [--arms sft glad sft+grpo
        glad+mc_grpo sft+mc_grpo] [--sft-iters 150] [--rl-iters 10] [--glad-tasks 300] [--out runs/bench/proact_TASK]

Protocol (every stage a resumable `distillgym train` run under --out; a killed benchmark continues):

once: the base model (tiny preset, seed 0), and the GLAD data set: a UCT search at every step of `--glad-tasks`
training tasks, each compressed into its template chain (`distillgym glad`); the search's cost per state is recorded.
per seed s:
1. sft: SFT on the expert's moves (`<action>MOVE</action>` replies), `--sft-iters` iterations of 16 episodes;
2. glad: SFT on the GLAD chains (`thought: ... <action>MOVE</action>`), the same iterations and episodes per
   iteration (each seed visits the chains in its own order);
3. RL from each: plain GRPO (8 tasks x 4 rollouts per iteration) and MC-GRPO (8 episodes per iteration, 8 of their
   states, 8 replies each, every reply valued by 1000 random rollouts), `--rl-iters` iterations at lr 1e-4.
Held-out success (Sokoban) or score and max tile (2048) on the same test tasks, greedy, at each stage's end and every
few RL iterations; curves against training env steps and wall time.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from distillgym.agents.glad import GladConfig
from distillgym.eval.bench.common import finish_figure, machine, markdown_table, write_json
from distillgym.eval.bench.learning import mean_std, run_phase


@dataclass(frozen=True)
class Task:
    label: str
    env: str
    shared: list[str]  # overrides of every run
    plain_tokens: int  # reply budget of a model that answers with the move alone
    chain_tokens: int  # reply budget of a model that writes its chain first
    glad: GladConfig
    mc: list[str] = field(default_factory=list)  # MC-GRPO's critic settings (ProAct's per family)
    score: bool = False  # report the env's score and max tile (2048) beside success
    sft: list[str] = field(default_factory=list)  # overrides of the SFT stages only


TASKS: dict[str, Task] = {
    "sokoban2": Task("Sokoban 6x6, two boxes", "Sokoban-6x6-2-v0",
                     ["env=Sokoban-6x6-2-v0", "env_kwargs.max_steps=20", "history=1", "num_envs=32",
                      "eval_episodes=256"], 8, 72,
                     GladConfig(simulations=100, horizon=20, rollouts=16, alternatives=1, lookahead=2),
                     ["mc_grpo.mc_rollouts=1000", "mc_grpo.mc_horizon=200", "mc_grpo.mc_gamma=0.95"]),
    # 30 moves and one move of lookahead keep a chain-writing evaluation of 256 games near 8 minutes on one core
    "2048": Task("2048 on 3x3 (30 moves)", "2048-3x3-v0",
                 ["env=2048-3x3-v0", "env_kwargs.max_steps=30", "history=1", "num_envs=32", "eval_episodes=256"], 8, 72,
                 GladConfig(simulations=50, horizon=20, rollouts=16, gamma=0.9, alternatives=1, lookahead=1),
                 ["mc_grpo.mc_rollouts=1000", "mc_grpo.mc_horizon=200", "mc_grpo.mc_gamma=0.9"], score=True,
                 sft=["sft.successful_only=false"]),  # no 30-move game makes the 256 tile: imitate every game
}

ARMS = ("sft", "glad", "sft+grpo", "glad+mc_grpo", "sft+mc_grpo")
DEFAULT_ARMS = ("sft", "glad", "sft+grpo", "glad+mc_grpo")
RL = {"grpo": ["algo=grpo", "tasks_per_iter=8", "group_size=4", "grpo.advantage=gigpo"],
      "mc_grpo": ["algo=mc_grpo", "tasks_per_iter=8", "group_size=1", "mc_grpo.states_per_iter=8",
                  "mc_grpo.samples_per_state=8"]}


def glad_data(task: Task, out: Path, n: int, progress: bool) -> dict[str, Any]:
    """The GLAD data set (built once; its cost per searched state beside it)."""
    from distillgym.agents.glad import glad_episodes
    from distillgym.eval.export import write_jsonl

    path, meta = out / "glad.jsonl", out / "glad_cost.json"
    if path.is_file() and meta.is_file():
        return {**json.loads(meta.read_text()), "path": str(path)}
    kwargs = {k.split("=")[0].removeprefix("env_kwargs."): int(k.split("=")[1]) for k in task.shared
              if k.startswith("env_kwargs.")}
    t = time.perf_counter()
    episodes = glad_episodes(task.env, n, env_kwargs=kwargs, cfg=task.glad, progress=progress)
    wall = time.perf_counter() - t
    write_jsonl(episodes, path)
    states = sum(e.num_steps for e in episodes)
    cost = {"tasks": n, "solved": sum(e.success for e in episodes), "states": states, "wall_s": wall,
            "s_per_state": wall / max(1, states), "search": asdict(task.glad),
            "kept_for_sft": sum(e.success for e in episodes)}
    meta.write_text(json.dumps(cost, indent=2))
    return {**cost, "path": str(path)}


def curve(out: Path, offset_s: float = 0.0) -> list[dict[str, float]]:
    """Evaluation points of a run: env steps, cumulative training wall time (+ offset), success, return, max tile."""
    from distillgym.trainers.loop import read_metrics

    points, wall = [], offset_s
    for m in read_metrics(out):
        wall += m.get("time/iteration_s", 0.0)
        if "eval/success" in m:
            points.append({"iteration": m["iteration"], "env_steps": m["env_steps"], "wall_s": wall,
                           "success": m["eval/success"], "return": m["eval/return"],
                           "max_tile": m.get("eval/max_tile", 0.0), "invalid": m["eval/invalid"]})
    return points


def bench_seed(seed: int, task: Task, base: Path, data: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    root = Path(args.out) / f"seed{seed}"
    common = [*task.shared, f"seed={seed}", f"threads={args.threads}", "tensorboard=false", *args.set]
    sft = ["algo=sft", f"tasks_per_iter={args.sft_tasks}", "lr=1e-3", "sft.teacher_prompt_copies=false", "eval_every=0",
           f"iterations={args.sft_iters}", f"model={base}", *task.sft]
    stages = {"sft": [*sft, f"max_tokens={task.plain_tokens}"],
              # the same starting model as `sft`'s, whose evaluation at start is the shared start point
              "glad": [*sft, f"max_tokens={task.chain_tokens}", f"sft.data={data['path']}", "eval_at_start=false"]}
    out: dict[str, Any] = {}
    for arm in args.arms:
        start, _, rl = arm.partition("+")
        if start not in out:
            run_phase([*common, *stages[start], f"out_dir={root / start}"], args.progress)
            out[start] = curve(root / start)
        if not rl:
            continue
        tokens = task.chain_tokens if start == "glad" else task.plain_tokens
        overrides = [*common, *RL[rl], *(task.mc if rl == "mc_grpo" else []), "lr=1e-4", f"max_tokens={tokens}",
                     "eval_at_start=false",
                     f"iterations={args.rl_iters}", f"eval_every={args.eval_every}",
                     f"model={root / start / 'model'}", f"out_dir={root / arm}"]
        run_phase(overrides, args.progress)
        sft_wall = out[start][-1]["wall_s"]
        out[arm] = [{**out[start][-1], "env_steps": 0}, *curve(root / arm, offset_s=sft_wall)]
        from distillgym.trainers.loop import read_metrics

        rows = [m for m in read_metrics(root / arm) if "time/iteration_s" in m]
        if rl == "mc_grpo" and rows:
            out[f"{arm}/mc_cost"] = {
                "s_per_iter": statistics.fmean(m["time/iteration_s"] for m in rows),
                "sim_steps_per_state": statistics.fmean(m["mc/sim_steps"] / max(1, m["states"]) for m in rows),
                "same_action_frac": statistics.fmean(m["same_action_frac"] for m in rows)}
    return out


def table(results: dict[int, dict[str, Any]], arms: list[str], score: bool) -> str:
    rows = []
    for arm in arms:
        finals = [results[s][arm][-1] for s in sorted(results) if arm in results[s] and results[s][arm]]
        if not finals:
            continue
        succ = mean_std([100 * f["success"] for f in finals])
        per_seed = " / ".join(f"{100 * f['success']:.1f}" for f in finals)
        row = [arm, len(finals), f"{succ[0]:.1f} ± {succ[1]:.1f}", per_seed]
        if score:
            ret = mean_std([f["return"] for f in finals])
            tile = mean_std([f["max_tile"] for f in finals])
            row += [f"{ret[0]:.1f} ± {ret[1]:.1f}", f"{tile[0]:.1f} ± {tile[1]:.1f}"]
        row += [f"{statistics.fmean(f['invalid'] for f in finals):.2f}",
                f"{statistics.fmean(f['env_steps'] for f in finals):.0f}",
                f"{statistics.fmean(f['wall_s'] for f in finals):.0f}"]
        rows.append(row)
    header = ["arm", "seeds", "held-out success % (mean ± std)", "per seed"]
    header += ["return (score)", "mean max tile"] if score else []
    header += ["invalid replies", "env steps of the stage", "train wall s (with its SFT)"]
    return markdown_table(header, rows)


def plot(results: dict[int, dict[str, Any]], arms: list[str], path: Path, label: str, key: str) -> Path:
    """Mean over seeds of `key` (success or return) against RL env steps (left) and cumulative wall time (right)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    scale = 100.0 if key == "success" else 1.0
    for arm in arms:
        curves = [results[s][arm] for s in results if results[s].get(arm)]
        if not curves:
            continue
        n = min(len(c) for c in curves)
        y = scale * np.array([[c[i][key] for i in range(n)] for c in curves])
        for ax, x_key in zip(axes, ("env_steps", "wall_s"), strict=True):
            x = np.array([[c[i][x_key] for i in range(n)] for c in curves]).mean(0)
            style = {"marker": "o", "ms": 4} if n > 1 else {"marker": "s", "ms": 7, "ls": ""}
            ax.plot(x, y.mean(0), label=arm, **style)
            if n > 1:
                ax.fill_between(x, y.mean(0) - y.std(0), y.mean(0) + y.std(0), alpha=0.15)
    axes[0].set_xlabel("training env steps of the stage (SFT: the expert's; GLAD's data: 0)")
    axes[1].set_xlabel("training wall time, s (SFT stage included; GLAD data not)")
    axes[0].set_ylabel("held-out success (%, greedy)" if key == "success" else "held-out return (score)")
    return finish_figure(fig, axes, f"tiny model on {label}, {len(results)} seeds", path)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", choices=sorted(TASKS), default="sokoban2")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--arms", nargs="+", choices=ARMS, default=list(DEFAULT_ARMS))
    p.add_argument("--sft-iters", type=int, default=150)
    p.add_argument("--sft-tasks", type=int, default=16, help="episodes per SFT iteration (one update each)")
    p.add_argument("--rl-iters", type=int, default=10)
    p.add_argument("--eval-every", type=int, default=5)
    p.add_argument("--glad-tasks", type=int, default=200)
    p.add_argument("--glad-from", default=None, help="a directory holding glad.jsonl and glad_cost.json to reuse")
    p.add_argument("--base", default=None, help="start every SFT stage from this model (default: a fresh tiny one)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--set", nargs="*", default=[], help="more KEY=VALUE overrides of every run")
    p.add_argument("--out", default=None)
    p.add_argument("--plot", default=None)
    p.add_argument("--no-progress", dest="progress", action="store_false")
    args = p.parse_args(argv)
    task = TASKS[args.task]
    args.out = args.out or f"runs/bench/proact_{args.task}"
    root = Path(args.out)
    base = Path(args.base) if args.base else root / "shared" / "base"
    if not (base / "config.json").is_file():
        from distillgym.agents.models import TinyConfig, build_tiny

        build_tiny(TinyConfig(seed=0, families=("sokoban", "2048")), out_dir=base)
    shared = root / "shared"
    if args.glad_from and not (shared / "glad.jsonl").is_file():  # reuse a data set built by another run
        import shutil

        shared.mkdir(parents=True, exist_ok=True)
        for name in ("glad.jsonl", "glad_cost.json"):
            shutil.copy2(Path(args.glad_from) / name, shared / name)
    data = glad_data(task, shared, args.glad_tasks, args.progress)
    results = {s: bench_seed(s, task, base, data, args) for s in args.seeds}
    key = "return" if task.score else "success"
    png = plot(results, args.arms, Path(args.plot or root / "proact.png"), task.label, key)
    md = table(results, args.arms, task.score)
    write_json(root / "result.json", {"task": args.task, "glad_data": data, "results": results,
                                      "args": {k: v for k, v in vars(args).items()}, "machine": machine()})
    (root / "results.md").write_text(md + "\n")
    print(md)
    print(f"GLAD data: {data['tasks']} tasks, {data['solved']} solved, {data['states']} searched states, "
          f"{1000 * data['s_per_state']:.0f} ms per state")
    for s in sorted(results):
        for k, v in results[s].items():
            if k.endswith("/mc_cost"):
                print(f"seed {s} {k}: {v}")
    print(f"plot: {png}")


if __name__ == "__main__":
    main()
