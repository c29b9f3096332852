"""What the Apps sandbox's isolation costs: per cell and per episode, this tree against an earlier revision (by
default a5fd260, the sandbox before the worker was jailed and the app state moved to the parent), in one run, as
ratios; and this tree at each isolation level ("namespaces", "netns", "none").

    python -m distillgym.eval.bench.apps_sandbox --tasks 37 --rounds 3 --out runs/bench/apps_sandbox.json \\
        --plot docs/img/apps_sandbox.png

Each configuration runs in its own interpreter, alternating round by round so that both see the same machine; the
earlier revision is taken with `git archive` into a temporary directory and imported from there. Timed per task
(one per template, seeded): reset, the episode's first cell (`print(0)`: waits for the worker started in the
background at reset), a trivial cell, a one-call read cell, the expert's whole program (a cell with many calls that
changes the state), and the episode (all of these together); plus starting a worker on its own. The first api
call of an episode copies the state (the parent's working copy); later cells on an unchanged state reuse it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from distillgym.eval.bench.common import machine, markdown_table, write_json

REPO = Path(__file__).resolve().parents[2]
PACKAGE_DIRS = ("envs", "agents", "trainers", "skills", "eval")  # pyproject's package-dir mapping

# Runs in a child interpreter against whichever tree is importable there; prints one JSON object.
MEASURE = r"""
import json, statistics, sys, time
import distillgym
from distillgym.envs.apps import AppsEnv
from distillgym.envs.apps.sandbox import Sandbox
from distillgym.envs.apps.tasks import TEMPLATES
tasks, starts = int(sys.argv[1]), int(sys.argv[2])
names = sorted(TEMPLATES)
env = AppsEnv(templates="all")
env.reset(seed=10_000)
env.step("print(1)")  # warm: imports, first worker
times = {k: [] for k in ("reset", "first_cell", "trivial_cell", "read_cell", "read_again", "expert_cell",
                         "episode")}
for k in range(tasks):
    t0 = time.perf_counter()
    obs, info = env.reset(seed=k, options={"template": names[k % len(names)]})
    times["reset"].append(time.perf_counter() - t0)
    for cell, key in (("print(0)", "first_cell"), ("print(1)", "trivial_cell"),
                      ("print(apis.mail.list_emails(page_limit=5))", "read_cell"),
                      ("print(apis.mail.list_emails(page_limit=5))", "read_again")):
        t = time.perf_counter()
        env.step(cell)
        times[key].append(time.perf_counter() - t)
    t = time.perf_counter()
    obs, reward, term, trunc, info = env.step(info["privileged"]["solution"])
    times["expert_cell"].append(time.perf_counter() - t)
    times["episode"].append(time.perf_counter() - t0)
    assert info["success"], (names[k % len(names)], obs)
env.close()
for _ in range(starts):
    box = Sandbox()
    t = time.perf_counter()
    box.start()
    times.setdefault("worker_start", []).append(time.perf_counter() - t)
    box.close()
print(json.dumps({"source": distillgym.__file__, "median_s": {k: statistics.median(v) for k, v in times.items()}}))
"""

METRICS = (
    ("worker_start", "start a worker (until ready)"),
    ("reset", "reset (world + task)"),
    ("first_cell", "first cell of an episode"),
    ("trivial_cell", "cell `print(1)`"),
    ("read_cell", "cell: one read call (the episode's first call)"),
    ("read_again", "cell: the same read call again"),
    ("expert_cell", "cell: the expert's program"),
    ("episode", "episode (reset + 5 cells)"),
)


def importable_tree(rev: str, into: Path) -> Path:
    """`rev` of this repository as an importable `distillgym` package under `into` (the package-dir mapping rebuilt
    with symlinks); returns the directory to put on PYTHONPATH."""
    archive = into / "tree.tar"
    with archive.open("wb") as f:
        subprocess.run(["git", "-C", str(REPO), "archive", rev], stdout=f, check=True)
    src = into / "src"
    with tarfile.open(archive) as tar:
        tar.extractall(src, filter="data")
    site = into / "site"
    shutil.copytree(src / "distillgym", site / "distillgym")
    for name in PACKAGE_DIRS:
        (site / "distillgym" / name).symlink_to(src / name, target_is_directory=True)
    return site


def measure(pythonpath: Path | None, isolation: str | None, tasks: int, starts: int) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "DISTILLGYM_SANDBOX_ISOLATION")}
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    if isolation is not None:
        env["DISTILLGYM_SANDBOX_ISOLATION"] = isolation
    done = subprocess.run([sys.executable, "-c", MEASURE, str(tasks), str(starts)], env=env, cwd=tempfile.gettempdir(),
                          capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        raise RuntimeError(f"measurement failed ({pythonpath}, {isolation}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def plot(medians: dict[str, dict[str, float]], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [k for k, _ in METRICS if k != "episode"]
    fig, ax = plt.subplots(figsize=(8, 3.8))
    width = 0.8 / len(medians)
    for i, (name, med) in enumerate(medians.items()):
        ax.bar([j + i * width for j in range(len(keys))], [1000 * med[k] for k in keys], width, label=name)
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(keys))], keys, rotation=20, fontsize=8)
    ax.set_ylabel("median ms")
    ax.set_yscale("log")
    ax.set_title(f"Apps sandbox cost by isolation ({os.cpu_count()} cores)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--against", default="a5fd260", help="git revision to compare with ('' for none)")
    parser.add_argument("--levels", nargs="+", default=["namespaces", "netns", "none"])
    parser.add_argument("--tasks", type=int, default=37, help="tasks timed per round (one template each)")
    parser.add_argument("--starts", type=int, default=10, help="worker start-ups timed per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default="runs/bench/apps_sandbox.json")
    parser.add_argument("--plot", default=None)
    args = parser.parse_args()
    configs: dict[str, tuple[Path | None, str | None]] = {}
    with tempfile.TemporaryDirectory(prefix="distillgym-bench-") as tmp:
        if args.against:
            configs[f"{args.against} (worker holds the state)"] = (importable_tree(args.against, Path(tmp)), None)
        for level in args.levels:
            configs[f"this tree, {level}"] = (None, level)
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in configs}
        for r in range(args.rounds):
            for name, (path, level) in configs.items():
                result = measure(path, level, args.tasks, args.starts)
                if path is not None:
                    assert result["source"].startswith(str(path)), result["source"]
                runs[name].append(result["median_s"])
                print(f"round {r + 1}/{args.rounds} {name}: episode {1000 * result['median_s']['episode']:.1f} ms",
                      flush=True)
    medians = {name: {k: statistics.median(m[k] for m in ms) for k in ms[0]} for name, ms in runs.items()}
    names = list(medians)
    base = names[0]
    header = ["median ms", *names, *(f"{n.split(',')[-1].strip()} / {base.split()[0]}" for n in names[1:])]
    rows = []
    for key, label in METRICS:
        row: list[Any] = [label, *(f"{1000 * medians[n][key]:.2f}" for n in names)]
        row += [f"{medians[n][key] / medians[base][key]:.2f}" for n in names[1:]]
        rows.append(row)
    print(markdown_table(header, rows))
    write_json(args.out, {"machine": machine(), "tasks": args.tasks, "rounds": args.rounds, "medians_s": medians,
                          "runs": runs})
    if args.plot:
        plot(medians, args.plot)
        print(f"\nplot: {args.plot}")


if __name__ == "__main__":
    main()
