"""The household engine: static layout, immutable state, ALFWorld's command grammar and observation text.

Everything here is plain Python over small tuples, so that a step costs microseconds: a `Household` is built
once per task and never changes; a `HouseState` is a frozen value (cheap to snapshot, hash and compare) that
`apply` replaces. Command semantics follow ALFWorld: the agent teleports with `go to`, carries one object,
must open a closed receptacle before taking from or putting into it, and anything that does not apply gets
"Nothing happens."
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cached_property

from distillgym.envs.core.parsing import unwrap_action
from distillgym.envs.household.catalog import (
    CLEAN,
    CLEAN_BIT,
    COOL,
    COOL_BIT,
    HEAT,
    HOT_BIT,
    LOOK,
    OBJECTS,
    ON_BIT,
    PICK_TWO,
    SLICED_BIT,
    STATUS_OF,
    ObjectKind,
    task_description,
)

NOTHING = "Nothing happens."
MIDDLE = -1  # `HouseState.at` when the agent stands in the middle of a room
HELD = -1  # `HouseState.loc[i]` when the agent carries object i


@dataclass(frozen=True)
class Receptacle:
    name: str  # "cabinet 3"
    kind: str  # "cabinet"
    room: int
    openable: bool


@dataclass(frozen=True)
class Item:
    name: str  # "apple 1"
    kind: str  # "apple"

    @property
    def spec(self) -> ObjectKind:
        return OBJECTS[self.kind]


@dataclass(frozen=True)
class Task:
    type: str  # one of catalog.TASK_TYPES
    obj: str  # object kind
    recep: str  # receptacle kind (the light source's kind for look_at_obj_in_light)
    variant: int = 0  # which of ALFWorld's phrasings

    @property
    def triple(self) -> tuple[str, str, str]:
        return (self.type, self.obj, self.recep)

    @property
    def description(self) -> str:
        return task_description(self.type, self.obj, self.recep, self.variant)


@dataclass(frozen=True)
class HouseState:
    room: int  # the room the agent is in
    at: int  # receptacle index the agent stands at, or MIDDLE
    loc: tuple[int, ...]  # per item: receptacle index, or HELD
    status: tuple[int, ...]  # per item: CLEAN_BIT | HOT_BIT | COOL_BIT | SLICED_BIT | ON_BIT
    opened: int  # bit r set when receptacle r is open
    holding: int = -1  # the carried item's index (the one whose loc is HELD), or -1

    def is_open(self, r: int) -> bool:
        return bool(self.opened >> r & 1)


# ----------------------------------------------------------------------------- the command grammar
@dataclass(frozen=True)
class Command:
    verb: str  # go, take, move, open, close, heat, cool, clean, slice, use, examine, inventory, look, help
    a: str = ""  # first argument, as written (normalized)
    b: str = ""  # second argument


_SPACES = re.compile(r"\s+")
_NAME = r"([a-z]+(?: ?\d+)?)"  # "apple 1", "apple1" or "apple"
_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (verb, re.compile(pattern))
    for verb, pattern in (
        ("go", rf"^(?:go to|goto|go|walk to|move to|navigate to) (?:the )?{_NAME}$"),
        ("take", rf"^(?:take|pick up|get|grab) (?:the )?{_NAME}(?: (?:from|off|out of) (?:the )?{_NAME})?$"),
        ("move", rf"^(?:move|put|place|insert) (?:the )?{_NAME} (?:to|in|into|on|onto|in/on) (?:the )?{_NAME}$"),
        ("open", rf"^open (?:the )?{_NAME}$"),
        ("close", rf"^close (?:the )?{_NAME}$"),
        ("heat", rf"^heat (?:the )?{_NAME} (?:with|using|in) (?:the )?{_NAME}$"),
        ("cool", rf"^cool (?:the )?{_NAME} (?:with|using|in) (?:the )?{_NAME}$"),
        ("clean", rf"^clean (?:the )?{_NAME} (?:with|using|in) (?:the )?{_NAME}$"),
        ("slice", rf"^(?:slice|cut) (?:the )?{_NAME} (?:with|using) (?:the )?{_NAME}$"),
        ("use", rf"^(?:use|turn on|toggle|switch on) (?:the )?{_NAME}$"),
        ("examine", rf"^(?:examine|x|look at|inspect) (?:the )?{_NAME}$"),
        ("inventory", r"^(?:inventory|inv|i)$"),
        ("look", r"^(?:look|l|look around)$"),
        ("help", r"^help$"),
    )
)
MAX_COMMAND_CHARS = 256


def parse_command(text: object) -> Command | None:
    """The grammar command `text` names, or None. Tolerant of case, spacing, trailing punctuation, an
    `<action>` tag, "apple1" for "apple 1"; never raises."""
    text = unwrap_action(text, MAX_COMMAND_CHARS)
    if text is None:
        return None
    text = _SPACES.sub(" ", text.strip("\"'`[](){}.,;:!*").strip()).lower()
    if not text:
        return None
    for verb, pattern in _PATTERNS:
        m = pattern.match(text)
        if m:
            args = [_canon(g) for g in m.groups() if g is not None]
            return Command(verb, *args)
    return None


def _canon(name: str) -> str:
    """"apple1" -> "apple 1"."""
    m = re.match(r"^([a-z]+) ?(\d+)$", name)
    return f"{m.group(1)} {m.group(2)}" if m else name


def _a_list(names: list[str]) -> str:
    """ALFWorld's enumeration: "a x", "a x, and a y", "a x, a y, and a z"."""
    if not names:
        return "nothing"
    if len(names) == 1:
        return f"a {names[0]}"
    return ", ".join(f"a {n}" for n in names[:-1]) + f", and a {names[-1]}"


