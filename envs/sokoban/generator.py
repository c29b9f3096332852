"""Seeded Sokoban room generation by reverse play, as gym-sokoban does it, but fast.

1. Topology: a random walk carves floor out of a walled room with small random masks (gym-sokoban's scheme).
2. Targets and the player are placed on floor; every box starts on a target (the solved room).
3. Reverse play: the player walks at random and sometimes *pulls* the box behind it. Every pull can be undone by a
   push, so every state reached is solvable. Several random walks run; the state with the best gym-sokoban score
   (box swaps x total box displacement) is kept.
4. Several such rooms are drawn (`candidates`) and the one needing the most pushes (by the expert's admissible
   lower bound) is tried first: harder rooms for little extra time.
5. The A* expert solves the room; only rooms it solves within the plan-length limit are served.

Everything is drawn from one `random.Random` seeded from the task seed, so a seed gives the same room anywhere.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from distillgym.envs.sokoban.room import Layout, Room, State
from distillgym.envs.sokoban.solver import expert_plan, push_lower_bound, tables

_MASKS: tuple[tuple[tuple[int, int], ...], ...] = (
    ((0, -1), (0, 0), (0, 1)),  # horizontal bar
    ((-1, 0), (0, 0), (1, 0)),  # vertical bar
    ((0, -1), (0, 0), (1, 0)),  # corner
    ((0, -1), (0, 0), (1, -1), (1, 0)),  # 2x2 square
    ((0, 0), (0, 1), (1, 0)),  # corner, mirrored
)
_DIRS = ((1, 0), (0, 1), (-1, 0), (0, -1))


@dataclass(frozen=True)
class GeneratorConfig:
    """Options of room generation (defaults follow gym-sokoban where it has one)."""

    height: int = 6
    width: int = 6
    num_boxes: int = 1
    p_change_direction: float = 0.35  # gym-sokoban's topology walk
    topology_steps: int | None = None  # default: 1.7 * (height + width), as in gym-sokoban's env
    reverse_rounds: int | None = None  # rounds of reverse play, each from the best state so far; 2 + 2 * boxes
    reverse_walks: int = 6  # random reverse-play walks per round; the best-scoring state is kept
    reverse_steps: int | None = None  # moves per walk; default 3 * (height + width)
    pull_probability: float = 0.6
    max_plan_length: int | None = None  # only serve rooms whose expert plan fits (e.g. the env's step limit)
    solver_budget: int = 20_000  # A* expansions allowed per candidate room
    candidates: int | None = None  # rooms drawn per served room, hardest kept (push lower bound); min(boxes, 2)
    max_attempts: int = 200

    def __post_init__(self) -> None:
        for name, lo, hi in (("height", 5, 16), ("width", 5, 16), ("num_boxes", 1, 6)):
            v = getattr(self, name)
            if not lo <= v <= hi:
                raise ValueError(f"{name} must be in [{lo}, {hi}], got {v}")


def _topology(rng: random.Random, cfg: GeneratorConfig) -> bytearray:
    h, w = cfg.height, cfg.width
    walls = bytearray(b"\x01" * (h * w))
    steps = cfg.topology_steps or int(1.7 * (h + w))
    r, c = rng.randint(1, h - 2), rng.randint(1, w - 2)
    dr, dc = rng.choice(_DIRS)
    for _ in range(steps):
        if rng.random() < cfg.p_change_direction:
            dr, dc = rng.choice(_DIRS)
        r = min(max(r + dr, 1), h - 2)
        c = min(max(c + dc, 1), w - 2)
        for mr, mc in rng.choice(_MASKS):
            rr, cc = r + mr, c + mc
            if 1 <= rr <= h - 2 and 1 <= cc <= w - 2:
                walls[rr * w + cc] = 0
    return walls


def _reverse_play(
    rng: random.Random, layout: Layout, targets: list[int], player: int, cfg: GeneratorConfig
) -> tuple[State, int] | None:
    """Random pulls from the solved room, in rounds: each round's walks restart from the best state so far
    (a cheap stand-in for gym-sokoban's exhaustive DFS). Returns the best (state, score), or None when no walk
    ever moved every box off its target."""
    w = layout.width
    walls = layout.walls
    deltas = layout.deltas
    steps = cfg.reverse_steps or 3 * (cfg.height + cfg.width)
    best_score = 0
    best = (list(targets), player, -1, 0)  # boxes (box i started on target i), player, last pulled, swaps
    for _ in range(cfg.reverse_rounds or 2 + 2 * cfg.num_boxes):
        start = best
        for _ in range(cfg.reverse_walks):
            boxes, p, last_pulled, swaps = list(start[0]), start[1], start[2], start[3]
            for d in rng.choices(deltas, k=steps):
                nxt = p + d
                if walls[nxt] or nxt in boxes:
                    continue
                behind = p - d
                if behind in boxes and rng.random() < cfg.pull_probability:
                    k = boxes.index(behind)
                    boxes[k] = p
                    if k != last_pulled:
                        swaps += 1
                        last_pulled = k
                    p = nxt
                    # gym-sokoban's score, and like it: zero unless every box has left its target
                    if all(b != t for b, t in zip(boxes, targets, strict=True)):
                        displacement = sum(
                            abs(b // w - t // w) + abs(b % w - t % w) for b, t in zip(boxes, targets, strict=True)
                        )
                        if swaps * displacement > best_score:
                            best_score = swaps * displacement
                            best = (list(boxes), p, last_pulled, swaps)
                else:
                    p = nxt
    if best_score == 0:
        return None
    return State(best[1], tuple(sorted(best[0]))), best_score


def generate_room(seed: int, cfg: GeneratorConfig) -> tuple[Room, list[int]]:
    """The room of `seed` and its expert plan (action indices). Deterministic in (seed, cfg)."""
    rng = random.Random(seed)
    candidates: list[tuple[int, Layout, State, int]] = []
    for attempt in range(cfg.max_attempts):
        walls = _topology(rng, cfg)
        floor = [i for i, v in enumerate(walls) if not v]
        if len(floor) < cfg.num_boxes + 2 + cfg.num_boxes:
            continue
        cells = rng.sample(floor, cfg.num_boxes + 1)
        targets, player = cells[:-1], cells[-1]
        layout = Layout(cfg.height, cfg.width, bytes(walls), frozenset(targets))
        found = _reverse_play(rng, layout, targets, player, cfg)
        if found is None:
            continue
        state, score = found
        # rank candidate rooms by the expert's admissible lower bound on the pushes they need
        candidates.append((push_lower_bound(tables(layout), state.boxes), layout, state, score))
        if len(candidates) < (cfg.candidates or min(cfg.num_boxes, 2)) and attempt + 1 < cfg.max_attempts:
            continue
        candidates.sort(key=lambda c: -c[0])
        for _, layout, state, score in candidates:
            result = expert_plan(layout, state, max_expansions=cfg.solver_budget)
            if result.plan is None:
                continue
            if cfg.max_plan_length is not None and len(result.plan) > cfg.max_plan_length:
                continue
            return Room(layout, state, meta={"attempt": attempt, "score": score}), result.plan
        candidates.clear()
    raise RuntimeError(
        f"no servable room found for seed {seed} after {cfg.max_attempts} attempts with {cfg}; "
        "if max_plan_length (the env's max_steps by default) is very small, raise it"
    )
