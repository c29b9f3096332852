"""The household expert: a hand-written planner (in the manner of ALFWorld's handcoded expert) that reads the
full state and returns the next command, and the plan it gives when followed to the goal.

It solves every generated task from the start and recovers from any state an agent can reach: it first puts
down what it should not carry, fetches an instance of the task object (nearest first, opening what is closed),
processes it at the appliance (sink basin, microwave, fridge), and delivers it (or turns on the lamp).

Planning works on structured steps `(verb, a, b)` and applies their effects directly (no parsing, no text), so
that re-planning after every off-plan move stays cheap; the environment's tests check that every plan, played
through the real command interpreter, reaches the goal.
"""

from __future__ import annotations

from dataclasses import replace

from distillgym.envs.household.catalog import APPLIANCE_OF, CLEAN, COOL, COOL_BIT, HEAT, HOT_BIT, LOOK, ON_BIT, PICK_TWO
from distillgym.envs.household.catalog import STATUS_OF as _STATUS_OF
from distillgym.envs.household.world import HELD, MIDDLE, Household, HouseState

MAX_PLAN = 200
Step = tuple[str, int, int]  # (verb, a, b): go-room (room), go (recep), open (recep), take (item, recep),
# move (item, recep), clean/heat/cool (item, recep), use (lamp item)
_VERB_OF = {CLEAN: "clean", HEAT: "heat", COOL: "cool"}


def _decide(house: Household, s: HouseState) -> Step | None:
    """The expert's next step from `s`, or None when the goal holds (or nothing is left to try)."""
    if house.goal_holds(s):
        return None
    task = house.task
    held = s.holding
    need = _STATUS_OF.get(task.type, 0)
    task_items = house.task_items

    if task.type == LOOK:
        lamp = min(house.task_lamps, key=lambda i: _distance(house, s, s.loc[i]))
        if held >= 0 and held in task_items:
            return _walk_to(house, s, s.loc[lamp]) or ("use", lamp, s.loc[lamp])
        return _drop_or_fetch(house, s, list(task_items))

    # the destination: for pick-two, the receptacle that already holds the most finished objects
    def done_in(r: int) -> int:
        return sum(1 for i in task_items if s.loc[i] == r and s.status[i] & need == need)

    target = max(house.task_targets, key=lambda r: (done_in(r), -_distance(house, s, r)))
    if held >= 0 and held in task_items:
        if s.status[held] & need != need:
            appliance = APPLIANCE_OF[task.type]
            spots = [r for r, rec in enumerate(house.receptacles) if rec.kind == appliance]
            spot = min(spots, key=lambda r: _distance(house, s, r))
            return _walk_to(house, s, spot) or (_VERB_OF[task.type], held, spot)
        return _walk_to(house, s, target, open_it=True) or ("move", held, target)
    wanted = [i for i in task_items
              if not (task.type == PICK_TWO and s.loc[i] == target and s.status[i] & need == need)]
    return _drop_or_fetch(house, s, wanted)


def _drop_or_fetch(house: Household, s: HouseState, wanted: list[int]) -> Step | None:
    held = s.holding
    if held >= 0:  # carrying something useless: put it down where we stand, or at the nearest open surface
        if s.at >= 0 and house.accessible(s, s.at):
            return ("move", held, s.at)
        spots = [r for r in house.room_receptacles[s.room] if not house.receptacles[r].openable]
        return _walk_to(house, s, spots[0]) if spots else None
    if not wanted:
        return None
    item = min(wanted, key=lambda i: (_distance(house, s, s.loc[i]), i))
    r = s.loc[item]
    return _walk_to(house, s, r, open_it=True) or ("take", item, r)


def _distance(house: Household, s: HouseState, r: int) -> int:
    """Commands to reach receptacle `r` and have it open: room change, go to, open."""
    if r < 0:
        return 0
    rec = house.receptacles[r]
    return (rec.room != s.room) + (s.at != r) + (rec.openable and not s.is_open(r))


def _walk_to(house: Household, s: HouseState, r: int, *, open_it: bool = False) -> Step | None:
    """The next step towards standing at receptacle `r` (opened when asked), or None when there."""
    rec = house.receptacles[r]
    if rec.room != s.room:
        return ("go-room", rec.room, -1)
    if s.at != r:
        return ("go", r, -1)
    if open_it and rec.openable and not s.is_open(r):
        return ("open", r, -1)
    return None


def _advance(house: Household, s: HouseState, step: Step) -> HouseState:
    """The effect of one expert step (the same effect the command interpreter gives its text)."""
    verb, a, b = step
    if verb == "go-room":
        return replace(s, room=a, at=MIDDLE)
    if verb == "go":
        return replace(s, at=a)
    if verb == "open":
        return replace(s, opened=s.opened | 1 << a)
    if verb in ("take", "move"):
        loc = list(s.loc)
        loc[a] = HELD if verb == "take" else b
        return replace(s, loc=tuple(loc), holding=a if verb == "take" else -1)
    status = list(s.status)
    if verb == "use":
        status[a] |= ON_BIT
    else:
        bit, undo = {"clean": (1, 0), "heat": (HOT_BIT, COOL_BIT), "cool": (COOL_BIT, HOT_BIT)}[verb]
        status[a] = (status[a] | bit) & ~undo
    return replace(s, status=tuple(status))


def _text(house: Household, step: Step) -> str:
    verb, a, b = step
    if verb == "go-room":
        return f"go to {house.rooms[a]}"
    if verb in ("go", "open"):
        return f"{verb} to {house.receptacles[a].name}" if verb == "go" else f"open {house.receptacles[a].name}"
    if verb == "use":
        return f"use {house.items[a].name}"
    joiner = {"take": "from", "move": "to"}.get(verb, "with")
    return f"{verb} {house.items[a].name} {joiner} {house.receptacles[b].name}"


def next_command(house: Household, s: HouseState) -> str | None:
    """The expert's next command from `s`, or None when the goal holds."""
    step = _decide(house, s)
    return None if step is None else _text(house, step)


def expert_plan(house: Household, s: HouseState) -> list[str] | None:
    """The expert's commands from `s` to the goal ([] when it holds), or None if it cannot get there."""
    steps: list[Step] = []
    while len(steps) < MAX_PLAN:
        step = _decide(house, s)
        if step is None:
            return [_text(house, st) for st in steps] if house.goal_holds(s) else None
        steps.append(step)
        s = _advance(house, s, step)
    return None  # pragma: no cover - plans are a few dozen steps at most


__all__ = ["MAX_PLAN", "expert_plan", "next_command"]
