"""The Sokoban expert: A* over push states with deadlock pruning, returning an optimal plan in moves.

A search node is (player cell, sorted box cells) right after a push. Expanding a node floods the player's
reachable region once, then tries every push of every box; its cost is the walk to the box plus the push, so the
plan is optimal in moves (not only in pushes) under the admissible heuristic: the minimum-cost assignment of
boxes to distinct targets, with per-target push distances that ignore the other boxes. Pruned as dead:
boxes on cells from which no target can be reached ("dead squares"), and 2x2 freeze deadlocks.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from dataclasses import dataclass
from functools import lru_cache

from distillgym.envs.sokoban.room import Layout, State

INF = 1 << 30


@dataclass(frozen=True)
class Tables:
    """Per-layout precomputation shared by every search on that layout."""

    neighbors: tuple[tuple[int, ...], ...]  # floor neighbours of each cell
    target_dist: tuple[tuple[int, ...], ...]  # per target: pushes needed to bring a lone box from each cell
    min_dist: tuple[int, ...]  # min over targets; INF on dead squares
    targets: tuple[int, ...]
    blocks: tuple[tuple[tuple[int, ...], ...], ...]  # per cell: the non-wall other cells of each 2x2 block


@lru_cache(maxsize=256)
def tables(layout: Layout) -> Tables:
    n = layout.height * layout.width
    walls = layout.walls
    deltas = layout.deltas
    neighbors = tuple(
        tuple(i + d for d in deltas if 0 <= i + d < n and not walls[i + d]) if not walls[i] else () for i in range(n)
    )
    targets = tuple(sorted(layout.targets))
    per_target = []
    for t in targets:
        dist = [INF] * n
        dist[t] = 0
        queue = deque([t])
        while queue:  # reverse pushes: a box at p = c - d was pushed to c by a player standing at p - d
            c = queue.popleft()
            for d in deltas:
                p, q = c - d, c - 2 * d
                if 0 <= q < n and not walls[p] and not walls[q] and dist[p] == INF:
                    dist[p] = dist[c] + 1
                    queue.append(p)
        per_target.append(tuple(dist))
    min_dist = tuple(min(col) for col in zip(*per_target, strict=True))
    w = layout.width
    blocks: list[tuple[tuple[int, ...], ...]] = []
    for cell in range(n):
        if walls[cell] or cell < w or cell >= n - w:
            blocks.append(())
            continue
        cell_blocks = []
        for corner in (cell, cell - 1, cell - w, cell - w - 1):
            others = tuple(c for c in (corner, corner + 1, corner + w, corner + w + 1) if c != cell and not walls[c])
            cell_blocks.append(others)
        blocks.append(tuple(cell_blocks))
    return Tables(neighbors, tuple(per_target), min_dist, targets, tuple(blocks))


def reachable(tab: Tables, player: int, boxes: frozenset[int] | set[int], n: int) -> list[int]:
    """Walking distance from `player` to every cell (-1 where unreachable), boxes blocking."""
    dist = [-1] * n
    dist[player] = 0
    queue = deque([player])
    neighbors = tab.neighbors
    while queue:
        c = queue.popleft()
        dc = dist[c] + 1
        for nb in neighbors[c]:
            if dist[nb] < 0 and nb not in boxes:
                dist[nb] = dc
                queue.append(nb)
    return dist


def walk_path(layout: Layout, start: int, goal: int, boxes: frozenset[int] | set[int]) -> list[int] | None:
    """Shortest list of moves (action indices) walking from `start` to `goal` without pushing a box."""
    if start == goal:
        return []
    deltas = layout.deltas
    prev: dict[int, tuple[int, int]] = {start: (-1, -1)}
    queue = deque([start])
    while queue:
        c = queue.popleft()
        for a, d in enumerate(deltas):
            nb = c + d
            if nb in prev or layout.walls[nb] or nb in boxes:
                continue
            prev[nb] = (c, a)
            if nb == goal:
                path = []
                while nb != start:
                    nb, a = prev[nb]
                    path.append(a)
                return path[::-1]
            queue.append(nb)
    return None


def _frozen(tab: Tables, targets: frozenset[int], cell: int, boxes: frozenset[int]) -> bool:
    """A 2x2 block of walls/boxes around the just-pushed box that holds a box off target: unsolvable."""
    for others in tab.blocks[cell]:
        if all(c in boxes for c in others) and (cell not in targets or any(c not in targets for c in others)):
            return True
    return False


def is_dead(layout: Layout, state: State) -> bool:
    """Cheap, incomplete deadlock test: a box on a dead square or in a 2x2 freeze."""
    tab = tables(layout)
    boxes = frozenset(state.boxes)
    return any(tab.min_dist[b] >= INF or _frozen(tab, layout.targets, b, boxes) for b in state.boxes)


_PERMS = {k: tuple(itertools.permutations(range(k))) for k in range(2, 5)}


def push_lower_bound(tab: Tables, boxes: tuple[int, ...]) -> int:
    """Admissible: the cheapest assignment of boxes to distinct targets (exact up to 4 boxes), in pushes."""
    k = len(boxes)
    if k == 1:
        return tab.min_dist[boxes[0]]
    if k > 4:
        return sum(tab.min_dist[b] for b in boxes)
    rows = [tuple(td[b] for td in tab.target_dist) for b in boxes]
    if k == 2:
        r0, r1 = rows
        return min(r0[0] + r1[1], r0[1] + r1[0])
    if k == 3:
        r0, r1, r2 = rows
        return min(r0[a] + r1[b] + r2[c] for a, b, c in _PERMS[3])
    r0, r1, r2, r3 = rows
    return min(r0[a] + r1[b] + r2[c] + r3[d] for a, b, c, d in _PERMS[4])


@dataclass
class SolveResult:
    plan: list[int] | None  # action indices, None when no plan was found
    expansions: int
    exhausted: bool  # True when the whole state space was searched (so None means unsolvable)


def solve(layout: Layout, state: State, *, max_expansions: int = 200_000, weight: float = 1.0) -> SolveResult:
    """Plan from `state` to all boxes on targets. weight=1 gives a move-optimal plan; weight>1 is greedier."""
    if state.solved(layout):
        return SolveResult([], 0, True)
    tab = tables(layout)
    if is_dead(layout, state):
        return SolveResult(None, 0, True)
    n = layout.height * layout.width
    walls = layout.walls
    deltas = layout.deltas
    min_dist = tab.min_dist
    targets = layout.targets
    h_cache: dict[tuple[int, ...], int] = {}

    def h(boxes: tuple[int, ...]) -> int:
        v = h_cache.get(boxes)
        if v is None:
            v = h_cache[boxes] = push_lower_bound(tab, boxes)
        return v

    start = (state.player, state.boxes)
    best_g = {start: 0}
    parent: dict[tuple[int, tuple[int, ...]], tuple[tuple[int, tuple[int, ...]], int, int] | None] = {start: None}
    counter = itertools.count()
    heap = [(weight * h(state.boxes), h(state.boxes), next(counter), 0, start)]
    expansions = 0
    while heap:
        _, _, _, g, key = heapq.heappop(heap)
        if g > best_g[key]:
            continue
        player, boxes = key
        if all(b in targets for b in boxes):
            return SolveResult(_reconstruct(layout, parent, key), expansions, False)
        expansions += 1
        if expansions > max_expansions:
            return SolveResult(None, expansions, False)
        boxset = frozenset(boxes)
        dist = reachable(tab, player, boxset, n)
        for b in boxes:
            for a, d in enumerate(deltas):
                src, dst = b - d, b + d
                if dist[src] < 0 or walls[dst] or dst in boxset or min_dist[dst] >= INF:
                    continue
                new_boxes = tuple(sorted(dst if x == b else x for x in boxes))
                ng = g + dist[src] + 1
                nkey = (b, new_boxes)
                if ng < best_g.get(nkey, INF):
                    if _frozen(tab, targets, dst, frozenset(new_boxes)):
                        continue
                    best_g[nkey] = ng
                    parent[nkey] = (key, b, a)
                    hv = h(new_boxes)
                    if hv >= INF:
                        continue
                    heapq.heappush(heap, (ng + weight * hv, hv, next(counter), ng, nkey))
    return SolveResult(None, expansions, True)


def _reconstruct(layout: Layout, parent: dict, key: tuple[int, tuple[int, ...]]) -> list[int]:
    pushes = []
    while parent[key] is not None:
        prev, box, action = parent[key]
        pushes.append((prev, box, action))
        key = prev
    plan: list[int] = []
    for (player, boxes), box, action in reversed(pushes):
        walk = walk_path(layout, player, box - layout.deltas[action], frozenset(boxes))
        assert walk is not None, "search produced an unreachable push"
        plan.extend(walk)
        plan.append(action)
    return plan


def expert_plan(layout: Layout, state: State, *, max_expansions: int = 50_000) -> SolveResult:
    """The expert's plan: weighted A* (w=1.5, within 1.5x of the move-optimal length and in practice within a
    fraction of a percent of it) and, if that runs out of budget, a greedier search (w=4) with the rest."""
    first = solve(layout, state, max_expansions=max_expansions, weight=1.5)
    if first.plan is not None or first.exhausted:
        return first
    second = solve(layout, state, max_expansions=max(max_expansions - first.expansions, 1000), weight=4.0)
    return SolveResult(second.plan, first.expansions + second.expansions, second.exhausted)
