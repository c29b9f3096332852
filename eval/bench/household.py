"""Household benchmark, one core, side by side in one run: Household-v0's native engine against TextWorld's
engine on the exported equivalent games and against TextWorld's PDDL backend (ALFWorld's engine) on an
ALFWorld-format game. Steps per second and reset time; targets: >= 10,000 steps/s and a reset under 10 ms.

    pip install -e ".[dev,textworld,bench]"
    python -m distillgym.eval.bench.household --out runs/bench/household.json --plot docs/img/household_bench.png

The engines play the same command sequences: the native expert's plan of each task (translated to TextWorld's
commands for the exported game), replayed from reset; the native engine is also timed on random admissible
commands over many tasks (the load an RL rollout puts on it).
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path
from typing import Any

import gymnasium as gym

import distillgym  # noqa: F401
from distillgym.envs.household import HouseholdConfig, HouseholdEnv, expert_plan, generate
from distillgym.eval.bench.common import machine, markdown_table, pin_to_one_core, summary, write_json

PDDL_GAME = Path(__file__).resolve().parents[2] / "tests/envs/data/alfworld"


def native_random(steps: int, *, privileged: bool, wrapped: bool) -> float:
    """Steps/s on random admissible commands, resetting to a new task at each episode's end."""
    env: Any = gym.make("distillgym/Household-v0", privileged=privileged)
    if not wrapped:
        env = env.unwrapped
    rng = random.Random(0)
    obs, info = env.reset(seed=0)
    episode = 0
    t = time.perf_counter()
    for _ in range(steps):
        obs, _, term, trunc, info = env.step(rng.choice(info["admissible_actions"]))
        if term or trunc:
            episode += 1
            obs, info = env.reset(seed=episode)
    return steps / (time.perf_counter() - t)


def native_resets(n: int, *, privileged: bool) -> dict[str, float]:
    env = HouseholdEnv(privileged=privileged)
    times = []
    for s in range(n):
        t = time.perf_counter()
        env.reset(seed=s)
        times.append(time.perf_counter() - t)
    return summary(times)


def _replay(env: Any, seed: int, plan: list[str], repeat: int, resets: list[float]) -> tuple[float, bool]:
    """`repeat` times: reset to task `seed` (timed into `resets`) and play `plan`; (seconds stepping, last success)."""
    step_s, info = 0.0, {}
    for _ in range(repeat):
        t = time.perf_counter()
        env.reset(seed=seed)
        resets.append(time.perf_counter() - t)
        t = time.perf_counter()
        for cmd in plan:
            info = env.step(cmd)[4]
        step_s += time.perf_counter() - t
    return step_s, bool(info.get("success"))


def native_replay(tasks: list[int], repeat: int) -> dict[str, Any]:
    """Reset + the expert's plan, per task, on the native engine (what the TextWorld engines replay below)."""
    env = HouseholdEnv(privileged=False)
    resets: list[float] = []
    steps, n_steps = 0.0, 0
    for seed in tasks:
        env.reset(seed=seed)
        plan = expert_plan(env.house, env.house.start) or []
        steps += _replay(env, seed, plan, repeat, resets)[0]
        n_steps += len(plan) * repeat
    return {"reset": summary(resets), "steps_per_s": n_steps / steps, "steps": n_steps}


def _play_textworld(path: str, commands: list[str], repeat: int, *, admissible: bool) -> dict[str, Any]:
    import textworld

    infos = textworld.EnvInfos(won=True, admissible_commands=admissible)
    env = textworld.start(path, request_infos=infos)
    resets, step_s, n_steps, won = [], 0.0, 0, False
    for _ in range(repeat):
        t = time.perf_counter()
        env.reset()
        resets.append(time.perf_counter() - t)
        t = time.perf_counter()
        for cmd in commands:
            state, _, done = env.step(cmd)
            n_steps += 1
            if done:
                break
        step_s += time.perf_counter() - t
        won = bool(state["won"])
    env.close()
    return {"reset": summary(resets), "steps_per_s": n_steps / step_s, "steps": n_steps, "won": won}


def textworld_exported(tasks: list[int], repeat: int, *, admissible: bool) -> dict[str, Any] | None:
    """TextWorld's engine (Inform7 game on the z-machine) on the exported households, replaying the plans."""
    try:
        from distillgym.envs.household.textworld_export import export_textworld, to_textworld_commands
    except ImportError:
        return None
    resets: list[float] = []
    steps = 0
    step_s = 0.0
    wins = 0
    export_s = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in tasks:
            house = generate(seed, HouseholdConfig(), "seen")
            t = time.perf_counter()
            path = export_textworld(house, Path(tmp) / f"household_{seed}")
            export_s.append(time.perf_counter() - t)
            plan = to_textworld_commands(house, expert_plan(house, house.start) or [])
            r = _play_textworld(str(path), plan, repeat, admissible=admissible)
            resets += [r["reset"]["mean_s"]] * repeat
            steps += r["steps"]
            step_s += r["steps"] / r["steps_per_s"]
            wins += r["won"]
    return {"reset": summary(resets), "steps_per_s": steps / step_s, "steps": steps, "won": f"{wins}/{len(tasks)}",
            "export_compile": summary(export_s)}


