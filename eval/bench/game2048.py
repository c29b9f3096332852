"""2048 benchmark: env speed, Monte-Carlo values against ProAct's reference loop, and the expert's strength.

    python -m distillgym.eval.bench.game2048 [--games 50] [--core 0] [--out runs/bench/game2048.json]

Measures on one core (pin it with --core or `taskset -c N`) and prints a markdown table:
- env steps/s with random valid actions, with privileged info off and on (on = one expectimax call per step);
- reset time;
- `mc_q_values` (1000 rollouts per legal move, horizon 1000, gamma 0.9: ProAct's setting) from two 4x4 states, next
  to a compact re-implementation of ProAct's reference (`TwentyFortyEightVariantEnv.get_return_for_state_action`:
  one pure-Python game per rollout, lists and small numpy calls), timed on fewer rollouts and scaled;
- the expert's max-tile distribution over seeded 4x4 games played to the end, and its mean decision time.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import random
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from distillgym.envs.core.mc import mc_q_values
from distillgym.envs.game2048 import Expectimax, Game2048Env, logic, vectorized
from distillgym.eval.bench.common import timed

#: ProAct's own example state (their __main__), and a mid-game state reached by the expert (see mid_game_board).
PROACT_STATE = [[2, 16, 4, 16], [2, 128, 64, 4], [8, 16, 8, 2], [4, 4, 2, 4]]
MC_SETTINGS: dict[str, Any] = {"num_rollouts": 1000, "horizon": 1000, "gamma": 0.9}


# ----------------------------------------------------------------------------------------------- ProAct's reference
def proact_q(grid: list[list[int]], action: str, *, rollouts: int, gamma: float = 0.9, max_steps: int = 1000) -> float:
    """ProAct's MC value of (grid, action): `rollouts` pure-Python games, random moves after the first.

    Same rules and loop as their TwentyFortyEightVariantEnv: a move that changes nothing scores -1, and a game
    also ends after 10 such moves in a row (max_stuck_steps).
    """
    size = len(grid)

    def merge_row(row: list[int]) -> tuple[list[int], int]:
        tiles = [v for v in row if v]
        out: list[int] = []
        score, i = 0, 0
        while i < len(tiles):
            if i + 1 < len(tiles) and tiles[i] == tiles[i + 1]:
                out.append(2 * tiles[i])
                score += 2 * tiles[i]
                i += 2
            else:
                out.append(tiles[i])
                i += 1
        return out + [0] * (size - len(out)), score

    def step(g: list[list[int]], direction: str) -> tuple[list[list[int]], int]:
        arr = np.array(g)
        lines = arr.T if direction in ("up", "down") else arr
        back = direction in ("right", "down")
        merged = [merge_row(list(r[::-1]) if back else list(r)) for r in lines]
        rows = [m[::-1] if back else m for m, _ in merged]
        new = np.array(rows).T.tolist() if direction in ("up", "down") else rows
        return [[int(v) for v in r] for r in new], sum(s for _, s in merged)

    def game_over(g: list[list[int]]) -> bool:
        if any(0 in r for r in g):
            return False
        pairs = [(g[i][j], g[i][j + 1]) for i in range(size) for j in range(size - 1)]
        pairs += [(g[i][j], g[i + 1][j]) for i in range(size - 1) for j in range(size)]
        return not any(a == b for a, b in pairs)

    total = 0.0
    for _ in range(rollouts):
        g = copy.deepcopy(grid)
        value, t, stuck = 0.0, 0, 0
        while True:
            new, score = step(g, action if t == 0 else random.choice(["left", "right", "up", "down"]))
            if new != g:
                g, stuck, reward = new, 0, score
                rows, cols = np.where(np.array(g) == 0)
                if len(rows):
                    k = np.random.choice(len(rows))
                    g[rows[k]][cols[k]] = 2 if np.random.rand() > 0.1 else 4
            else:
                stuck, reward = stuck + 1, -1
            value += gamma**t * reward
            t += 1
            if game_over(g) or stuck >= 10 or t > max_steps:
                break
        total += value
    return total / rollouts


# ----------------------------------------------------------------------------------------------- measurements
def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def env_speed(privileged: bool, steps: int, seed: int) -> dict[str, float]:
    """Steps/s with random valid actions (resetting at episode end), and the mean reset time. With `privileged`,
    `info["privileged"]` is read at every reset and step (it is computed when read: the expert's search)."""
    env = Game2048Env(privileged=privileged)
    rng = random.Random(seed)

    def reset(s: int) -> None:
        _, info = env.reset(seed=s)
        if privileged:
            info["privileged"]["expert_action"]

    reset(seed)
    resets, step_time, episode = [], 0.0, seed
    for _ in range(steps):
        action = rng.choice(env.admissible_actions())
        start = time.perf_counter()
        *_, terminated, truncated, info = env.step(action)
        if privileged:
            info["privileged"]["expert_action"]
        step_time += time.perf_counter() - start
        if terminated or truncated:
            episode += 1
            start = time.perf_counter()
            reset(episode)
            resets.append(time.perf_counter() - start)
    resets += timed(lambda: reset(episode + 1), 20)
    return {"steps_per_s": steps / step_time, "reset_ms": 1e3 * statistics.mean(resets)}


def mid_game_board(seed: int, moves: int = 400) -> list[list[int]]:
    """A typical mid-game 4x4 state: the board after the expert has played `moves` moves of game `seed`."""
    env = Game2048Env(privileged=False, end_on_target=False)
    env.reset(seed=seed)
    for _ in range(moves):
        action = env.expert_action()
        if action is None or env.step(action)[2]:
            break
    return logic.tiles_of(env.board)


def mc_speed(grid: list[list[int]], calls: int, anchor_rollouts: int) -> dict[str, Any]:
    """Median time of mc_q_values from `grid` and of ProAct's loop for the same work (scaled from fewer rollouts)."""
    env = Game2048Env(privileged=False)
    env.reset(seed=0, options={"board": grid})
    actions = env.admissible_actions()
    mc_q_values(env, **MC_SETTINGS, seed=0)  # warm-up (tables)
    ours = timed(lambda: mc_q_values(env, **MC_SETTINGS, seed=None), calls)
    q = mc_q_values(env, **MC_SETTINGS, seed=1)
    random.seed(0)
    np.random.seed(0)
    anchor_q, start = {}, time.perf_counter()
    for a in actions:
        anchor_q[a] = proact_q(grid, a.lower(), rollouts=anchor_rollouts)
    anchor_s = (time.perf_counter() - start) * MC_SETTINGS["num_rollouts"] / anchor_rollouts
    return {
        "board": grid,
        "legal_moves": actions,
        "ms_median": 1e3 * statistics.median(ours),
        "ms_min": 1e3 * min(ours),
        "calls": calls,
        "q": q,
        "anchor_s_scaled": anchor_s,
        "anchor_rollouts_timed": anchor_rollouts,
        "anchor_q_from_timed_rollouts": anchor_q,
        "speedup": anchor_s / (statistics.median(ours)),
    }


def expert_games(games: int, seed: int, max_moves: int, depth: int | None) -> dict[str, Any]:
    """Play `games` seeded 4x4 games with the expert to the end; max tiles, moves and decision times."""
    kwargs: dict[str, Any] = {} if depth is None else {"expert_depth": depth}
    env = Game2048Env(privileged=False, end_on_target=False, max_steps=max_moves, **kwargs)
    whole_tree = Expectimax(4, env.expert_depth, merge_duplicates=False)  # the anchor: every node valued
    max_tiles, scores, moves, decide = [], [], [], []
    sampled: list[tuple[float, float]] = []  # (merged, whole tree) on the same board, every 10th decision
    for g in range(games):
        env.reset(seed=seed + g)
        n = 0
        while True:
            start = time.perf_counter()
            action = env.expert_action()
            decide.append(time.perf_counter() - start)
            if n % 10 == 0:
                start = time.perf_counter()
                whole_tree.best_action(env.board)
                sampled.append((decide[-1], time.perf_counter() - start))
            if action is None:
                break
            *_, terminated, truncated, _ = env.step(action)
            n += 1
            if terminated or truncated:
                break
        max_tiles.append(logic.max_tile(env.board))
        scores.append(env.score)
        moves.append(n)
        print(f"  game {g}: max tile {max_tiles[-1]}, score {scores[-1]}, {n} moves", file=sys.stderr, flush=True)
    return {
        "games": games,
        "depth": env.expert_depth,
        "max_tile_counts": {str(k): v for k, v in sorted(Counter(max_tiles).items())},
        "reached_2048": sum(t >= 2048 for t in max_tiles),
        "max_tiles": max_tiles,
        "mean_score": statistics.mean(scores),
        "mean_moves": statistics.mean(moves),
        "decision_ms_mean": 1e3 * statistics.mean(decide),
        "decision_ms_median": 1e3 * statistics.median(decide),
        "sampled_decisions": len(sampled),
        "sampled_ms_mean": 1e3 * statistics.mean(m for m, _ in sampled),
        "sampled_whole_tree_ms_mean": 1e3 * statistics.mean(w for _, w in sampled),
    }


# ----------------------------------------------------------------------------------------------- report
def plot(r: dict[str, Any], path: Path) -> None:
    """Two panels: the expert's max-tile distribution, and Q-value time against ProAct's loop (log scale)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
    counts = r["expert"]["max_tile_counts"]
    ax1.bar(list(counts), list(counts.values()), color="tab:blue")
    ax1.set_xlabel("max tile reached")
    ax1.set_ylabel("games")
    ax1.set_title(f"Expectimax expert (depth {r['expert']['depth']}), {r['expert']['games']} games on 4x4")
    names = list(r["mc"])
    x = np.arange(len(names))
    per_value = [r["mc"][k]["ms_median"] / len(r["mc"][k]["legal_moves"]) for k in names]
    anchor = [1e3 * r["mc"][k]["anchor_s_scaled"] / len(r["mc"][k]["legal_moves"]) for k in names]
    ax2.bar(x - 0.2, per_value, 0.4, label="distillgym (numpy, batched)")
    ax2.bar(x + 0.2, anchor, 0.4, label="ProAct reference loop")
    ax2.set_yscale("log")
    ax2.set_xticks(x, names)
    ax2.set_ylabel("ms per Q(s, a), 1000 rollouts")
    ax2.set_title("Monte-Carlo value, one core")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


def markdown(r: dict[str, Any]) -> str:
    e, s = r["expert"], r["env"]
    lines = [
        f"2048 benchmark ({r['machine']['cpu']}, core {r['machine']['core']}, Python {r['machine']['python']}, "
        f"numpy {r['machine']['numpy']})",
        "",
        "| measure | ours | ProAct reference | ratio |",
        "| --- | --- | --- | --- |",
        f"| env steps/s, privileged=False (random valid moves) | {s['plain']['steps_per_s']:,.0f} | | |",
        f"| env steps/s, privileged=True, read each step (expectimax) | {s['privileged']['steps_per_s']:,.0f} | | |",
        f"| reset, privileged=False / True | {s['plain']['reset_ms']:.2f} / {s['privileged']['reset_ms']:.2f} ms | | |",
    ]
    for name, m in r["mc"].items():
        lines.append(
            f"| mc_q_values, {name} ({len(m['legal_moves'])} moves x 1000 rollouts, median of {m['calls']}) "
            f"| {m['ms_median']:.0f} ms | {m['anchor_s_scaled']:.1f} s | {m['speedup']:.0f}x |"
        )
        n = len(m["legal_moves"])
        lines.append(
            f"| one MC value Q(s, a) of 1000 rollouts, {name} | {m['ms_median'] / n:.1f} ms "
            f"| {m['anchor_s_scaled'] / n:.2f} s | {m['speedup']:.0f}x |"
        )
    dist = ", ".join(f"{k}: {v}" for k, v in e["max_tile_counts"].items())
    lines += [
        f"| expert (depth {e['depth']}) games reaching 2048 | {e['reached_2048']}/{e['games']} | | |",
        f"| expert max tile distribution | {dist} | | |",
        f"| expert mean score / moves per game | {e['mean_score']:,.0f} / {e['mean_moves']:,.0f} | | |",
        f"| expert decision time, mean (median) | {e['decision_ms_mean']:.2f} ({e['decision_ms_median']:.2f}) ms | | |",
        f"| expert decision time on every 10th board, distinct boards merged (whole tree) | {e['sampled_ms_mean']:.2f} "
        f"({e['sampled_whole_tree_ms_mean']:.2f}) ms | "
        f"| {e['sampled_whole_tree_ms_mean'] / e['sampled_ms_mean']:.2f}x |",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--games", type=int, default=50, help="expert games (4x4, played to the end)")
    parser.add_argument("--seed", type=int, default=0, help="first task seed of the expert games")
    parser.add_argument("--depth", type=int, default=None, help="expert depth (default: the env's)")
    parser.add_argument("--max-moves", type=int, default=50_000, help="move cap per expert game")
    parser.add_argument("--steps", type=int, default=3000, help="env steps per speed measurement")
    parser.add_argument("--mc-calls", type=int, default=7, help="mc_q_values calls per state (median)")
    parser.add_argument("--anchor-rollouts", type=int, default=100, help="ProAct rollouts timed per move")
    parser.add_argument("--core", type=int, default=None, help="pin the process to this CPU core")
    parser.add_argument("--out", type=Path, default=Path("runs/bench/game2048.json"))
    parser.add_argument("--plot", type=Path, default=None, help="PNG path for the expert/MC plot")
    args = parser.parse_args(argv)
    if args.core is not None:
        os.sched_setaffinity(0, {args.core})
    core = sorted(os.sched_getaffinity(0))
    vectorized.packed4_tables()  # built once per process (~1 s): not part of any timing

    print("env speed...", file=sys.stderr, flush=True)
    env = {
        "plain": env_speed(False, args.steps, args.seed),
        "privileged": env_speed(True, max(200, args.steps // 5), args.seed),
    }
    print("mc_q_values...", file=sys.stderr, flush=True)
    mc = {
        "ProAct's example state": mc_speed(PROACT_STATE, args.mc_calls, args.anchor_rollouts),
        "mid-game state": mc_speed(mid_game_board(seed=12345), args.mc_calls, args.anchor_rollouts),
    }
    print("expert games...", file=sys.stderr, flush=True)
    expert = expert_games(args.games, args.seed, args.max_moves, args.depth)
    result = {
        "machine": {
            "cpu": cpu_name(),
            "core": core[0] if len(core) == 1 else core,
            "python": platform.python_version(),
            "numpy": np.__version__,
        },
        "settings": vars(args) | {"out": str(args.out), "plot": str(args.plot), "mc": MC_SETTINGS},
        "env": env,
        "mc": mc,
        "expert": expert,
    }
    print(markdown(result))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str))
    if args.plot:
        plot(result, args.plot)
    return result


if __name__ == "__main__":
    main()