# ----------------------------------------------------------------------------- the household
@dataclass(frozen=True)
class Household:
    """A generated household: rooms, receptacles, items, the task, and the state it starts in."""

    rooms: tuple[str, ...]
    receptacles: tuple[Receptacle, ...]
    items: tuple[Item, ...]
    task: Task
    start: HouseState

    # --------------------------------------------------------------- lookups (built once per household)
    @cached_property
    def recep_index(self) -> dict[str, int]:
        return {r.name: i for i, r in enumerate(self.receptacles)}

    @cached_property
    def item_index(self) -> dict[str, int]:
        return {it.name: i for i, it in enumerate(self.items)}

    @cached_property
    def room_receptacles(self) -> tuple[tuple[int, ...], ...]:
        """Per room, its receptacles in ALFWorld's listing order (kind, then number descending)."""
        out = []
        for room in range(len(self.rooms)):
            idx = [i for i, r in enumerate(self.receptacles) if r.room == room]
            idx.sort(key=lambda i: (self.receptacles[i].kind, -int(self.receptacles[i].name.rsplit(" ", 1)[1])))
            out.append(tuple(idx))
        return tuple(out)

    @cached_property
    def kinds_of_items(self) -> tuple[str, ...]:
        return tuple(it.kind for it in self.items)

    @cached_property
    def task_items(self) -> tuple[int, ...]:
        """Items of the task object's kind."""
        return tuple(i for i, it in enumerate(self.items) if it.kind == self.task.obj)

    @cached_property
    def task_targets(self) -> tuple[int, ...]:
        """Receptacles of the task's destination kind (none for look tasks)."""
        return tuple(r for r, rec in enumerate(self.receptacles) if rec.kind == self.task.recep)

    @cached_property
    def task_lamps(self) -> tuple[int, ...]:
        """Items of the task's light-source kind (look tasks only)."""
        return tuple(i for i, it in enumerate(self.items) if it.kind == self.task.recep)

    # --------------------------------------------------------------- text
    def room_phrase(self, room: int) -> str:
        return "a room" if len(self.rooms) == 1 else f"the {self.rooms[room]}"

    def intro(self, state: HouseState) -> str:
        """The first observation: welcome banner, the room, the task (ALFWorld's wording)."""
        return f"-= Welcome to TextWorld, ALFRED! =-\n\n{self.look_around(state)}\n\nYour task is to: " + (
            self.task.description
        )

    def look_around(self, state: HouseState) -> str:
        names = [self.receptacles[i].name for i in self.room_receptacles[state.room]]
        text = f"You are in the middle of {self.room_phrase(state.room)}. Looking quickly around you, you see " + (
            f"{_a_list(names)}."
        )
        others = [r for i, r in enumerate(self.rooms) if i != state.room]
        if others:
            rest = [f"the {r}" for r in others]
            text += " From here you can go to " + (rest[0] if len(rest) == 1 else ", ".join(rest[:-1])
                                                   + f" and {rest[-1]}") + "."
        return text

    def contents(self, state: HouseState, r: int) -> list[int]:
        return [i for i, where in enumerate(state.loc) if where == r]

    def describe_receptacle(self, state: HouseState, r: int) -> str:
        rec = self.receptacles[r]
        names = [self.items[i].name for i in self.contents(state, r)]
        if rec.openable:
            if not state.is_open(r):
                return f"The {rec.name} is closed."
            return f"The {rec.name} is open. In it, you see {_a_list(names)}."
        return f"On the {rec.name}, you see {_a_list(names)}."

    def item_phrase(self, state: HouseState, i: int) -> str:
        """How `examine` describes an item: its status in words."""
        bits = state.status[i]
        words = [w for bit, w in ((CLEAN_BIT, "clean"), (HOT_BIT, "hot"), (COOL_BIT, "cool"), (SLICED_BIT, "sliced"))
                 if bits & bit]
        if self.items[i].spec.light:
            return f"This is a {self.items[i].name}. It is turned {'on' if bits & ON_BIT else 'off'}."
        if not words:
            return f"There's nothing special about {self.items[i].name}."
        return f"This is a {' and '.join(words)} {self.items[i].name}."

    # --------------------------------------------------------------- goal
    def goal_holds(self, state: HouseState) -> bool:
        task = self.task
        if task.type == LOOK:
            held = state.holding
            if held < 0 or held not in self.task_items or state.at < 0:
                return False
            return any(state.loc[i] == state.at and state.status[i] & ON_BIT for i in self.task_lamps)
        need = STATUS_OF.get(task.type, 0)
        targets = self.task_targets
        done = [state.loc[i] for i in self.task_items if state.loc[i] in targets and state.status[i] & need == need]
        if task.type == PICK_TWO:
            return len(done) != len(set(done))  # two in the same receptacle
        return bool(done)

    # --------------------------------------------------------------- dynamics
    def accessible(self, state: HouseState, r: int) -> bool:
        return not self.receptacles[r].openable or state.is_open(r)

    def _visible_item(self, state: HouseState, name: str) -> int:
        """The item `name` names that the agent can reach (at its receptacle or held), else -1. A bare kind
        ("apple") resolves when exactly one reachable item has it."""
        reachable = [i for i, where in enumerate(state.loc) if where == HELD or
                     (where == state.at and where >= 0 and self.accessible(state, where))]
        return _resolve(name, reachable, self.items)

    def _room_receptacle(self, state: HouseState, name: str) -> int:
        return _resolve(name, list(self.room_receptacles[state.room]), self.receptacles)

    def apply(self, state: HouseState, cmd: Command) -> tuple[HouseState, str]:
        """(next state, observation text) of one command; the state is unchanged when nothing happens."""
        verb = cmd.verb
        if verb == "look":
            if state.at == MIDDLE:
                return state, self.look_around(state)
            return state, f"You are facing the {self.receptacles[state.at].name}. Next to it, you see nothing."
        if verb == "inventory":
            held = state.holding
            if held < 0:
                return state, "You are not carrying anything."
            return state, f"You are carrying: a {self.items[held].name}."
        if verb == "help":
            return state, HELP_TEXT
        if verb == "go":
            return self._go(state, cmd.a)
        if verb == "examine":
            r = self._room_receptacle(state, cmd.a)
            if r >= 0 and r == state.at:
                return state, self.describe_receptacle(state, r)
            i = self._visible_item(state, cmd.a)
            if i >= 0:
                return state, self.item_phrase(state, i)
            return state, NOTHING
        at = state.at
        if at == MIDDLE:
            return state, NOTHING
        rec = self.receptacles[at]
        if verb in ("open", "close"):
            if self._room_receptacle(state, cmd.a) != at or not rec.openable:
                return state, NOTHING
            if verb == "open":
                if state.is_open(at):
                    return state, NOTHING
                state = replace(state, opened=state.opened | 1 << at)
                names = [self.items[i].name for i in self.contents(state, at)]
                return state, f"You open the {rec.name}. The {rec.name} is open. In it, you see {_a_list(names)}."
            if not state.is_open(at):
                return state, NOTHING
            return replace(state, opened=state.opened & ~(1 << at)), f"You close the {rec.name}."
        if verb == "take":
            if cmd.b and self._room_receptacle(state, cmd.b) != at:
                return state, NOTHING
            if state.holding >= 0 or not self.accessible(state, at):
                return state, NOTHING
            i = _resolve(cmd.a, self.contents(state, at), self.items)
            if i < 0 or not self.items[i].spec.pickupable:
                return state, NOTHING
            loc = list(state.loc)
            loc[i] = HELD
            text = f"You pick up the {self.items[i].name} from the {rec.name}."
            return replace(state, loc=tuple(loc), holding=i), text
        if verb == "move":
            held = state.holding
            if held < 0 or _resolve(cmd.a, [held], self.items) != held:
                return state, NOTHING
            if self._room_receptacle(state, cmd.b) != at or not self.accessible(state, at):
                return state, NOTHING
            loc = list(state.loc)
            loc[held] = at
            text = f"You move the {self.items[held].name} to the {rec.name}."
            return replace(state, loc=tuple(loc), holding=-1), text
        if verb in ("heat", "cool", "clean"):
            held = state.holding
            if held < 0 or _resolve(cmd.a, [held], self.items) != held:
                return state, NOTHING
            if self._room_receptacle(state, cmd.b) != at or not _can_process(verb, self.items[held].kind, rec.kind):
                return state, NOTHING
            bit = {"heat": HOT_BIT, "cool": COOL_BIT, "clean": CLEAN_BIT}[verb]
            status = list(state.status)
            # heating undoes cooling and the reverse, as in ALFWorld's PDDL effects
            undo = {"heat": COOL_BIT, "cool": HOT_BIT, "clean": 0}[verb]
            status[held] = (status[held] | bit) & ~undo
            return replace(state, status=tuple(status)), f"You {verb} the {self.items[held].name} using the {rec.name}."
        if verb == "slice":
            held = state.holding
            if held < 0 or not self.items[held].spec.sharp or _resolve(cmd.b, [held], self.items) != held:
                return state, NOTHING
            if not self.accessible(state, at):
                return state, NOTHING
            i = _resolve(cmd.a, self.contents(state, at), self.items)
            if i < 0 or not self.items[i].spec.sliceable or state.status[i] & SLICED_BIT:
                return state, NOTHING
            status = list(state.status)
            status[i] |= SLICED_BIT
            return replace(state, status=tuple(status)), (
                f"You slice the {self.items[i].name} with the {self.items[held].name}."
            )
        if verb == "use":
            i = _resolve(cmd.a, self.contents(state, at), self.items)
            if i < 0 or not self.items[i].spec.light or state.status[i] & ON_BIT:
                return state, NOTHING
            status = list(state.status)
            status[i] |= ON_BIT
            return replace(state, status=tuple(status)), f"You turn on the {self.items[i].name}."
        return state, NOTHING

    def _go(self, state: HouseState, name: str) -> tuple[HouseState, str]:
        if name.startswith("the "):
            name = name[4:]
        if name in self.rooms:
            room = self.rooms.index(name)
            if room == state.room:
                return state, NOTHING
            new = replace(state, room=room, at=MIDDLE)
            return new, f"You arrive at the {name}. " + self.look_around(new).split(". ", 1)[1]
        r = self._room_receptacle(state, name)
        if r < 0 or r == state.at:
            return state, NOTHING
        new = replace(state, at=r)
        return new, f"You arrive at {self.receptacles[r].name}. {self.describe_receptacle(new, r)}"

    # --------------------------------------------------------------- admissible commands
    def admissible(self, state: HouseState) -> list[str]:
        """Every command that changes something or reports something, in ALFWorld's phrasing."""
        out = [f"go to {self.receptacles[r].name}" for r in self.room_receptacles[state.room] if r != state.at]
        out += [f"go to {room}" for i, room in enumerate(self.rooms) if i != state.room]
        out += ["inventory", "look"]
        held = state.holding
        if held >= 0:
            out.append(f"examine {self.items[held].name}")
        at = state.at
        if at >= 0:
            rec = self.receptacles[at]
            out.append(f"examine {rec.name}")
            if rec.openable:
                out.append(f"{'close' if state.is_open(at) else 'open'} {rec.name}")
            if self.accessible(state, at):
                inside = self.contents(state, at)
                for i in inside:
                    item = self.items[i]
                    if item.spec.light:
                        if not state.status[i] & ON_BIT:
                            out.append(f"use {item.name}")
                    elif held < 0:
                        out.append(f"take {item.name} from {rec.name}")
                if held >= 0:
                    hname = self.items[held].name
                    out.append(f"move {hname} to {rec.name}")
                    if self.items[held].spec.sharp:
                        out += [f"slice {self.items[i].name} with {hname}" for i in inside
                                if self.items[i].spec.sliceable and not state.status[i] & SLICED_BIT]
            if held >= 0:  # appliances work closed, as in ALFWorld ("cool X with fridge 1" right after arriving)
                for verb in ("clean", "heat", "cool"):
                    if _can_process(verb, self.items[held].kind, rec.kind):
                        out.append(f"{verb} {self.items[held].name} with {rec.name}")
        return out


