"""Seeded households: pick a task triple from the split's pool, the rooms that can host it, a layout, and place
the objects so that the goal does not hold at the start and the expert can reach it."""

from __future__ import annotations

import random
import zlib
from dataclasses import dataclass, field
from functools import cache
from itertools import combinations

from distillgym.envs.household.catalog import (
    APPLIANCE_OF,
    LAMP,
    LOOK,
    OBJECTS,
    PICK_TWO,
    RECEPTACLES,
    ROOMS,
    TASK_TYPES,
    triples,
)
from distillgym.envs.household.world import MIDDLE, Household, HouseState, Item, Receptacle, Task


@dataclass(frozen=True)
class HouseholdConfig:
    """Difficulty options of generated households.

    rooms: rooms per household (1-4); 1 is ALFWorld's single-room scene, more rooms add `go to <room>`.
    clutter: objects besides the task's own, scattered over the household.
    distractors: extra objects of the task object's category (a tomato beside the apple), placed like it.
    max_copies: at most this many instances of the task object (at least 2 for pick-two tasks).
    task_types: the task types drawn from (all six by default, uniformly by type).
    """

    rooms: int = 1
    clutter: int = 10
    distractors: int = 2
    max_copies: int = 3
    task_types: tuple[str, ...] = field(default=TASK_TYPES)

    def __post_init__(self) -> None:
        if not 1 <= int(self.rooms) <= len(ROOMS):
            raise ValueError(f"rooms must be in 1..{len(ROOMS)}, got {self.rooms}")
        if int(self.clutter) < 0 or int(self.distractors) < 0:
            raise ValueError("clutter and distractors must be >= 0")
        if int(self.max_copies) < 1:
            raise ValueError(f"max_copies must be >= 1, got {self.max_copies}")
        bad = [t for t in self.task_types if t not in TASK_TYPES]
        if bad or not self.task_types:
            raise ValueError(f"task_types must be a non-empty subset of {TASK_TYPES}, got {list(self.task_types)}")


def _needs(triple: tuple[str, str, str]) -> list[tuple[str, ...]]:
    """Per requirement, the rooms that can satisfy it (the household must cover every requirement)."""
    task_type, obj, recep = triple
    reqs = []
    # the object must start somewhere other than its destination kind
    starts = {r for kind in OBJECTS[obj].places if kind != recep for r in RECEPTACLES[kind].counts}
    reqs.append(tuple(sorted(starts)))
    if task_type == LOOK:
        reqs.append(tuple(sorted({r for kind in OBJECTS[LAMP].places for r in RECEPTACLES[kind].counts})))
    else:
        reqs.append(tuple(RECEPTACLES[recep].counts))
    if task_type in APPLIANCE_OF:
        reqs.append(tuple(RECEPTACLES[APPLIANCE_OF[task_type]].counts))
    return reqs


@cache
def _room_sets(triple: tuple[str, str, str], n: int) -> tuple[tuple[str, ...], ...]:
    """Every set of `n` rooms that can host the triple."""
    out = []
    for combo in combinations(ROOMS, n):
        if all(set(req) & set(combo) for req in _needs(triple)):
            out.append(combo)
    return tuple(out)


@cache
def feasible(pool: str, n_rooms: int, task_types: tuple[str, ...]) -> dict[str, tuple[tuple[str, str, str], ...]]:
    """Per task type, the pool's triples some `n_rooms`-room household can host."""
    out: dict[str, tuple[tuple[str, str, str], ...]] = {}
    for task_type in task_types:
        ts = tuple(t for t in triples(pool) if t[0] == task_type and _room_sets(t, n_rooms))
        if ts:
            out[task_type] = ts
    return out


def layout_is_unseen(signature: tuple[tuple[str, str, int], ...]) -> bool:
    """The seen/unseen partition of layouts (room, receptacle kind, count): one in five is held out."""
    return zlib.crc32(repr(signature).encode()) % 5 == 0


