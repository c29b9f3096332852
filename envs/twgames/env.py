"""Real TextWorld games (coin collector, treasure hunter, cooking) behind the `TextEnv` contract.

Games are made by TextWorld's own generators (what `tw-make` runs) once per task seed and cached on disk (see
`games.py`); they are played in the Z-machine through `textworld.start`, with TextWorld's state tracking providing
the admissible commands and the expert (its winning policy). textworld is imported lazily: `import distillgym`
stays light.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from distillgym.envs.core import TextEnv, describe_action, unwrap_action
from distillgym.envs.core.text_env import SPLIT_SIZE
from distillgym.envs.twgames.games import (
    default_cache_dir,
    ensure_game,
    game_settings,
    import_textworld,
    quiet_engine_warnings,
)

#: Commands longer than this (after stripping) are invalid: no command of these games comes close.
MAX_COMMAND_CHARS = 256
#: Jericho truncates input beyond 198 bytes (with a warning that can itself raise): stay below it.
_ZMACHINE_INPUT_CHARS = 190
#: The Z-machine interpreter's RNG seed; fixed so that replaying the same commands replays the same game.
_INTERPRETER_SEED = 1234

# What reaches the interpreter: letters, digits, spaces, hyphens, apostrophes. Everything else would either break
# the interpreter (NUL hangs it, a newline or "." sends a second command the state tracking never sees, "\" is a
# dumb-frotz escape) or means nothing to TextWorld's parser anyway.
_UNSAFE = re.compile(r"[^A-Za-z0-9' -]+")
# Inform's meta commands that would quit, restart, save, transcribe or repeat behind the state tracker's back.
_META = frozenset(
    {"quit", "q", "restart", "save", "restore", "script", "transcript", "unscript", "noscript", "again", "g",
     "oops", "o", "undo"}
)
_BANNER_CHARS = frozenset(" \t_|\\/$<>")
_STATUS_LINE = re.compile(r"[ \t]{2,}-=[^\n]*=-\s*-?\d+/\d+[ \t]*$", re.MULTILINE)
_END_PROMPT = re.compile(r"\s*Would you like to RESTART, RESTORE a saved game, QUIT or UNDO the last command\?\s*")
_BLANK_LINES = re.compile(r"\n{3,}")


def game_command(text: str) -> str:
    """The form of an agent's command that is safe to send to the interpreter (one line of plain ASCII)."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return " ".join(_UNSAFE.sub(" ", ascii_text).split())[:_ZMACHINE_INPUT_CHARS].strip()


def clean_feedback(raw: str, *, intro: bool = False) -> str:
    """The game's text without the prompt, the status line, the end-of-game menu (and, at the start, the banner)."""
    text = raw.replace("\r", "")
    cut = text.rfind("\n>")  # the input prompt; the status line is printed after it
    if cut >= 0:
        text = text[:cut]
    text = _END_PROMPT.sub("\n", _STATUS_LINE.sub("", text))
    lines = [line.strip() for line in text.split("\n")]  # centred lines ("*** The End ***") too
    if intro:  # the big ASCII-art title
        while lines and set(lines[0]) <= _BANNER_CHARS:
            lines.pop(0)
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


@dataclass(frozen=True)
class _TextWorldState:
    """An episode's state: the game (by seed) and the commands sent to it since reset, replayed by `restore`."""

    seed: int
    commands: tuple[str, ...]
    text: str  # the game's last response, as the agent saw it


