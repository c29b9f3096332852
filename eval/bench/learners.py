"""One learner process against two (torchrun, gloo; DDP and FSDP2) on the same cores: seconds per training
iteration and the update's state per rank.

The same `distillgym train` config (tiny preset, GRPO on Sokoban 6x6/1 by default) run once in one process with
`--threads` torch threads, then under `torch.distributed.run --nproc-per-node 2` with `--threads / 2` threads per
rank, as `parallel=ddp` and `parallel=fsdp`; the median `time/iteration_s` of each (rank 0's clock: an iteration ends
for every rank at the gradient reduction), their ratios, and `memory/train_state_mb` (weights, gradients and
optimizer state a rank holds for the update, FSDP's whole copy for generation included).

    python -m distillgym.eval.bench.learners [--iterations 4] [--threads 2] [--set KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

from distillgym.agents.http_backend import free_port
from distillgym.eval.bench.common import machine, markdown_table, write_json


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--iterations", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2, help="torch threads of the one process (each rank: half)")
    ap.add_argument("--set", nargs="*", default=[], help="more KEY=VALUE overrides of both runs")
    ap.add_argument("--out", default="runs/bench/learners")
    args = ap.parse_args(argv)

    from distillgym.trainers.loop import read_metrics

    out = Path(args.out)
    base = ["algo=grpo", "env=Sokoban-6x6-1-v0", "tasks_per_iter=8", "group_size=4", "num_envs=32", "max_tokens=16",
            "eval_every=0", "eval_at_start=false", "eval_episodes=2", "progress=false", "tensorboard=false",
            "grpo.drop_zero_advantage=false", f"iterations={args.iterations}", *args.set]
    runs = {
        "1 process": [sys.executable, "-m", "distillgym.cli", "train", *base, f"threads={args.threads}",
                      f"out_dir={out / 'one'}"],
    }
    for name, scheme in (("2 ranks, DDP (torchrun, gloo)", "ddp"), ("2 ranks, FSDP2 (torchrun, gloo)", "fsdp")):
        runs[name] = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-addr",
                      "127.0.0.1", "--master-port", str(free_port()), "-m", "distillgym.cli", "train", *base,
                      f"threads={max(1, args.threads // 2)}", f"parallel={scheme}", f"out_dir={out / scheme}"]
    results = {}
    for name, cmd in runs.items():
        folder = Path(cmd[-1].split("=", 1)[1])
        if folder.exists():
            import shutil

            shutil.rmtree(folder)
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        metrics = [m for m in read_metrics(folder) if "time/iteration_s" in m]
        times = [m["time/iteration_s"] for m in metrics[1:]] or [m["time/iteration_s"] for m in metrics]
        results[name] = {"median_s": statistics.median(times), "times": times,
                         "env_steps": metrics[-1]["env_steps"],
                         "train_state_mb": metrics[-1].get("memory/train_state_mb", float("nan"))}
    one = results["1 process"]
    print(markdown_table(["learner", "s per iteration (median, first dropped)", "env steps", "speed-up",
                          "update state per rank (MB)"],
                         [[k, f"{v['median_s']:.2f}", v["env_steps"], f"{one['median_s'] / v['median_s']:.2f}x",
                           f"{v['train_state_mb']:.1f}"] for k, v in results.items()]))
    path = write_json(out / "result.json", {"machine": machine(), "args": vars(args), "results": results,
                                            "ratios": {k: one["median_s"] / v["median_s"]
                                                       for k, v in results.items()}})
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