def _can_process(verb: str, obj_kind: str, recep_kind: str) -> bool:
    spec = OBJECTS[obj_kind]
    if verb == "clean":
        return spec.cleanable and recep_kind in ("sinkbasin", "bathtubbasin")
    if verb == "heat":
        return spec.heatable and recep_kind == "microwave"
    if verb == "cool":
        return spec.coolable and recep_kind == "fridge"
    return False


def _resolve(name: str, candidates: Sequence[int], things: Sequence[Item] | Sequence[Receptacle]) -> int:
    """The candidate whose name is `name`; a bare kind resolves when exactly one candidate has it; else -1."""
    if not name:
        return -1
    if " " in name:
        for i in candidates:
            if things[i].name == name:
                return i
        return -1
    hits = [i for i in candidates if things[i].kind == name]
    return hits[0] if len(hits) == 1 else -1


HELP_TEXT = (
    "Available commands:\n"
    "  look: look around your current location\n"
    "  inventory: check your current inventory\n"
    "  go to (receptacle): move to a receptacle\n"
    "  open (receptacle): open a receptacle\n"
    "  close (receptacle): close a receptacle\n"
    "  take (object) from (receptacle): take an object from a receptacle\n"
    "  move (object) to (receptacle): place an object in or on a receptacle\n"
    "  examine (something): examine a receptacle or an object\n"
    "  use (object): use an object\n"
    "  heat (object) with (receptacle): heat an object using a receptacle\n"
    "  clean (object) with (receptacle): clean an object using a receptacle\n"
    "  cool (object) with (receptacle): cool an object using a receptacle\n"
    "  slice (object) with (object): slice an object using a sharp object"
)

__all__ = [
    "CLEAN",
    "COOL",
    "HEAT",
    "HELD",
    "MIDDLE",
    "NOTHING",
    "Command",
    "HouseState",
    "Household",
    "Item",
    "Receptacle",
    "Task",
    "parse_command",
]
