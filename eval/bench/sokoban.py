"""Sokoban benchmark: reset (generation included) side by side with gym-sokoban 0.0.6, room difficulty (expert
plan lengths on both generators' rooms), steps per second, and Monte-Carlo Q time, on one core.

    pip install -e ".[bench]"            # gym-sokoban 0.0.6 (on gym 0.26) and matplotlib
    python -m distillgym.eval.bench.sokoban --out runs/bench/sokoban.json --plot docs/img/sokoban_reset.png
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
import warnings
from typing import Any

import gymnasium as gym
import numpy as np

import distillgym  # noqa: F401
from distillgym.envs.core import mc_q_values
from distillgym.envs.sokoban import expert_plan, parse_room
from distillgym.eval.bench.common import fmt_ms, machine, markdown_table, pin_to_one_core, summary, write_json

CONFIGS: list[tuple[str, tuple[int, int], int]] = [
    ("distillgym/Sokoban-6x6-1-v0", (6, 6), 1),
    ("distillgym/Sokoban-7x7-2-v0", (7, 7), 2),
    ("distillgym/Sokoban-8x8-2-v0", (8, 8), 2),
    ("distillgym/Sokoban-10x10-3-v0", (10, 10), 3),
    ("distillgym/Sokoban-10x10-4-v0", (10, 10), 4),
]


def _gym_sokoban_generate() -> Any | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from gym_sokoban.envs.room_utils import generate_room
    except ImportError:
        return None
    return generate_room


def _anchor_room_text(structure: np.ndarray, state: np.ndarray) -> str:
    """gym-sokoban's arrays as XSB text (its state codes: 0 wall, 1 floor, 2 target, 3 box on target,
    4 box off target, 5 player)."""
    sym = {0: "#", 1: " ", 2: ".", 3: "*", 4: "$", 5: "@"}
    rows = []
    for r in range(state.shape[0]):
        row = ""
        for c in range(state.shape[1]):
            v = int(state[r, c])
            row += "+" if v == 5 and structure[r, c] == 2 else sym[v]
        rows.append(row)
    return "\n".join(rows)


def bench_resets(seeds: int, anchor_seeds: int) -> list[dict[str, Any]]:
    anchor = _gym_sokoban_generate()
    out = []
    for env_id, dim, boxes in CONFIGS:
        env = gym.make(env_id, privileged=False)
        times = []
        for s in range(seeds):
            t = time.perf_counter()
            env.reset(seed=s)
            times.append(time.perf_counter() - t)
        ours_plan = [len(gym.make(env_id).reset(seed=s)[1]["privileged"]["solution"]) for s in range(min(seeds, 50))]
        row: dict[str, Any] = {
            "env_id": env_id,
            "dim": dim,
            "boxes": boxes,
            "ours": summary(times),
            "ours_plan_length_mean": statistics.fmean(ours_plan),
        }
        if anchor is not None:
            a_times, a_plans = [], []
            for s in range(anchor_seeds):
                random.seed(s)
                np.random.seed(s)
                t = time.perf_counter()
                try:
                    structure, state, _ = anchor(dim=dim, num_steps=int(1.7 * sum(dim)), num_boxes=boxes)
                except (RuntimeError, RuntimeWarning):  # gym-sokoban gives up on some seeds; its env retries
                    a_times.append(time.perf_counter() - t)
                    continue
                a_times.append(time.perf_counter() - t)
                layout, start = parse_room(_anchor_room_text(structure, state))
                plan = expert_plan(layout, start, max_expansions=200_000).plan
                if plan is not None:
                    a_plans.append(len(plan))
            row["gym_sokoban"] = summary(a_times)
            row["gym_sokoban_plan_length_mean"] = statistics.fmean(a_plans) if a_plans else None
            row["speedup_mean"] = row["gym_sokoban"]["mean_s"] / row["ours"]["mean_s"]
        out.append(row)
        print(
            f"  reset {env_id}: ours {fmt_ms(row['ours']['mean_s'])} ms"
            + (f", gym-sokoban {fmt_ms(row['gym_sokoban']['mean_s'])} ms" if "gym_sokoban" in row else ""),
            flush=True,
        )
    return out


def bench_steps(env_id: str, privileged: bool, steps: int) -> float:
    env = gym.make(env_id, privileged=privileged, max_steps=10_000, generator={"max_plan_length": 200})
    rng = np.random.default_rng(0)
    moves = ["Up", "Down", "Left", "Right"]
    actions = [moves[i] for i in rng.integers(4, size=steps)]
    env.reset(seed=0)
    t = time.perf_counter()
    for a in actions:
        _, _, term, trunc, _ = env.step(a)
        if term or trunc:
            env.reset()
    return steps / (time.perf_counter() - t)


def bench_mc(env_id: str, repeat: int) -> dict[str, float]:
    env = gym.make(env_id)
    times = []
    for s in range(repeat):
        env.reset(seed=s)
        t = time.perf_counter()
        mc_q_values(env, num_rollouts=1000, horizon=200, gamma=0.95, seed=s)
        times.append(time.perf_counter() - t)
    return summary(times)


def plot(rows: list[dict[str, Any]], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{r['dim'][0]}x{r['dim'][1]}/{r['boxes']}" for r in rows]
    x = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.bar(x - 0.2, [1000 * r["ours"]["mean_s"] for r in rows], 0.4, label="distillgym")
    if all("gym_sokoban" in r for r in rows):
        ax.bar(x + 0.2, [1000 * r["gym_sokoban"]["mean_s"] for r in rows], 0.4, label="gym-sokoban 0.0.6")
    ax.set_yscale("log")
    ax.set_xticks(x, labels)
    ax.set_ylabel("mean reset time (ms, log scale)")
    ax.set_xlabel("room size / boxes")
    ax.set_title("Sokoban reset (room generation included), one core")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=100, help="resets timed per room size (ours)")
    parser.add_argument("--anchor-seeds", type=int, default=5, help="resets timed per room size (gym-sokoban)")
    parser.add_argument("--steps", type=int, default=20_000, help="random steps timed per setting")
    parser.add_argument("--core", type=int, default=0, help="CPU core to pin to (-1: don't pin)")
    parser.add_argument("--out", default="runs/bench/sokoban.json")
    parser.add_argument("--plot", default=None, help="PNG path for the reset-time plot")
    args = parser.parse_args()
    pinned = pin_to_one_core(None if args.core < 0 else args.core)
    print(f"Sokoban benchmark ({pinned})", flush=True)
    resets = bench_resets(args.seeds, args.anchor_seeds)
    steps = {
        f"{env_id} privileged={p}": bench_steps(env_id, p, args.steps)
        for env_id in ("distillgym/Sokoban-6x6-1-v0", "distillgym/Sokoban-10x10-3-v0")
        for p in (False, True)
    }
    mc = {env_id: bench_mc(env_id, 5) for env_id in ("distillgym/Sokoban-6x6-1-v0", "distillgym/Sokoban-10x10-3-v0")}
    rows = []
    for r in resets:
        a = r.get("gym_sokoban")
        rows.append(
            [
                f"{r['dim'][0]}x{r['dim'][1]}/{r['boxes']}",
                fmt_ms(r["ours"]["mean_s"]),
                fmt_ms(r["ours"]["median_s"]),
                fmt_ms(a["mean_s"]) if a else "n/a",
                f"{r['speedup_mean']:.0f}x" if a else "n/a",
                f"{r['ours_plan_length_mean']:.1f}",
                f"{r['gym_sokoban_plan_length_mean']:.1f}" if r.get("gym_sokoban_plan_length_mean") else "n/a",
            ]
        )
    print()
    print(
        markdown_table(
            [
                "room/boxes",
                "ours mean ms",
                "ours median ms",
                "gym-sokoban mean ms",
                "speedup",
                "ours plan len",
                "gym-sokoban plan len",
            ],
            rows,
        )
    )
    print()
    print(markdown_table(["setting", "steps/s"], [[k, f"{v:,.0f}"] for k, v in steps.items()]))
    print()
    print(
        markdown_table(
            ["env", "MC Q (1000 rollouts/action, horizon 200) median ms"],
            [[k, fmt_ms(v["median_s"])] for k, v in mc.items()],
        )
    )
    write_json(args.out, {"machine": machine(), "pinned": pinned, "resets": resets, "steps_per_s": steps, "mc": mc})
    if args.plot:
        plot(resets, args.plot)
        print(f"\nplot: {args.plot}")


if __name__ == "__main__":
    main()
