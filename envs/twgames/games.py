"""TextWorld game generation with an on-disk cache: each (preset, settings, seed) is made once, then reused.

Generation goes through TextWorld's challenge registry, exactly as `tw-make` does: the game of task seed S is the
game that `tw-make tw-<preset> <settings> --seed S` makes. Games are compiled into a private temporary folder and
moved into the cache with one atomic rename, under a file lock, so concurrent processes never see a half-written
game and never generate the same game twice.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

try:  # POSIX: a lock file keeps two processes from generating the same game; elsewhere the rename alone is safe
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

INSTALL_HINT = 'pip install "distillgym[textworld]"'
#: The largest seed TextWorld accepts (numpy's RandomState takes 32-bit seeds); every task seed fits.
MAX_SEED = 2**32 - 1
GAME_FILE = "game.z8"
GAME_JSON = "game.json"


def import_textworld() -> ModuleType:
    """Import textworld (and its challenges) lazily, with an install hint when it is missing."""
    try:
        import textworld
        import textworld.challenges  # registers tw-coin_collector, tw-treasure_hunter, tw-cooking
    except ImportError as exc:
        raise ImportError(f"distillgym's TextWorld environments need the textworld package: {INSTALL_HINT}") from exc
    return textworld


@dataclass(frozen=True)
class Preset:
    """One TextWorld challenge: its `tw-make` name and its settings with their defaults."""

    challenge: str
    defaults: Mapping[str, Any]
    summary: str


COOKING_DEFAULTS: dict[str, Any] = {
    "recipe": 1, "take": 1, "go": 1, "open": False, "cook": False, "cut": False, "drop": False, "recipe_seed": 0,
}
PRESETS: dict[str, Preset] = {
    "coin_collector": Preset(
        "tw-coin_collector", {"level": 5}, "walk a chain of rooms and take the coin at its end (level 1-300)"
    ),
    "treasure_hunter": Preset(
        "tw-treasure_hunter", {"level": 5}, "find and take the named object (level 1-30: doors, keys, containers)"
    ),
    "cooking": Preset(
        "tw-cooking", COOKING_DEFAULTS, "read the cookbook, gather and prepare the ingredients, eat the meal"
    ),
}


def game_settings(preset: str, given: Mapping[str, Any], food_split: str | None = None) -> dict[str, Any]:
    """The full `tw-make` settings of `preset`: the given ones (None = default) over the preset's defaults."""
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {sorted(PRESETS)}, got {preset!r}")
    defaults = PRESETS[preset].defaults
    unknown = sorted(k for k, v in given.items() if v is not None and k not in defaults)
    if unknown:
        raise ValueError(f"option(s) {unknown} do not apply to preset {preset!r} (it takes {sorted(defaults)})")
    settings: dict[str, Any] = {k: given.get(k) if given.get(k) is not None else v for k, v in defaults.items()}
    if preset == "coin_collector" and not 1 <= int(settings["level"]) <= 300:
        raise ValueError(f"coin_collector level must be in 1..300, got {settings['level']}")
    if preset == "treasure_hunter" and not 1 <= int(settings["level"]) <= 30:
        raise ValueError(f"treasure_hunter level must be in 1..30, got {settings['level']}")
    if preset == "cooking":
        for key in ("open", "cook", "cut", "drop"):
            settings[key] = bool(settings[key])
        for key in ("recipe", "take", "go", "recipe_seed"):
            settings[key] = int(settings[key])
        if settings["go"] not in (1, 6, 9, 12):
            raise ValueError(f"cooking go (number of rooms) must be 1, 6, 9 or 12, got {settings['go']}")
        if not 1 <= settings["recipe"] <= 5 or not 0 <= settings["take"] <= settings["recipe"]:
            raise ValueError(f"cooking needs 1 <= recipe <= 5 and 0 <= take <= recipe, got {settings}")
        if settings["recipe_seed"] > 0 and settings["take"] == 0:
            raise ValueError("cooking recipe_seed > 0 (shuffled recipes) needs take >= 1")
        settings["split"] = food_split  # TextWorld's own food split (train/valid/test foods), None = all foods
    else:
        settings["level"] = int(settings["level"])
    return settings