def textworld_pddl(repeat: int, *, admissible: bool) -> dict[str, Any] | None:
    """TextWorld's PDDL backend (ALFWorld's engine), through ALFWorld-v0, on the ALFWorld-format games shipped with
    the tests (small kitchens: a real ALFWorld scene is several times larger and slower), replaying each game's
    walkthrough. `admissible` has no switch there: ALFWorld-v0 always lists admissible commands."""
    try:
        import fast_downward  # noqa: F401
        import textworld  # noqa: F401
    except ImportError:
        return None
    if admissible or not sorted(PDDL_GAME.rglob("*.tw-pddl")):
        return None
    from distillgym.envs.alfworld import ALFWorldEnv

    resets: list[float] = []
    step_s, n_steps, wins, games = 0.0, 0, 0, 0
    env = ALFWorldEnv(data_path=str(PDDL_GAME), split="train", privileged=True, expert="walkthrough")
    for seed in range(2):  # the two training games
        obs, info = env.reset(seed=seed)
        plan = list(info["privileged"]["solution"] or [])
        games += 1
        seconds, won = _replay(env, seed, plan, repeat, resets)
        step_s += seconds
        n_steps += len(plan) * repeat
        wins += won
    env.close()
    return {"reset": summary(resets), "steps_per_s": n_steps / step_s, "steps": n_steps, "won": f"{wins}/{games}"}


def plot(rows: list[tuple[str, float, float]], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.8))
    names = [r[0] for r in rows]
    a.barh(names, [r[1] for r in rows], color="tab:blue")
    a.set_xscale("log")
    a.set_xlabel("steps / s (log)")
    a.axvline(10_000, color="gray", ls="--", lw=1)
    b.barh(names, [1000 * r[2] for r in rows], color="tab:orange")
    b.set_xscale("log")
    b.set_xlabel("reset ms (log)")
    b.axvline(10, color="gray", ls="--", lw=1)
    b.set_yticks([])
    fig.suptitle("Household-v0 vs TextWorld engines, one core (dashed: the targets)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=50_000, help="random native steps timed per setting")
    parser.add_argument("--resets", type=int, default=500, help="native resets timed")
    parser.add_argument("--tasks", type=int, default=6, help="tasks exported to TextWorld and replayed")
    parser.add_argument("--repeat", type=int, default=5, help="replays per task (TextWorld engines)")
    parser.add_argument("--core", type=int, default=0, help="CPU core to pin to (-1: don't pin)")
    parser.add_argument("--out", default="runs/bench/household.json")
    parser.add_argument("--plot", default=None)
    args = parser.parse_args()
    pinned = pin_to_one_core(None if args.core < 0 else args.core)
    print(f"Household benchmark ({pinned})", flush=True)
    # one task of each type, found by seed, so every engine plays the same mix
    tasks: list[int] = []
    kinds: set[str] = set()
    for seed in range(1000):
        if len(tasks) >= args.tasks:
            break
        t = generate(seed, HouseholdConfig(), "seen").task.type
        if t not in kinds or len(kinds) == 6:
            kinds.add(t)
            tasks.append(seed)
    results: dict[str, Any] = {
        "native random, unwrapped, privileged off": {
            "steps_per_s": native_random(args.steps, privileged=False, wrapped=False),
            "reset": native_resets(args.resets, privileged=False),
        },
        "native random, gym.make, privileged on": {
            "steps_per_s": native_random(args.steps, privileged=True, wrapped=True),
            "reset": native_resets(args.resets, privileged=True),
        },
        "native expert replay": native_replay(tasks, args.repeat * 20),
    }
    print("  native done", flush=True)
    for admissible in (False, True):
        tag = " + admissible" if admissible else ""
        r = textworld_exported(tasks, args.repeat, admissible=admissible)
        if r is not None:
            results[f"TextWorld z8 (exported){tag}"] = r
        r = textworld_pddl(args.repeat, admissible=admissible)
        if r is not None:
            results["TextWorld PDDL (ALFWorld-v0) + admissible"] = r
        print(f"  textworld{tag} done", flush=True)
    base = results["native expert replay"]
    rows = []
    for name, r in results.items():
        rows.append([name, f"{r['steps_per_s']:,.0f}", f"{1000 * r['reset']['median_s']:.2f}",
                     f"{base['steps_per_s'] / r['steps_per_s']:,.0f}x" if "TextWorld" in name else "",
                     f"{r['reset']['median_s'] / base['reset']['median_s']:,.0f}x" if "TextWorld" in name else "",
                     r.get("won", "")])
    print()
    print(markdown_table(["engine", "steps/s", "reset ms (median)", "native faster (steps)",
                          "native faster (reset)", "expert won"], rows))
    write_json(args.out, {"machine": machine(), "pinned": pinned, "tasks": tasks, "results": results})
    if args.plot:
        plot([(n, r["steps_per_s"], r["reset"]["median_s"]) for n, r in results.items()], args.plot)
        print(f"\nplot: {args.plot}")


if __name__ == "__main__":
    main()
