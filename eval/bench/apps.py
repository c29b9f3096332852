"""Apps-v0 benchmark: reset time, steps per second through the sandbox, and how many episodes run in parallel on
this machine's cores (each env owns one sandboxed worker process).

    python -m distillgym.eval.bench.apps --out runs/bench/apps.json --plot docs/img/apps_bench.png

AppWorld itself cannot be installed here (its data download fails), so there is no anchor run side by side; the
numbers are absolute. Steps are the expert's cells (one per task: the whole ground-truth program), a one-line
read call, and a trivial cell.
"""

from __future__ import annotations

import argparse
import os
import statistics
import threading
import time
from typing import Any

import distillgym  # noqa: F401
from distillgym.envs.apps import AppsEnv
from distillgym.envs.apps.tasks import TEMPLATES
from distillgym.eval.bench.common import machine, markdown_table, summary, write_json

READ = "print(apis.mail.list_emails(page_limit=5))"


def bench_single(tasks: int) -> dict[str, Any]:
    env = AppsEnv(templates="all")
    names = sorted(TEMPLATES)
    resets: list[float] = []
    first: list[float] = []
    expert: list[float] = []
    read: list[float] = []
    trivial: list[float] = []
    for k in range(tasks):
        t = time.perf_counter()
        obs, info = env.reset(seed=k, options={"template": names[k % len(names)]})
        resets.append(time.perf_counter() - t)
        for cell, out in (("print(0)", first), (READ, read), ("print(1)", trivial)):
            t = time.perf_counter()
            env.step(cell)
            out.append(time.perf_counter() - t)
        t = time.perf_counter()
        obs, r, term, trunc, info = env.step(info["privileged"]["solution"])
        expert.append(time.perf_counter() - t)
        assert info["success"], (names[k % len(names)], obs)
    env.close()
    return {"reset": summary(resets), "first_cell": summary(first), "expert_cell": summary(expert),
            "read_cell": summary(read), "trivial_cell": summary(trivial)}


def bench_parallel(n_envs: int, seconds: float) -> dict[str, float]:
    """`n_envs` envs stepped concurrently from threads (each blocks on its own worker process): total steps/s of
    a workload of resets and read cells."""
    envs = [AppsEnv(templates="all") for _ in range(n_envs)]
    for e in envs:
        e.reset(seed=0)
        e.step("print(1)")
    counts = [0] * n_envs
    stop = time.perf_counter() + seconds

    def work(i: int) -> None:
        e, k = envs[i], 0
        while time.perf_counter() < stop:
            if k % 10 == 0:
                e.reset(seed=1000 * i + k)
            e.step(READ)
            counts[i] += 1
            k += 1

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n_envs)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    for e in envs:
        e.close()
    return {"envs": n_envs, "steps_per_s": sum(counts) / wall, "per_env_steps_per_s": sum(counts) / wall / n_envs}


def plot(rows: list[dict[str, float]], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6))
    ax.plot([r["envs"] for r in rows], [r["steps_per_s"] for r in rows], "o-", label="total")
    ax.plot([r["envs"] for r in rows], [r["per_env_steps_per_s"] for r in rows], "s--", label="per env")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("parallel envs (one sandbox worker each)")
    ax.set_ylabel("read-call steps / s")
    ax.set_title(f"Apps-v0 throughput on {os.cpu_count()} cores")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=74, help="tasks timed (reset + 3 cells each)")
    parser.add_argument("--parallel", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32])
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of each parallel run")
    parser.add_argument("--out", default="runs/bench/apps.json")
    parser.add_argument("--plot", default=None)
    args = parser.parse_args()
    print(f"Apps benchmark ({os.cpu_count()} cores)", flush=True)
    single = bench_single(args.tasks)
    rows = [["reset (world + task)", f"{1000 * single['reset']['median_s']:.1f}", ""]]
    for key, label in (("first_cell", "first cell of an episode (a fresh worker starts)"),
                       ("trivial_cell", "cell `print(1)`"), ("read_cell", "cell: one read call"),
                       ("expert_cell", "cell: the expert's whole program")):
        med = single[key]["median_s"]
        rows.append([label, f"{1000 * med:.2f}", f"{1 / statistics.fmean([med]):,.0f}"])
    print(markdown_table(["operation", "median ms", "per second"], rows))
    par = []
    for n in args.parallel:
        par.append(bench_parallel(n, args.seconds))
        print(f"  {n} envs: {par[-1]['steps_per_s']:,.0f} steps/s", flush=True)
    print(markdown_table(["parallel envs", "total steps/s", "per env steps/s"],
                         [[r["envs"], f"{r['steps_per_s']:,.0f}", f"{r['per_env_steps_per_s']:,.0f}"] for r in par]))
    write_json(args.out, {"machine": machine(), "single": single, "parallel": par})
    if args.plot:
        plot(par, args.plot)
        print(f"\nplot: {args.plot}")


if __name__ == "__main__":
    main()