def default_cache_dir() -> Path:
    """`$DISTILLGYM_CACHE`, else `~/.cache/distillgym`."""
    return Path(os.environ.get("DISTILLGYM_CACHE") or Path.home() / ".cache" / "distillgym")


def game_key(preset: str, settings: Mapping[str, Any], seed: int, version: str) -> str:
    """The cache folder name of a game: readable prefix plus a hash of everything that shapes the game."""
    spec = {"preset": preset, "settings": dict(settings), "seed": seed, "textworld": version}
    blob = json.dumps(spec, sort_keys=True)
    return f"s{seed}-{hashlib.sha256(blob.encode()).hexdigest()[:16]}"


@contextlib.contextmanager
def quiet_engine_warnings() -> Iterator[None]:
    """Silence Jericho's "not fully supported" warning: TextWorld games track score and moves themselves."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*is not fully supported")
        yield


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive inter-process lock on `path` (a no-op where fcntl is unavailable)."""
    if fcntl is None:  # pragma: no cover
        yield
        return
    with open(path, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


#: How many games this process has generated (tests use it to check that the cache is reused).
generation_count = 0
#: Seconds each generation took in this process, newest last (for benchmarks).
generation_seconds: list[float] = []


def _complete(folder: Path) -> bool:
    return (folder / GAME_FILE).is_file() and (folder / GAME_JSON).is_file()


def ensure_game(preset: str, settings: Mapping[str, Any], seed: int, cache_dir: str | os.PathLike[str]) -> Path:
    """The path of the compiled game (.z8, with its .json beside it), generating it on the first request only."""
    textworld = import_textworld()
    if not 0 <= int(seed) <= MAX_SEED:
        raise ValueError(f"TextWorld seeds must be in [0, {MAX_SEED}], got {seed}")
    seed = int(seed)
    root = Path(cache_dir) / "textworld" / preset
    folder = root / game_key(preset, settings, seed, textworld.__version__)
    if _complete(folder):
        return folder / GAME_FILE
    root.mkdir(parents=True, exist_ok=True)
    with _file_lock(root / f".{folder.name}.lock"):
        if _complete(folder):  # another process made it while we waited
            return folder / GAME_FILE
        if folder.exists():  # an incomplete folder can only come from outside tampering: start over
            shutil.rmtree(folder, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{folder.name}-", dir=root))
        try:
            with quiet_engine_warnings():
                _generate(textworld, preset, settings, seed, tmp)
            os.replace(tmp, folder)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)  # gone after a successful rename
    return folder / GAME_FILE


def _generate(textworld: ModuleType, preset: str, settings: Mapping[str, Any], seed: int, folder: Path) -> None:
    """Make and compile one game into `folder` (what `tw-make` does), with a small spec file for humans."""
    global generation_count
    start = time.perf_counter()
    options = textworld.GameOptions()
    options.seeds = seed  # exactly as `tw-make --seed`: one RandomState(seed) draws the map/objects/quest/grammar seeds
    options.path = str(folder / GAME_FILE)
    options.file_ext = ".z8"
    options.force_recompile = True
    _, make, _ = textworld.challenges.CHALLENGES[PRESETS[preset].challenge]
    game = make(settings=dict(settings), options=options)
    textworld.generator.compile_game(game, options)
    (folder / "game.ni").unlink(missing_ok=True)  # the Inform7 source: not needed to play
    spec = {"preset": preset, "challenge": PRESETS[preset].challenge, "settings": dict(settings), "seed": seed,
            "textworld": textworld.__version__, "walkthrough": game.metadata.get("walkthrough")}
    (folder / "spec.json").write_text(json.dumps(spec, indent=1, sort_keys=True))
    generation_count += 1
    generation_seconds.append(time.perf_counter() - start)
