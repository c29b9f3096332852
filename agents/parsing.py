"""Action parsing, per family, in one place: what a model wrote -> the action text sent to `env.step`.

Accepted formats (for every family): `<action>...</action>` (the last tag wins), a `move: ...` / `action: ...` /
`answer: ...` line (as in `thought: ... move: Left`), and a bare command. The directional families (Sokoban,
2048) canonicalize to Up/Down/Left/Right; command families (household, apps) keep the command text.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from distillgym.envs.core.parsing import MAX_ACTION_CHARS, parse_direction

_TAG = re.compile(r"<(action|answer|move)>(.*?)</\1>", re.IGNORECASE | re.DOTALL)
_OPEN_TAG = re.compile(r"<(action|answer|move)>(.*)$", re.IGNORECASE | re.DOTALL)
_FIELD = re.compile(r"(?:^|[\s.;,])(?:move|action|answer|command)\s*[:=]\s*(.+?)\s*$", re.IGNORECASE | re.MULTILINE)


def extract_action_text(text: str) -> str:
    """The action part of a reply: the last `<action>` tag, else the last `move:`/`action:` field, else the
    whole reply (stripped). An unclosed trailing `<action>` counts (generation may stop at the closing tag)."""
    text = text[: MAX_ACTION_CHARS * 16]
    tags = _TAG.findall(text)
    if tags:
        return tags[-1][1].strip()
    open_tag = _OPEN_TAG.search(text)
    if open_tag:
        return open_tag.group(2).strip()
    fields = _FIELD.findall(text)
    if fields:
        return fields[-1].strip()
    return text.strip()


def parse_directional(text: str) -> str | None:
    """Up/Down/Left/Right named by a reply in any accepted format, or None."""
    core = extract_action_text(text)
    return parse_direction(core) or parse_direction(text)


def parse_command(text: str) -> str | None:
    """A free-text command (household, apps): the action part of the reply on one line, or None when empty."""
    core = extract_action_text(text).strip().strip("`\"'").strip()
    core = core.splitlines()[0].strip() if core else ""
    return core or None


def parse_code(text: str) -> str | None:
    """A code cell (apps): the last ```python fence or <action> tag, multi-line, or None when empty. The env parses
    again (JSON tool calls included); this only cuts the reply down to the action."""
    from distillgym.envs.apps.actions import extract_code

    return extract_code(text)


PARSERS: dict[str, Callable[[str], str | None]] = {
    "sokoban": parse_directional,
    "2048": parse_directional,
    "apps": parse_code,
}


def parse_action(family: str, text: str) -> str | None:
    """The action for `family` named by `text`, or None (the env then answers with its invalid-action feedback)."""
    return PARSERS.get(family, parse_command)(text)