def generate(seed: int, config: HouseholdConfig, pool: str) -> Household:
    """The household of generation seed `seed` whose task triple and layout come from `pool` (seen/unseen)."""
    rng = random.Random(seed)
    by_type = feasible(pool, config.rooms, tuple(config.task_types))
    if not by_type:
        raise ValueError(f"no {pool} task of types {list(config.task_types)} fits {config.rooms} room(s)")
    task_type = rng.choice(sorted(by_type))
    triple = rng.choice(by_type[task_type])
    _, obj, recep = triple
    rooms = list(rng.choice(_room_sets(triple, config.rooms)))
    rng.shuffle(rooms)
    task = Task(task_type, obj, recep, rng.randrange(2))

    # ----------------------------------------------------------- receptacles: counts per room, required kinds
    required: list[tuple[str, ...]] = []  # per requirement, the receptacle kinds that satisfy it
    required.append(tuple(k for k in OBJECTS[obj].places if k != recep))
    required.append(OBJECTS[LAMP].places if task_type == LOOK else (recep,))
    if task_type in APPLIANCE_OF:
        required.append((APPLIANCE_OF[task_type],))
    want_unseen = pool == "unseen"
    for _attempt in range(1000):
        counts = {
            (room, kind): rng.randint(*spec.counts[room])
            for room in rooms
            for kind, spec in sorted(RECEPTACLES.items())
            if room in spec.counts
        }
        for need in required:
            if not any(counts.get((room, k), 0) for room in rooms for k in need):
                choices = [(room, k) for room in rooms for k in need if (room, k) in counts]
                counts[rng.choice(choices)] = 1
        signature = tuple(sorted((room, kind, c) for (room, kind), c in counts.items() if c))
        if layout_is_unseen(signature) == want_unseen:
            break
    else:  # pragma: no cover - 1000 draws at 1-in-5 odds
        raise RuntimeError(f"no {pool} layout found for seed {seed}")
    receptacles: list[Receptacle] = []
    numbers: dict[str, int] = {}
    for room_i, room in enumerate(rooms):
        for kind, spec in sorted(RECEPTACLES.items()):
            for _ in range(counts.get((room, kind), 0)):
                numbers[kind] = numbers.get(kind, 0) + 1
                receptacles.append(Receptacle(f"{kind} {numbers[kind]}", kind, room_i, spec.openable))

    def spots(kind: str, *, avoid: str = "") -> list[int]:
        return [i for i, r in enumerate(receptacles) if r.kind in OBJECTS[kind].places and r.kind != avoid]

    # ----------------------------------------------------------- objects
    kinds: list[str] = []
    where: list[int] = []
    copies = 2 if task_type == PICK_TWO else 1
    copies = rng.randint(copies, max(copies, config.max_copies))
    if task_type == LOOK:
        lamp_spots = spots(LAMP)
        kinds.append(LAMP)
        where.append(rng.choice(lamp_spots))
    # the task object never starts in a receptacle of the goal's kind, so the goal never holds at the start
    for _ in range(copies):
        kinds.append(obj)
        where.append(rng.choice(spots(obj, avoid=recep)))
    category = OBJECTS[obj].category
    present = {r.kind for r in receptacles}
    kin = [k for k, spec in OBJECTS.items() if spec.category == category and k != obj and spec.pickupable
           and any(p in present for p in spec.places)]
    others = [k for k, spec in OBJECTS.items()
              if k != obj and spec.pickupable and any(p in present for p in spec.places)]
    for pick_from, n in ((kin, config.distractors), (others, config.clutter)):
        for _ in range(n if pick_from else 0):
            kind = rng.choice(pick_from)
            kinds.append(kind)
            where.append(rng.choice(spots(kind)))
    order = list(range(len(kinds)))
    rng.shuffle(order)  # numbering and listing order do not give the task object away
    numbers = {}
    items: list[Item] = []
    loc: list[int] = []
    for j in order:
        numbers[kinds[j]] = numbers.get(kinds[j], 0) + 1
        items.append(Item(f"{kinds[j]} {numbers[kinds[j]]}", kinds[j]))
        loc.append(where[j])
    start = HouseState(room=0, at=MIDDLE, loc=tuple(loc), status=(0,) * len(items), opened=0)
    return Household(tuple(rooms), tuple(receptacles), tuple(items), task, start)
