"""In-context distillation cascade: success and cost per episode of the teacher alone, the student alone, the
student with demonstrations, and the cascade, on Household-v0 and Apps-v0 (issue 19).

    python -m distillgym.eval.bench.cascade \\
        --student household=runs/bench/teacher_view_household_action/action/model \\
        --student apps=runs/bench/teacher_view_apps_action/action/model --out runs/bench/cascade

Per family: the teacher (the expert, priced as a model: see agents/cascade.py) plays `--demo-tasks` training tasks;
its successful steps become the demonstration store. k, N and temperature are calibrated on `--dev-tasks` other
training tasks (the cheapest grid point at the teacher's success, else the most successful). Then the four arms play
the same `--test-tasks` held-out tasks. Break-even: the demonstrations' one-time cost divided by what an episode
saves against the teacher.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

#: per family: env id, env kwargs, reply budget, prompt history (as its student was trained)
FAMILIES: dict[str, dict[str, Any]] = {
    "household": {"env": "Household-v0", "kwargs": {"max_steps": 12}, "max_tokens": 16, "history": 1},
    "apps": {"env": "Apps-v0", "kwargs": {"max_steps": 3, "difficulty": 1, "templates": "train"},
             "max_tokens": 224, "history": 1},
}


def run_family(family: str, student_path: str, args: argparse.Namespace) -> dict[str, Any]:
    from distillgym.agents.cascade import (
        CascadeAgent,
        CascadeConfig,
        break_even,
        calibrate,
        cascade_costs,
        demo_cost,
    )
    from distillgym.agents.policies import ExpertAgent, ModelAgent, make_agent
    from distillgym.agents.rollout import collect
    from distillgym.eval.evaluate import wilson_interval
    from distillgym.skills.demos import DemoStore

    spec = FAMILIES[family]
    out = Path(args.out) / family
    out.mkdir(parents=True, exist_ok=True)
    student = make_agent(student_path, batch_size=64)
    assert isinstance(student, ModelAgent)
    teacher = ExpertAgent()
    base = CascadeConfig(max_tokens=spec["max_tokens"], history=spec["history"])
    play = {"num_envs": args.num_envs, "env_kwargs": spec["kwargs"], "progress": args.progress}

    store = DemoStore(out / "demos.db", retriever=args.retriever)
    t = time.perf_counter()
    if len(store) == 0:
        demo_agent = CascadeAgent(student, teacher, None, replace(base, mode="teacher", k=0))
        store.add_episodes(collect(demo_agent, spec["env"], list(range(args.demo_tasks)), split="train", seed=0,
                                   desc=f"{family} demonstrations", **play), family=family, teacher="expert")
    demos = {**demo_cost(store, base, family), "build_s": time.perf_counter() - t}

    calib_path = out / "calibration.json"
    if calib_path.is_file():
        calib = json.loads(calib_path.read_text())
    else:
        dev = list(range(args.demo_tasks, args.demo_tasks + args.dev_tasks))
        calib = calibrate(student, teacher, store, spec["env"], dev, ks=args.ks, ns=args.ns,
                          temperatures=args.temperatures, base=base, num_envs=args.num_envs,
                          env_kwargs=spec["kwargs"], progress=args.progress)
        calib_path.write_text(json.dumps(calib, indent=2))
    chosen = CascadeConfig(**calib["chosen"])

    arms = {"teacher": replace(base, mode="teacher", k=0), "student": replace(base, mode="student", k=0),
            "student+demos": replace(chosen, mode="student", k=chosen.k or max(args.ks)), "cascade": chosen}
    results: dict[str, Any] = {}
    tasks = list(range(args.test_tasks))
    for arm, cfg in arms.items():
        path = out / f"{arm}.json"
        if path.is_file():
            results[arm] = json.loads(path.read_text())
            continue
        rows = []
        for seed in (args.seeds if arm == "cascade" else args.seeds[:1]):  # the others are deterministic
            agent = CascadeAgent(student, teacher, store, cfg)
            t = time.perf_counter()
            eps = collect(agent, spec["env"], tasks, split="test", seed=seed, desc=f"{family} {arm} seed {seed}",
                          **play)
            row = {"seed": seed, **cascade_costs(eps), "wall_s": time.perf_counter() - t,
                   "generation_calls": agent.generation_calls}
            wins = sum(e.success for e in eps)
            row["ci"] = list(wilson_interval(wins, len(eps)))
            rows.append(row)
        results[arm] = {"config": asdict(cfg), "runs": rows}
        path.write_text(json.dumps(results[arm], indent=2))
    mean = {arm: {k: sum(r[k] for r in v["runs"]) / len(v["runs"]) for k in ("success", "cost_per_episode",
                                                                             "teacher_step_frac")}
            for arm, v in results.items()}
    teacher_cost = mean["teacher"]["cost_per_episode"]
    for arm in ("student+demos", "cascade"):  # a cascade without demonstrations (k = 0) has nothing to pay back
        one_time = demos["usd"] if results[arm]["config"]["k"] > 0 else 0.0
        mean[arm]["break_even_episodes"] = break_even(one_time, teacher_cost, mean[arm]["cost_per_episode"])
    for arm in mean:
        mean[arm]["cheaper_than_teacher"] = teacher_cost / max(mean[arm]["cost_per_episode"], 1e-12)
    return {"env": spec["env"], "env_kwargs": spec["kwargs"], "student": student_path, "demos": demos,
            "calibration": calib, "arms": results, "summary": mean}


def table(res: dict[str, Any]) -> str:
    lines = ["| family | arm | success % (runs) | cost per episode (USD) | x cheaper than the teacher | teacher steps "
             "| break-even episodes |", "|---|---|---|---|---|---|---|"]
    for family, r in res.items():
        for arm, s in r["summary"].items():
            runs = r["arms"][arm]["runs"]
            per = " / ".join(f"{100 * x['success']:.1f}" for x in runs)
            be = s.get("break_even_episodes")
            be_text = "" if be is None else ("never" if be == float("inf") else f"{be:.0f}")
            lines.append(f"| {family} | {arm} | {100 * s['success']:.1f} ({per}) | {s['cost_per_episode']:.5f} | "
                         f"{s['cheaper_than_teacher']:.2f} | {100 * s['teacher_step_frac']:.0f}% | {be_text} |")
    return "\n".join(lines)


def plot(res: dict[str, Any], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, axes = plt.subplots(1, len(res), figsize=(5.5 * len(res), 4.2), squeeze=False)
    for ax, r in zip(axes[0], res.values(), strict=True):
        for arm, s in r["summary"].items():
            ax.scatter(s["cost_per_episode"], 100 * s["success"], s=60, label=arm)
            ax.annotate(arm, (s["cost_per_episode"], 100 * s["success"]), textcoords="offset points", xytext=(5, 5),
                        fontsize=8)
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel("cost per episode (USD, log)")
        ax.set_ylabel("held-out success %")
        ax.set_title(f"{r['env']} ({r['arms']['teacher']['runs'][0]['episodes']} test tasks)")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> None:
    from distillgym.eval.bench.common import machine, write_json

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--student", action="append", required=True, help="FAMILY=MODEL_DIR (household, apps)")
    p.add_argument("--demo-tasks", type=int, default=100)
    p.add_argument("--dev-tasks", type=int, default=32)
    p.add_argument("--test-tasks", type=int, default=256)
    p.add_argument("--ks", type=int, nargs="+", default=[0, 2])
    p.add_argument("--ns", type=int, nargs="+", default=[2, 3])
    p.add_argument("--temperatures", type=float, nargs="+", default=[0.7])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="rollout seeds of the cascade arm")
    p.add_argument("--retriever", choices=["bm25", "embed"], default="bm25")
    p.add_argument("--num-envs", type=int, default=32)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default="runs/bench/cascade")
    p.add_argument("--plot", default=None)
    p.add_argument("--no-progress", dest="progress", action="store_false")
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    students = {}
    for item in args.student:
        family, sep, path = item.partition("=")
        if not sep or family not in FAMILIES:
            p.error(f"--student must be FAMILY=MODEL_DIR with FAMILY one of {sorted(FAMILIES)}, got {item!r}")
        students[family] = path
    res = {family: run_family(family, path, args) for family, path in students.items()}
    root = Path(args.out)
    write_json(root / "result.json", {"results": res, "args": vars(args), "machine": machine()})
    md = table(res)
    (root / "results.md").write_text(md + "\n")
    png = plot(res, Path(args.plot or root / "cascade.png"))
    print(md)
    for family, r in res.items():
        print(f"{family}: demonstrations {r['demos']}; chosen {r['calibration']['chosen']}")
    print(f"plot: {png}")


if __name__ == "__main__":
    main()
