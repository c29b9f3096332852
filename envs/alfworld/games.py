"""ALFWorld's game files on disk: where the data lives, which games a split holds, and ALFWorld's object names.

ALFWorld (`pip install alfworld && alfworld-download`) stores each game as
`json_2.1.1/{train,valid_seen,valid_unseen}/<task-type>-<object>-<mrecep>-<recep>-<scene>/<trial>/game.tw-pddl`,
a JSON file with the PDDL domain and problem, the text grammar (task description filled in), `solvable` and,
in files made by recent `alfworld-generate`, a `walkthrough`.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from pathlib import Path
from typing import Any

#: ALFWorld's six task types (alfworld.agents.environment.alfred_tw_env.TASK_TYPES), in ALFWorld's order.
TASK_TYPES: tuple[str, ...] = (
    "pick_and_place_simple",
    "look_at_obj_in_light",
    "pick_clean_then_place_in_recep",
    "pick_heat_then_place_in_recep",
    "pick_cool_then_place_in_recep",
    "pick_two_obj_and_place",
)
#: distillgym's test split maps to one of ALFWorld's two evaluation sets.
EVAL_SETS: tuple[str, ...] = ("valid_unseen", "valid_seen")
DATA_VERSION = "json_2.1.1"
GAME_FILE = "game.tw-pddl"
DATA_SETUP = (
    "Download ALFWorld's games with `pip install alfworld && alfworld-download` (they go to ~/.cache/alfworld, "
    "or to $ALFWORLD_DATA), or point distillgym at existing data with the ALFWORLD_DATA environment variable or "
    "the env's `data_path` option (gymnasium.make('distillgym/ALFWorld-v0', data_path=...))."
)


class ALFWorldDataNotFoundError(FileNotFoundError):
    """ALFWorld's game files are not where the env looked; the message says how to get them."""


def data_root(data_path: str | os.PathLike[str] | None = None) -> Path:
    """ALFWorld's data folder: `data_path`, else $ALFWORLD_DATA, else ~/.cache/alfworld (alfworld's default)."""
    path = data_path if data_path is not None else os.environ.get("ALFWORLD_DATA") or "~/.cache/alfworld"
    return Path(os.path.expandvars(os.fspath(path))).expanduser().absolute()


def split_dir(split: str, eval_set: str = "valid_unseen") -> str:
    """ALFWorld's folder for a distillgym split: train -> train, test -> `eval_set` (valid_unseen by default)."""
    if split == "train":
        return "train"
    if split == "test":
        if eval_set not in EVAL_SETS:
            raise ValueError(f"eval_set must be one of {EVAL_SETS}, got {eval_set!r}")
        return eval_set
    raise ValueError(f"split must be 'train' or 'test', got {split!r}")


def task_type_of(game_file: str | os.PathLike[str]) -> str:
    """The task type of a game, from its task folder's name (`<task-type>-<object>-...`), as ALFWorld names it."""
    return Path(game_file).parent.parent.name.split("-", 1)[0]


_SOLVABLE = re.compile(rb'"solvable"\s*:\s*(true|false|null)')
_TAIL_BYTES = 16384
_listing_cache: dict[tuple[str, tuple[str, ...], float], tuple[str, ...]] = {}


def _marked_unsolvable(path: Path) -> bool:
    """True when the game file says `"solvable": false` (ALFWorld skips those). Reads the file's tail first:
    json.dump puts `solvable` after the ~100 kB of domain, grammar and problem."""
    with open(path, "rb") as f:
        size = f.seek(0, os.SEEK_END)
        f.seek(max(0, size - _TAIL_BYTES))
        m = _SOLVABLE.search(f.read())
        if m is None and size > _TAIL_BYTES:
            f.seek(0)
            m = _SOLVABLE.search(f.read())
    return m is not None and m.group(1) == b"false"


def list_games(root: Path, subdir: str, task_types: tuple[str, ...] = TASK_TYPES) -> tuple[str, ...]:
    """The sorted game files of `root/json_2.1.1/subdir` that ALFWorld plays: task type in `task_types`, not a
    movable-receptacle or sliced-object trial, not marked unsolvable. Cached per folder state."""
    base = root / DATA_VERSION / subdir
    try:
        stamp = base.stat().st_mtime
    except OSError:
        return ()
    key = (str(base), tuple(task_types), stamp)
    if key not in _listing_cache:
        games = []
        for path in sorted(base.glob(f"*/*/{GAME_FILE}")):
            if task_type_of(path) not in task_types or "movable" in str(path) or "Sliced" in str(path):
                continue
            if not _marked_unsolvable(path):
                games.append(str(path))
        _listing_cache[key] = tuple(games)
    return _listing_cache[key]


def find_games(
    data_path: str | os.PathLike[str] | None,
    split: str,
    eval_set: str = "valid_unseen",
    task_types: tuple[str, ...] = TASK_TYPES,
) -> tuple[str, ...]:
    """The games of a distillgym split; raises `ALFWorldDataNotFoundError` (saying how to get them) if none."""
    root = data_root(data_path)
    subdir = split_dir(split, eval_set)
    games = list_games(root, subdir, task_types)
    if not games:
        where = root / DATA_VERSION / subdir
        what = "" if tuple(task_types) == TASK_TYPES else f" of task type(s) {', '.join(task_types)}"
        raise ALFWorldDataNotFoundError(
            f"No ALFWorld games{what} found in {where} (looked for */*/{GAME_FILE}). {DATA_SETUP}"
        )
    return games


def load_game(game_file: str | os.PathLike[str]) -> dict[str, Any]:
    """A game file's JSON: pddl_domain, pddl_problem, grammar, and optionally solvable and walkthrough."""
    with open(game_file, encoding="utf-8") as f:
        data = json.load(f)
    missing = {"pddl_domain", "pddl_problem", "grammar"} - set(data)
    if missing:
        raise ValueError(f"{game_file} is not an ALFWorld game file: missing {sorted(missing)}")
    return data


def alfworld_names(ids: list[str] | tuple[str, ...]) -> dict[str, str]:
    """ALFWorld's display names for PDDL object ids ("apple_bar__minus_01_dot_62_bar_..." -> "apple 1").

    Same result as ALFWorld's `Demangler(shuffle=False)`, which the game files' walkthroughs were written with:
    the id's class name (the part before the first `|`, "basin" appended for sink/bathtub basins) and a number
    per class, counted down over the sorted ids (the first id of a class gets the highest number). Ids without
    a `|` (agent1, the type objects) keep their text and get no number.
    """
    ordered = sorted(ids)
    classes: dict[str, str | None] = {}
    for i in ordered:
        text = i.replace("_bar_", "|").replace("_minus_", "-").replace("_plus_", "+").replace("_dot_", ".")
        text = text.replace("_comma_", ",")
        if "|" in text:
            name = text.split("|", 1)[0] + ("basin" if "basin" in i else "")
            classes[i] = name
        else:
            classes[i] = None
    remaining = Counter(c for c in classes.values() if c is not None)
    names = {}
    for i in ordered:
        cls = classes[i]
        if cls is None:
            text = i.replace("_bar_", "|").replace("_minus_", "-").replace("_plus_", "+").replace("_dot_", ".")
            names[i] = text.replace("_comma_", ",") + " "
        else:
            names[i] = f"{cls} {remaining[cls]}"
            remaining[cls] -= 1
    return names
