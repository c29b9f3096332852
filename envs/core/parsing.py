"""Tolerant parsing of the actions that text agents write ("Up", "[up]", "U", "move up", "<action>up</action>")."""

from __future__ import annotations

import re

DIRECTIONS: tuple[str, ...] = ("Up", "Down", "Left", "Right")

_ALIASES: dict[str, str] = {
    "up": "Up", "u": "Up", "north": "Up", "n": "Up", "^": "Up", "↑": "Up",
    "down": "Down", "d": "Down", "south": "Down", "s": "Down", "v": "Down", "↓": "Down",
    "left": "Left", "l": "Left", "west": "Left", "w": "Left", "<": "Left", "←": "Left",
    "right": "Right", "r": "Right", "east": "Right", "e": "Right", ">": "Right", "→": "Right",
}
_VERBS = ("move", "push", "go", "walk", "step", "swipe", "slide", "action", "answer", "press")
_TAG = re.compile(r"<(action|answer|command)>(.*?)</\1>", re.IGNORECASE | re.DOTALL)
_VERB_PREFIX = re.compile(r"^(?:" + "|".join(_VERBS) + r")\s*[:=]?\s*", re.IGNORECASE)
# Parsing never looks at more than this many characters: a 10 kB reply costs nothing.
MAX_ACTION_CHARS = 256


def unwrap_action(text: object, max_chars: int = MAX_ACTION_CHARS) -> str | None:
    """The action part of `text`: the body of an `<action>`/`<answer>`/`<command>` tag if there is one, stripped;
    None for non-strings, empty text or more than `max_chars` characters. Shared by every family's parser."""
    if not isinstance(text, str):
        return None
    tag = _TAG.search(text[: max_chars * 4])
    if tag:
        text = tag.group(2)
    text = text.strip()
    if not text or len(text) > max_chars:
        return None
    return text


def parse_direction(text: object) -> str | None:
    """Return the canonical direction ("Up", "Down", "Left", "Right") named by `text`, or None.

    Accepts any capitalization, surrounding brackets/quotes/punctuation, single letters (U/D/L/R), compass
    words, a leading verb ("move up", "push: left"), and an `<action>...</action>` tag. Anything else
    (including non-strings, empty or over-long input) gives None rather than an exception.
    """
    text = unwrap_action(text)
    if text is None:
        return None
    core = text.strip(" \t\r\n\"'`[](){}.,;:!*")
    key = core.lower()
    if key in _ALIASES:
        return _ALIASES[key]
    key = _VERB_PREFIX.sub("", key).strip(" \t\"'`[](){}.,;:!*")
    if key in _ALIASES and len(key) > 1:  # "move up", but not "move u"-style ambiguity with letters
        return _ALIASES[key]
    return None


def describe_action(text: object, limit: int = 40) -> str:
    """A short, safe echo of an agent's action for feedback text (truncated, non-printables escaped)."""
    if not isinstance(text, str):
        return repr(text)[:limit]
    short = text if len(text) <= limit else text[:limit] + "..."
    return repr(short)
