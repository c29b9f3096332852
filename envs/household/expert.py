"""The household expert: a hand-written planner (in the manner of ALFWorld's handcoded expert) that reads the
full state and returns the next command, and the plan it gives when followed to the goal.

It solves every generated task from the start and recovers from any state an agent can reach: it first puts
down what it should not carry, fetches an instance of the task object (nearest first, opening what is closed),
processes it at the appliance (sink basin, microwave, fridge), and delivers it (or turns on the lamp)."""

from __future__ import annotations

from distillgym.envs.household.catalog import APPLIANCE_OF, LOOK, ON_BIT, PICK_TWO, STATUS_OF
from distillgym.envs.household.world import MIDDLE, Command, Household, HouseState, parse_command

MAX_PLAN = 200


def next_command(house: Household, s: HouseState) -> str | None:
    """The expert's next command from `s`, or None when the goal holds."""
    if house.goal_holds(s):
        return None
    task = house.task
    kinds = house.kinds_of_items
    held = s.holding
    need = STATUS_OF.get(task.type, 0)

    if task.type == LOOK:
        lamps = [i for i, k in enumerate(kinds) if k == task.recep]
        lamp = min(lamps, key=lambda i: _distance(house, s, s.loc[i]))
        if held >= 0 and kinds[held] == task.obj:
            return _walk_to(house, s, s.loc[lamp]) or f"use {house.items[lamp].name}"
        return _drop_or_fetch(house, s, [i for i, k in enumerate(kinds) if k == task.obj])

    # the destination: for pick-two, the receptacle that already holds the most finished objects
    targets = [r for r, rec in enumerate(house.receptacles) if rec.kind == task.recep]

    def done_in(r: int) -> int:
        return sum(1 for i, k in enumerate(kinds) if k == task.obj and s.loc[i] == r and s.status[i] & need == need)

    target = max(targets, key=lambda r: (done_in(r), -_distance(house, s, r)))
    if held >= 0 and kinds[held] == task.obj:
        if s.status[held] & need != need:
            appliance = APPLIANCE_OF[task.type]
            spots = [r for r, rec in enumerate(house.receptacles) if rec.kind == appliance]
            spot = min(spots, key=lambda r: _distance(house, s, r))
            verb = {"pick_clean_then_place_in_recep": "clean", "pick_heat_then_place_in_recep": "heat",
                    "pick_cool_then_place_in_recep": "cool"}[task.type]  # fmt: skip
            return _walk_to(house, s, spot) or f"{verb} {house.items[held].name} with {house.receptacles[spot].name}"
        return _walk_to(house, s, target, open_it=True) or (
            f"move {house.items[held].name} to {house.receptacles[target].name}"
        )
    wanted = [i for i, k in enumerate(kinds) if k == task.obj and not (s.loc[i] == target and
              s.status[i] & need == need and task.type == PICK_TWO)]  # fmt: skip
    return _drop_or_fetch(house, s, wanted)


def _drop_or_fetch(house: Household, s: HouseState, wanted: list[int]) -> str | None:
    held = s.holding
    if held >= 0:  # carrying something useless: put it down where we stand, or at the nearest open surface
        if s.at >= 0 and house.accessible(s, s.at):
            return f"move {house.items[held].name} to {house.receptacles[s.at].name}"
        spots = [r for r in house.room_receptacles[s.room] if not house.receptacles[r].openable]
        return _walk_to(house, s, spots[0]) if spots else None
    if not wanted:
        return None
    item = min(wanted, key=lambda i: (_distance(house, s, s.loc[i]), i))
    r = s.loc[item]
    return _walk_to(house, s, r, open_it=True) or (
        f"take {house.items[item].name} from {house.receptacles[r].name}"
    )


def _distance(house: Household, s: HouseState, r: int) -> int:
    """Commands to reach receptacle `r` and have it open: room change, go to, open."""
    if r < 0:
        return 0
    rec = house.receptacles[r]
    return (rec.room != s.room) + (s.at != r) + (rec.openable and not s.is_open(r))


def _walk_to(house: Household, s: HouseState, r: int, *, open_it: bool = False) -> str | None:
    """The next command towards standing at receptacle `r` (opened when asked), or None when there."""
    rec = house.receptacles[r]
    if rec.room != s.room:
        return f"go to {house.rooms[rec.room]}"
    if s.at != r:
        return f"go to {rec.name}"
    if open_it and rec.openable and not s.is_open(r):
        return f"open {rec.name}"
    return None


_COMMANDS: dict[str, Command] = {}


def _parse(text: str) -> Command:
    cmd = _COMMANDS.get(text)
    if cmd is None:
        cmd = parse_command(text)
        if cmd is None:  # pragma: no cover - the expert only writes grammar commands
            raise AssertionError(f"expert wrote an unparseable command {text!r}")
        if len(_COMMANDS) < 100_000:
            _COMMANDS[text] = cmd
    return cmd


def expert_plan(house: Household, s: HouseState) -> list[str] | None:
    """The expert's commands from `s` to the goal ([] when it holds), or None if it cannot get there."""
    plan: list[str] = []
    while len(plan) < MAX_PLAN:
        cmd = next_command(house, s)
        if cmd is None:
            return plan if house.goal_holds(s) else None
        new, _ = house.apply(s, _parse(cmd))
        if new == s:  # pragma: no cover - a command that changes nothing would loop forever
            return None
        plan.append(cmd)
        s = new
    return None  # pragma: no cover


__all__ = ["MAX_PLAN", "MIDDLE", "ON_BIT", "expert_plan", "next_command"]