class TextWorldEnv(TextEnv[str]):
    """A TextWorld game per task: any printable command is sent to the game, whose answer is the observation.

    Args:
        preset: "coin_collector", "treasure_hunter" or "cooking" (TextWorld's tw-coin_collector, tw-treasure_hunter,
            tw-cooking challenges).
        level: difficulty of coin_collector (1-300, default 5) and treasure_hunter (1-30, default 5).
        recipe, take, go, open, cook, cut, drop, recipe_seed: the cooking challenge's `tw-make` settings
            (defaults: a 1-ingredient recipe, 1 ingredient to fetch, 1 room, no opening/cooking/cutting/dropping).
        food_split: cooking only: play TextWorld's own train foods on the train split and its unseen test foods
            (and preparations) on the test split, instead of every food on both.
        cache_dir: where generated games are kept (`<cache_dir>/textworld/<preset>/`); default `$DISTILLGYM_CACHE`
            or `~/.cache/distillgym`.
        split, max_steps, invalid_action_penalty, privileged, render_mode: see `TextEnv`.

    The task of seed S is the game `tw-make tw-<preset> <settings> --seed S` makes. Reward is the game's score
    delta; the episode terminates when the game is won or lost. Inform's meta commands (quit, restart, save,
    again...) and several commands at once ("go east then go north") are answered without reaching the game.
    """

    family: ClassVar[str] = "textworld"

    def __init__(
        self,
        *,
        preset: str = "treasure_hunter",
        level: int | None = None,
        recipe: int | None = None,
        take: int | None = None,
        go: int | None = None,
        open: bool | None = None,  # tw-make's name for the setting
        cook: bool | None = None,
        cut: bool | None = None,
        drop: bool | None = None,
        recipe_seed: int | None = None,
        food_split: bool = False,
        cache_dir: str | Path | None = None,
        split: str = "train",
        max_steps: int = 50,
        invalid_action_penalty: float = -1.0,
        privileged: bool = True,
        render_mode: str | None = None,
    ) -> None:
        super().__init__(
            split=split,
            max_steps=max_steps,
            invalid_action_penalty=invalid_action_penalty,
            privileged=privileged,
            render_mode=render_mode,
        )
        import_textworld()  # fail early, with the install hint, when textworld is missing
        given = {"level": level, "recipe": recipe, "take": take, "go": go, "open": open, "cook": cook, "cut": cut,
                 "drop": drop, "recipe_seed": recipe_seed}
        if food_split and preset != "cooking":
            raise ValueError("food_split applies to the cooking preset only")
        self.preset = preset
        self.food_split = bool(food_split)
        self._given = given
        self.settings = game_settings(preset, given)  # validated once; the food split is set per task
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self._tw: Any = None  # the TextWorld environment (one interpreter, reused across games)
        self._game_path: Path | None = None
        self._seed = -1
        self._commands: tuple[str, ...] = ()
        self._text = ""
        self._gs: Any = None  # TextWorld's GameState after the last command
        self._prev_score = 0

    # ----------------------------------------------------------------- games
    def task_settings(self, seed: int) -> dict[str, Any]:
        """The `tw-make` settings of the task of generation seed `seed`."""
        if not self.food_split:
            return dict(self.settings)
        return game_settings(self.preset, self._given, "train" if seed < SPLIT_SIZE else "test")

    def game_path(self, seed: int) -> Path:
        """The compiled game of generation seed `seed` (generated and cached on first use)."""
        return ensure_game(self.preset, self.task_settings(seed), seed, self.cache_dir)

    def _load(self, seed: int) -> None:
        path = self.game_path(seed)
        with quiet_engine_warnings():
            self._open(path)
        self._game_path = path
        self._seed = seed

    def _open(self, path: Path) -> None:
        textworld = import_textworld()
        if self._tw is None:
            infos = textworld.EnvInfos(
                admissible_commands=True, policy_commands=True, objective=True, won=True, lost=True, score=True,
                max_score=True, moves=True, extras=["walkthrough"],
            )
            self._tw = textworld.start(str(path), infos)
        elif path != self._game_path:
            self._tw.load(str(path))
            self._forget_other_roms(path)

    def _forget_other_roms(self, path: Path) -> None:
        """Jericho keeps every story file it ever loaded in memory: keep only the current one."""
        try:
            cache = self._tw.unwrapped._jericho._cache
            for key in [k for k in cache if k != str(path)]:
                del cache[key]
        except (AttributeError, TypeError):  # pragma: no cover - another Jericho version
            pass

    def _restart(self) -> None:
        """Start the loaded game from its beginning."""
        self._tw.seed(_INTERPRETER_SEED)  # loading a story file re-seeds the interpreter from the clock
        self._gs = self._tw.reset()
        self._commands = ()
        self._prev_score = int(self._gs.get("score") or 0)
        self._text = clean_feedback(self._gs.feedback or "", intro=True)

    def _send(self, command: str) -> tuple[float, bool, str]:
        """Play one (safe) command; return (score delta, game over, cleaned response)."""
        gs, _, _ = self._tw.step(command)
        self._gs = gs
        self._commands = (*self._commands, command)
        score = int(gs.get("score") or 0)
        reward, self._prev_score = float(score - self._prev_score), score
        text = clean_feedback(gs.feedback or "") or "(The game printed nothing.)"
        self._text = text
        return reward, bool(gs.get("won") or gs.get("lost")), text

    # ----------------------------------------------------------------- TextEnv hooks
    def _new_task(self, seed: int, options: dict[str, Any]) -> None:
        if options:
            raise ValueError(f"unknown reset option(s) for TextWorld: {sorted(options)}")
        self._load(seed)
        self._restart()

    def parse_action(self, text: object) -> str | None:
        return unwrap_action(text, MAX_COMMAND_CHARS)

    def _apply(self, action: str) -> tuple[float, bool, str]:
        command = game_command(action)
        words = command.lower().split()
        if words and (words[0] in _META or words[0].startswith("tw-")):
            return 0.0, False, f"The command {words[0]!r} is not available in this game."
        if "then" in words:
            return 0.0, False, "Please give one command at a time."
        return self._send(command)

    def _observation(self, feedback: str) -> str:
        # the game's response alone (it already says what changed); the first one welcomes and states the goal
        return (feedback or self._board_text())[: self.max_observation_length]

    def _board_text(self) -> str:
        return self._text

    def task_text(self) -> str:
        objective = self._gs.get("objective") if self._gs is not None else ""
        return (
            "You are playing a text adventure game. Reply with exactly one command per turn, such as 'look', "
            "'inventory', 'go north', 'take key', 'open box' or 'examine cookbook'. "
            f"Your goal: {objective}"
        )

    def admissible_actions(self) -> list[str] | None:
        return list(self._gs.get("admissible_commands") or []) if self._gs is not None else None

    def is_success(self) -> bool:
        return bool(self._gs is not None and self._gs.get("won"))

    def _walkthrough(self) -> list[str]:
        return list(self._gs.get("extra.walkthrough") or []) if self._gs is not None else []

    def expert_plan(self) -> list[str] | None:
        """TextWorld's winning policy from the current state, else the rest of the walkthrough while the agent has
        followed it; None when neither applies (and [] once the game is over)."""
        if self._gs is None or self._gs.get("won") or self._gs.get("lost"):
            return []
        policy = self._gs.get("policy_commands")
        if policy:
            return list(policy)
        walk = self._walkthrough()
        played = list(self._commands)
        if played == walk[: len(played)] and len(played) < len(walk):
            return walk[len(played) :]
        return None

    def expert_action(self) -> str | None:
        plan = self.expert_plan()
        return plan[0] if plan else None

    def privileged_info(self) -> dict[str, Any]:
        plan = self.expert_plan()
        return {"solution": self._walkthrough(), "expert_plan": plan, "expert_action": plan[0] if plan else None}

    def _extra_info(self) -> dict[str, Any]:
        gs = self._gs
        if gs is None:
            return {}
        return {
            "preset": self.preset,
            "score": int(gs.get("score") or 0),
            "max_score": int(gs.get("max_score") or 0),
            "won": bool(gs.get("won")),
            "lost": bool(gs.get("lost")),
            "moves": int(gs.get("moves") or 0),
            "game_file": str(self._game_path),
        }

    def invalid_feedback(self, action: object) -> str:
        return (
            f"Invalid command {describe_action(action)}: reply with one short command (at most "
            f"{MAX_COMMAND_CHARS} characters), e.g. 'go north' or 'take key'."
        )

    def _get_state(self) -> _TextWorldState:
        if self._gs is None:
            raise RuntimeError("Call reset() first.")
        return _TextWorldState(self._seed, self._commands, self._text)

    def _set_state(self, state: _TextWorldState) -> None:
        # The interpreter's memory is not part of the state: put the game back by replaying the commands. When the
        # target extends what was played (or equals it), only the missing commands are played.
        same_game = self._gs is not None and state.seed == self._seed
        n = len(self._commands)
        if not (same_game and state.commands[:n] == self._commands):
            self._load(state.seed)
            self._restart()
        for command in state.commands[len(self._commands) :]:
            self._send(command)
        self._text = state.text

    def close(self) -> None:
        if self._tw is not None:
            self._tw.close()
            self._tw = None
            self._gs = None
            self._game_path = None
        super().close()
