"""distillgym against GEM (gem-llm) on the games both have, in one process: resets and steps per second.

    python -m distillgym.eval.bench.gem_speed [--resets 2000] [--steps 20000] [--core 0] [--out ...] [--plot PNG]

Pairs (the same sizes, default settings on both sides, made the way each project's users make them):

- Sokoban 6x6 with 2 boxes: `gymnasium.make("distillgym/Sokoban-6x6-2-v0")` against `gem.make("game:Sokoban-v0-easy")`
  (dim_room (6, 6), num_boxes 2).
- 2048 on 4x4: `gymnasium.make("distillgym/2048-v0")` against `gem.make("game:Game2048-v0-easy")` (4x4).

Resets: `--resets` resets with seeds 0, 1, ... Steps: `--steps` uniformly random moves (each side's own action
text: `Up` / `\\boxed{up}`), resetting when an episode ends (those resets are not counted as steps, and their time
is left out of the step rate). Both sides interleave in rounds (distillgym, GEM, distillgym, ...) so that load on the
machine falls on both alike; the reported figure is the best round of each. distillgym's `info["privileged"]` is on
by default and is not read here, which is what a plain RL loop does: the expert's plan costs nothing until read
(`LazyPrivileged`). `--read-privileged` reads it at every step (what a teacher's rollout pays).
"""

from __future__ import annotations

import argparse
import random
import time
from typing import Any

from distillgym.eval.bench.common import machine, markdown_table, pin_to_one_core, save_results

PAIRS = {
    "Sokoban 6x6, 2 boxes": ("distillgym/Sokoban-6x6-2-v0", "game:Sokoban-v0-easy"),
    "2048 4x4": ("distillgym/2048-v0", "game:Game2048-v0-easy"),
}
OURS_MOVES = ["Up", "Down", "Left", "Right"]
GEM_MOVES = ["\\boxed{up}", "\\boxed{down}", "\\boxed{left}", "\\boxed{right}"]


def make_pair(ours_id: str, gem_id: str) -> tuple[Any, Any]:
    import gem
    import gymnasium as gym

    import distillgym  # noqa: F401  (registers the ids)

    return gym.make(ours_id), gem.make(gem_id)


def time_resets(env: Any, n: int, start: int) -> float:
    """Seconds per reset over seeds start .. start + n - 1."""
    t = time.perf_counter()
    for s in range(start, start + n):
        env.reset(seed=s)
    return (time.perf_counter() - t) / n


def time_steps(env: Any, moves: list[str], n: int, seed: int, read: bool) -> float:
    """Seconds per step over n random moves, episode resets excluded."""
    rng = random.Random(seed)
    env.reset(seed=seed)
    spent, done, episode = 0.0, 0, 0
    while done < n:
        a = moves[rng.randrange(4)]
        t = time.perf_counter()
        _, _, terminated, truncated, info = env.step(a)
        if read:
            dict(info.get("privileged") or {})
        spent += time.perf_counter() - t
        done += 1
        if terminated or truncated:
            episode += 1
            env.reset(seed=seed + episode)
    return spent / n


def plot(results: dict[str, Any], path: str) -> None:
    """distillgym's speed over GEM's (reset and step) per game, log scale; the line at 1 is parity."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    fig, ax = plt.subplots(figsize=(6, 3.4))
    for k, what in enumerate(("reset", "step")):
        xs = [i + (k - 0.5) * 0.38 for i in range(len(names))]
        ratios = [results[n][f"{what}_ratio"] for n in names]
        ax.bar(xs, [r - 1 for r in ratios], 0.38, bottom=1, label=what)  # from parity up or down
        for x, r in zip(xs, ratios, strict=True):
            ax.annotate(f"{r:.2f}x", (x, r), ha="center", va="bottom", fontsize=8)
    ax.axhline(1.0, color="black", lw=0.8, ls="--")
    ax.set_yscale("log")
    ax.set_yticks([0.25, 0.5, 1, 2, 4, 8], ["0.25", "0.5", "1", "2", "4", "8"])
    ax.minorticks_off()
    ax.set_xticks(range(len(names)), names)
    ax.set_ylabel("distillgym / GEM speed (>1: faster)")
    ax.set_title("Resets and steps per second against GEM (gem-llm 0.1.0)", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--resets", type=int, default=2000)
    ap.add_argument("--steps", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--read-privileged", action="store_true", help="read info['privileged'] at every step")
    ap.add_argument("--core", type=int, default=0, help="pin to this core (-1: no pinning)")
    ap.add_argument("--out", default="runs/bench/gem_speed.json")
    ap.add_argument("--plot", default=None, help="also draw the figures to this PNG")
    args = ap.parse_args(argv)
    pinned = pin_to_one_core(None if args.core < 0 else args.core)

    results: dict[str, Any] = {}
    rows = []
    for name, (ours_id, gem_id) in PAIRS.items():
        ours, theirs = make_pair(ours_id, gem_id)
        best: dict[str, dict[str, float]] = {"ours": {}, "gem": {}}
        for r in range(args.rounds):
            for side, env, moves in (("ours", ours, OURS_MOVES), ("gem", theirs, GEM_MOVES)):
                reset_s = time_resets(env, args.resets, r * args.resets)
                step_s = time_steps(env, moves, args.steps, r, args.read_privileged and side == "ours")
                b = best[side]
                b["reset_s"] = min(b.get("reset_s", float("inf")), reset_s)
                b["step_s"] = min(b.get("step_s", float("inf")), step_s)
        ours.close()
        results[name] = {"ids": [ours_id, gem_id], **best,
                         "reset_ratio": best["gem"]["reset_s"] / best["ours"]["reset_s"],
                         "step_ratio": best["gem"]["step_s"] / best["ours"]["step_s"]}
        res = results[name]
        rows.append([name, f"{1 / best['ours']['reset_s']:,.0f}", f"{1 / best['gem']['reset_s']:,.0f}",
                     f"**{res['reset_ratio']:.2f}x**", f"{1 / best['ours']['step_s']:,.0f}",
                     f"{1 / best['gem']['step_s']:,.0f}", f"**{res['step_ratio']:.2f}x**"])
    print(markdown_table(["game", "distillgym resets/s", "GEM resets/s", "reset ratio", "distillgym steps/s",
                          "GEM steps/s", "step ratio"], rows))
    print("(ratio > 1: distillgym is faster)")
    data = {"machine": machine(), "pinned": pinned, "args": vars(args), "results": results}
    save_results(args.out, data, args.plot, plot)


if __name__ == "__main__":
    main()
