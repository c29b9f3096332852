"""Export a generated household task as a real TextWorld game (Inform7, compiled to `.z8`), translate native command
sequences to that game's commands, and play them: the cross-check and the benchmark of the native engine against
TextWorld on the equivalent game.

The game runs on TextWorld's knowledge base extended with ALFWorld's verbs (`tw_kb/logic/household.twl`): sink
basins clean, microwaves heat (and undo cooling), fridges cool (and undo heating), a held sharp object slices, `use`
turns a desk lamp on, the player carries one object at a time and stands at one receptacle (see Positions). Goals
are kind-level, so the quest has one win event per concrete instance combination (each apple in each fridge, each
pair of apples in the same fridge, each apple held at the receptacle of each lamp, lit): any valid solution wins.

Names: TextWorld shows the native names ("apple 1", "cabinet 3", rooms "kitchen"), except the two receptacle kinds
whose first nine letters collide with an object kind in the Z-machine's dictionary (which keeps 9 letters per word):
"toiletpaperhanger N" -> "paperhanger N", "handtowelholder N" -> "towelring N" (see `tw_name`).

Positions: standard TextWorld has none inside a room, so dropping `go to <receptacle>` is not consistent (a
native command at another receptacle than the agent's would succeed, and look_at_obj_in_light, which reads the
position, would win early). The knowledge base adds ALFWorld's: `go to <receptacle>` makes it the player's spot,
every command acting on a receptacle needs the player at it, moving to another room clears it. So translation is
one TextWorld command per native command (`to_textworld_commands`), and the outcomes match step for step.

Needs the `textworld` extra (`pip install distillgym[textworld]`); imported lazily so the household package does
not depend on it.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Iterable, Sequence
from functools import cache
from itertools import combinations
from pathlib import Path
from typing import TYPE_CHECKING, Any

from distillgym.envs.household.catalog import (
    CLEAN_BIT,
    COOL_BIT,
    HOT_BIT,
    LOOK,
    ON_BIT,
    PICK_TWO,
    SLICED_BIT,
    STATUS_OF,
)
from distillgym.envs.household.world import HELD, Household, HouseState, parse_command

if TYPE_CHECKING:  # pragma: no cover
    import textworld

#: the knowledge base (TextWorld's logic without food, plus household.twl); shipped as package data
KB_DIR = Path(__file__).with_name("tw_kb")
#: bump when the exported game changes for the same household (invalidates cached games)
EXPORT_VERSION = 1
#: TextWorld names of the receptacle kinds whose first 9 letters collide with an object kind's
TW_KIND_NAMES: dict[str, str] = {"toiletpaperhanger": "paperhanger", "handtowelholder": "towelring"}
#: exits between rooms i < j (direction from i, direction from j): every pair of up to 4 rooms is adjacent, each
#: room uses each direction at most once, so `go to <room>` is always one move
ROOM_EXITS: dict[tuple[int, int], tuple[str, str]] = {
    (0, 1): ("east", "west"),
    (2, 3): ("east", "west"),
    (0, 2): ("north", "south"),
    (1, 3): ("north", "south"),
    (0, 3): ("south", "north"),
    (1, 2): ("south", "north"),
}
#: status bits -> the TextWorld predicates that hold them
_STATUS_FACTS: tuple[tuple[int, str], ...] = (
    (CLEAN_BIT, "clean"), (HOT_BIT, "hot"), (COOL_BIT, "cool"), (SLICED_BIT, "sliced"),
)


def tw_name(name: str) -> str:
    """The TextWorld name of a native receptacle, item or room name ("apple 1" -> "apple 1")."""
    kind, sep, num = name.rpartition(" ")
    if not sep:
        return TW_KIND_NAMES.get(name, name)
    return f"{TW_KIND_NAMES.get(kind, kind)} {num}"


def exit_direction(src: int, dst: int) -> str:
    """The exit that leads from room `src` to room `dst` in an exported game."""
    if (src, dst) in ROOM_EXITS:
        return ROOM_EXITS[src, dst][0]
    return ROOM_EXITS[dst, src][1]


@cache
def knowledge_base() -> Any:
    """TextWorld's knowledge base with the household extension, loaded once."""
    from textworld.generator.data import KnowledgeBase

    return KnowledgeBase.load(target_dir=str(KB_DIR))


def household_hash(house: Household, state: HouseState | None = None) -> str:
    """A stable digest of what the exported game depends on (layout, task, state, exporter version, KB)."""
    h = hashlib.sha256()
    h.update(f"v{EXPORT_VERSION}|{house.rooms!r}|{house.receptacles!r}|{house.items!r}|".encode())
    h.update(f"{house.task.triple!r}|{house.task.description}|{state or house.start!r}".encode())
    h.update(_kb_digest().encode())
    return h.hexdigest()[:20]


