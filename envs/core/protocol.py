"""How an agent talks to an environment: its role line, the answer format, where generation stops, how a reply
becomes the action sent to `env.step`, and the fixed action set when the env lists no admissible actions.

Each family declares its own as the env class attribute `agent_protocol` (one place per family); `protocol_of(env)`
reads it through any wrappers, and any other `gymnasium.Env[str, str]` gets `DEFAULT_PROTOCOL`: a generic role,
replies as `<action>command</action>`, the command sent as written. Agents (agents/) read the protocol from the env;
they know no family.

Replies are parsed tolerantly in every protocol: the last `<action>` (or `<answer>`, `<move>`) tag wins, an unclosed
trailing tag counts (generation stops at the closing tag), else the last `move: ...` / `action: ...` line, else the
whole reply.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from distillgym.envs.core.parsing import DIRECTIONS, MAX_ACTION_CHARS, parse_direction

_TAG = re.compile(r"<(action|answer|move)>(.*?)</\1>", re.IGNORECASE | re.DOTALL)
_OPEN_TAG = re.compile(r"<(action|answer|move)>(.*)$", re.IGNORECASE | re.DOTALL)
_FIELD = re.compile(r"(?:^|[\s.;,])(?:move|action|answer|command)\s*[:=]\s*(.+?)\s*$", re.IGNORECASE | re.MULTILINE)


def extract_action_text(text: str) -> str:
    """The action part of a reply: the last `<action>` tag, else the last `move:`/`action:` field, else the
    whole reply (stripped). An unclosed trailing `<action>` counts (generation may stop at the closing tag, or be cut
    by the token limit inside it: a partial closing tag is dropped)."""
    text = text[: MAX_ACTION_CHARS * 16]
    tags = _TAG.findall(text)
    if tags:  # an opening tag repeated before the closing one (`<action> ... <action>Up</action>`): the last counts
        tag, body = tags[-1]
        reopened = body.lower().rfind(f"<{tag.lower()}>")
        return (body[reopened + len(tag) + 2 :] if reopened >= 0 else body).strip()
    open_tag = _OPEN_TAG.search(text)
    if open_tag:  # a reply cut by max_tokens may end in part of the closing tag: `go to shelf 1</act`
        return _drop_partial_close(open_tag.group(2).rstrip(), open_tag.group(1)).strip()
    fields = _FIELD.findall(text)
    if fields:
        return fields[-1].strip()
    return text.strip()


def _drop_partial_close(body: str, tag: str) -> str:
    """`body` without a trailing proper prefix of its closing tag `</tag>` (any tag the parser accepts)."""
    close = f"</{tag.lower()}>"
    lowered = body.lower()
    for k in range(len(close) - 1, 0, -1):
        if lowered.endswith(close[:k]):
            return body[:-k]
    return body


def parse_directional(text: str) -> str | None:
    """Up/Down/Left/Right named by a reply in any accepted format, or None."""
    core = extract_action_text(text)
    return parse_direction(core) or parse_direction(text)


def parse_command(text: str) -> str | None:
    """A free-text command: the action part of the reply on one line, or None when empty."""
    core = extract_action_text(text).strip().strip("`\"'").strip()
    core = core.splitlines()[0].strip() if core else ""
    return core or None


@dataclass(frozen=True)
class AgentProtocol:
    """How one environment family talks to an agent (see the module docstring)."""

    role: str  # one line that says who the agent is
    answer_format: str  # how to write the answer (the parser accepts more than this)
    parse: Callable[[str], str | None] = parse_command  # reply -> action text for env.step (None: names none)
    stop: tuple[str, ...] = ("</action>",)  # generation stops after the closing tag
    actions: tuple[str, ...] | None = None  # the fixed action set, for envs that list no admissible actions


DIRECTIONAL_FORMAT = (
    "Think briefly if it helps, then give your move inside <action></action>, for example <action>Left</action>."
)
DEFAULT_PROTOCOL = AgentProtocol(
    "You are an agent acting in a text environment.",
    "Think briefly if it helps, then give your command inside <action></action>, for example <action>look</action>.",
)


def directional(role: str) -> AgentProtocol:
    """A protocol whose actions are the four directions (Sokoban, 2048)."""
    return AgentProtocol(role, DIRECTIONAL_FORMAT, parse_directional, actions=DIRECTIONS)


def protocol_of(env: Any) -> AgentProtocol:
    """The agent protocol of `env` (through any wrappers): its class's `agent_protocol`, else the default."""
    found = getattr(getattr(env, "unwrapped", env), "agent_protocol", None)
    if found is None:
        return DEFAULT_PROTOCOL
    if not isinstance(found, AgentProtocol):
        raise TypeError(f"{type(env).__name__}.agent_protocol must be an AgentProtocol, got {type(found).__name__}")
    return found


def family_of(env: Any) -> str:
    """The env's family name (`family`; "text" for an env that declares none): what skills and reports group by."""
    return str(getattr(getattr(env, "unwrapped", env), "family", "text"))