@cache
def _kb_digest() -> str:
    """A digest of the knowledge base files, so that editing them invalidates cached games."""
    h = hashlib.sha256()
    for f in sorted(KB_DIR.rglob("*.tw[lg]")):
        h.update(f.relative_to(KB_DIR).as_posix().encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


def _room_desc(house: Household, room: int) -> str:
    """The native engine's look-around text of a room, in TextWorld names."""
    names = [tw_name(house.receptacles[r].name) for r in house.room_receptacles[room]]
    listing = f"a {names[0]}" if len(names) == 1 else ", ".join(f"a {n}" for n in names[:-1]) + f", and a {names[-1]}"
    text = f"You are in the middle of {house.room_phrase(room)}. Looking quickly around you, you see {listing}."
    others = [f"the {name} ({exit_direction(room, k)})" for k, name in enumerate(house.rooms) if k != room]
    return text + (" From here you can go to " + ", ".join(others) + "." if others else "")


def _receptacle_type(kind: str, openable: bool) -> str:
    if kind == "fridge":
        return "fridge"
    if kind == "microwave":
        return "microwave"
    if kind in ("sinkbasin", "bathtubbasin"):
        return "sink"
    return "c" if openable else "s"


def _item_type(house: Household, i: int) -> str:
    spec = house.items[i].spec
    if spec.light:
        return "lamp"
    return "knife" if spec.sharp else "o"


def build_game(house: Household, state: HouseState | None = None) -> textworld.Game:
    """The TextWorld `Game` of a household (not compiled): rooms, receptacles, items and the win events."""
    import textworld
    from textworld.generator.game import Event, Quest

    state = state or house.start
    options = textworld.GameOptions()
    options.kb = knowledge_base()
    maker = textworld.GameMaker(options)

    rooms = [maker.new_room(name, desc=_room_desc(house, k)) for k, name in enumerate(house.rooms)]
    for (i, j), (di, dj) in ROOM_EXITS.items():
        if j < len(rooms):
            maker.connect(getattr(rooms[i], di), getattr(rooms[j], dj))
    maker.set_player(rooms[state.room])

    receps = []
    for r, rec in enumerate(house.receptacles):
        entity = maker.new(_receptacle_type(rec.kind, rec.openable), name=tw_name(rec.name), desc="")
        if rec.openable:
            entity.add_property("open" if state.is_open(r) else "closed")
        if r == state.at:
            entity.add_property("spot")
        rooms[rec.room].add(entity)
        receps.append(entity)

    items = []
    for i, item in enumerate(house.items):
        spec = item.spec
        entity = maker.new(_item_type(house, i), name=tw_name(item.name), desc="")
        for flag, prop in ((spec.cleanable, "cleanable"), (spec.heatable, "heatable"), (spec.coolable, "coolable"),
                           (spec.sliceable, "sliceable")):
            if flag:
                entity.add_property(prop)
        for bit, prop in _STATUS_FACTS:
            if state.status[i] & bit:
                entity.add_property(prop)
        if spec.light and state.status[i] & ON_BIT:
            entity.add_property("lit")
        where = state.loc[i]
        (maker.inventory if where == HELD else receps[where]).add(entity)
        items.append(entity)

    def placed(i: int, r: int) -> Any:
        return maker.new_fact("in" if house.receptacles[r].openable else "on", items[i], receps[r])

    task = house.task
    wanted = [i for i, it in enumerate(house.items) if it.kind == task.obj]
    events: list[list[Any]] = []
    if task.type == LOOK:  # holding the object at the receptacle of a lit lamp (lamps are fixed)
        lamps = [i for i, it in enumerate(house.items) if it.kind == task.recep]
        for i in wanted:
            for j in lamps:
                events.append([maker.new_fact("in", items[i], maker.inventory), maker.new_fact("lit", items[j]),
                               maker.new_fact("spot", receps[state.loc[j]])])
    else:
        status = [prop for bit, prop in _STATUS_FACTS if STATUS_OF.get(task.type, 0) & bit]
        targets = [r for r, rec in enumerate(house.receptacles) if rec.kind == task.recep]
        for r in targets:
            if task.type == PICK_TWO:
                events += [[placed(a, r), placed(b, r)] for a, b in combinations(wanted, 2)]
            else:
                events += [[placed(i, r), *(maker.new_fact(p, items[i]) for p in status)] for i in wanted]
    if not events:
        raise ValueError(f"household task {task.triple} has no instance to win with")
    maker.quests = [Quest(win_events=[Event(conditions=c) for c in events], desc=task.description)]

    game = maker.build()
    game.objective = f"Your task is to: {task.description}"
    game.metadata["household_hash"] = household_hash(house, state)
    game.metadata["household_task"] = list(task.triple)
    return game


def export_textworld(house: Household, path: str | os.PathLike[str], *, state: HouseState | None = None) -> Path:
    """Build and compile the household's TextWorld game; returns the `.z8` path (its `.json` lies beside it).

    `path` is a `.z8` file, or a directory where the game is named by the household's hash. A game already there
    for the same household (same hash in its `.json`) is reused, so repeated exports cost a file read."""
    from textworld.generator import compile_game
    from textworld.generator.game import GameOptions

    digest = household_hash(house, state)
    target = Path(path)
    if target.suffix != ".z8":
        target = target / f"household-{digest}.z8"
    target.parent.mkdir(parents=True, exist_ok=True)
    meta = target.with_suffix(".json")
    if target.is_file() and meta.is_file():
        try:
            if json.loads(meta.read_text())["metadata"].get("household_hash") == digest:
                return target
        except (OSError, ValueError, KeyError):
            pass  # unreadable: rebuild

    game = build_game(house, state)
    # compile under a private name, then move into place: concurrent exporters never read a half-written game
    tmp = target.with_name(f".{target.stem}.{os.getpid()}.tmp.z8")
    options = GameOptions()
    options.path = str(tmp)
    options.force_recompile = True
    try:
        compile_game(game, options)
        os.replace(tmp.with_suffix(".json"), meta)
        os.replace(tmp, target)
    finally:
        for leftover in (tmp, tmp.with_suffix(".json"), tmp.with_suffix(".ni")):
            leftover.unlink(missing_ok=True)
    return target


# ----------------------------------------------------------------------------- commands
def to_textworld_commands(house: Household, commands: Iterable[str], *, state: HouseState | None = None) -> list[str]:
    """The TextWorld commands of a native command sequence played from `state` (default: the start), one for one.

    `go to <room>` becomes the exit towards it (`go east`; the current room stays `go to <room>`, which leaves the
    spot), `move X to R` becomes `insert X into R` (openable R) or `put X on R`, every other command keeps its words
    (`go to <receptacle>`, `take X from R`, `open R`, `heat X with R`, `slice X with K`, `use L`, ...), and names go
    through `tw_name`. Unparseable commands pass through unchanged, so both engines refuse them.
    """
    room = (state or house.start).room
    out: list[str] = []
    for text in commands:
        cmd = parse_command(text)
        if cmd is None:
            out.append(str(text))
            continue
        verb, a, b = cmd.verb, tw_name(cmd.a), tw_name(cmd.b)
        if verb == "go":
            name = cmd.a[4:] if cmd.a.startswith("the ") else cmd.a
            if name in house.rooms and house.rooms.index(name) != room:
                dest = house.rooms.index(name)
                out.append(f"go {exit_direction(room, dest)}")
                room = dest
            else:
                out.append(f"go to {tw_name(name)}")
        elif verb == "take":
            out.append(f"take {a} from {b}" if b else f"take {a}")
        elif verb == "move":
            r = house.recep_index.get(cmd.b, -1)
            if r < 0:  # a bare kind: openable when every receptacle of that kind is
                kinds = [rec.openable for rec in house.receptacles if rec.kind == cmd.b]
                openable = bool(kinds) and all(kinds)
            else:
                openable = house.receptacles[r].openable
            out.append(f"insert {a} into {b}" if openable else f"put {a} on {b}")
        elif verb in ("heat", "cool", "clean", "slice"):
            out.append(f"{verb} {a} with {b}")
        elif verb in ("open", "close", "use", "examine"):
            out.append(f"{verb} {a}")
        else:  # look, inventory, help
            out.append(verb)
    return out


# ----------------------------------------------------------------------------- playing
def _start(path: str | os.PathLike[str], infos: textworld.EnvInfos | None = None) -> textworld.Environment:
    """A TextWorld env on an exported game (Jericho's "not fully supported" warning for TextWorld games muted)."""
    import textworld

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is not fully supported.*")
        return textworld.start(str(path), request_infos=infos or textworld.EnvInfos(won=True))


def play_textworld(path: str | os.PathLike[str], commands: Sequence[str]) -> tuple[bool, int]:
    """Play `commands` in an exported game from its start: (won, commands stepped). Stops when the game ends.

    Requests no extra infos (`won` comes from the game's own text), so a step is one Z-machine turn; opening the
    game and resetting it cost more than a short episode of steps (see docs/household.md)."""
    env = _start(path)
    try:
        state = env.reset()
        steps = 0
        for command in commands:
            if state.get("done", False):
                break
            state, _, _ = env.step(command)
            steps += 1
        return bool(state["won"]), steps
    finally:
        env.close()


def textworld_transcript(path: str | os.PathLike[str], commands: Sequence[str]) -> list[str]:
    """The game's feedback to each of `commands` from its start (banner and score lines stripped); for debugging
    and for checking that TextWorld accepts and refuses the same commands as the native engine."""
    env = _start(path)
    try:
        env.reset()
        out = []
        for command in commands:
            state, _, done = env.step(command)
            out.append(state["feedback"].split("\n>")[0].strip())
            if done:
                break
        return out
    finally:
        env.close()


__all__ = [
    "EXPORT_VERSION",
    "KB_DIR",
    "ROOM_EXITS",
    "TW_KIND_NAMES",
    "build_game",
    "exit_direction",
    "export_textworld",
    "household_hash",
    "knowledge_base",
    "play_textworld",
    "textworld_transcript",
    "to_textworld_commands",
    "tw_name",
]
