"""Prompts: the chat an agent sees, and its teacher variant.

The chat is: a system message (the role line of the env's `AgentProtocol`, the task text with its rules, the answer
format and, for a teacher only, the privileged context), then for each remembered past turn the observation (user)
and the model's own reply (assistant), then the current observation. `history` bounds how many past turns are
shown.

Token-in/token-out: `PromptBuilder.prompt_ids` assembles the prompt at the token level. Past replies are spliced
in as the exact token ids the model sampled (never re-tokenized); only text the environment wrote is tokenized.
With the whole history shown, the prompt of turn t+1 therefore extends prompt_t + completion_t exactly, and the
tokens in between are exactly what the environment (and the chat template) wrote.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from distillgym.envs.core.protocol import DEFAULT_PROTOCOL, AgentProtocol

_LABELS = {
    "solution": "A solution from the start",
    "expert_plan": "The expert's plan from here",
    "expert_action": "The expert's next action",
    "ground_truth": "Ground truth",
    "skills": "Skills learned from past attempts",
}


#: Where a teacher's privileged block goes: "end" (default) appends it, short and canonical, to the last user message,
#: right before the reply; "system" puts every field, labelled, in the system message (before issue 16); "action"
#: appends the expert's next action alone, written as the reply writes it (`<action>go to shelf 1</action>`), so that
#: the reply is a copy of the most recent `<action>` in the prompt (a block without a next action, a skill, as "end").
PRIVILEGED_PLACES = ("end", "system", "action")
PRIVILEGED_HEADER = "Privileged hint (the player does not see this):"
EXAMPLES_HEADER = "Examples of steps from solved tasks like this one:"


def canonical_privileged(privileged: Mapping[str, Any] | str | None) -> str:
    """The short form of a privileged block: the expert's next action first, then its plan from here when it has
    more than that step, then any other field; the solution from the start only when there is no plan (after a
    deviation it is stale). A string (a skill) as given."""
    if privileged is None or isinstance(privileged, str):
        return privileged_text(privileged)
    fields = dict(privileged)
    plan = fields.pop("expert_plan", None)
    ordered: dict[str, Any] = {}
    if fields.get("expert_action") is not None:
        ordered["expert_action"] = fields.pop("expert_action")
    if plan is not None and not (isinstance(plan, list | tuple) and len(plan) <= 1 and "expert_action" in ordered):
        ordered["expert_plan"] = plan
    if "expert_plan" in ordered or "expert_action" in ordered:
        fields.pop("solution", None)
    ordered.update(fields)
    return privileged_text(ordered)


def privileged_text(privileged: Mapping[str, Any] | str | None) -> str:
    """Privileged information as prompt text: a string as given, a dict as one labelled line per field."""
    if privileged is None:
        return ""
    if isinstance(privileged, str):
        return privileged.strip()
    lines = []
    for key, value in privileged.items():
        if value is None or key.endswith("_depth"):
            continue
        if isinstance(value, list | tuple):
            value = ", ".join(str(v) for v in value) if value else "(none)"
        elif isinstance(value, dict):
            value = json.dumps(value, ensure_ascii=False)
        lines.append(f"{_LABELS.get(key, key.replace('_', ' ').capitalize())}: {value}")
    return "\n".join(lines)


def reply_text(action: str) -> str:
    """How a demonstration's action is written as a model reply (the prompts' answer format)."""
    return f"<action>{action}</action>"


@dataclass
class PastTurn:
    """A remembered turn: the observation shown, and the model's reply (exact ids when a model wrote it)."""

    observation: str
    reply: str
    reply_ids: list[int] | None = None


_SENTINEL = "\u27e6reply{}\u27e7"  # ⟦reply0⟧: stands in for a reply's ids while the chat template renders


class PromptBuilder:
    """Chat messages and token-level prompts for one agent protocol (the env's: `protocol_of(env)`) and tokenizer."""

    def __init__(self, tokenizer: Any, protocol: AgentProtocol = DEFAULT_PROTOCOL, *, history: int | None = 4,
                 privileged_at: str = "end"):
        if history is not None and history < 0:
            raise ValueError(f"history must be >= 0 or None (all turns), got {history}")
        if privileged_at not in PRIVILEGED_PLACES:
            raise ValueError(f"privileged_at must be one of {PRIVILEGED_PLACES}, got {privileged_at!r}")
        self.privileged_at = privileged_at
        if getattr(tokenizer, "chat_template", None) is None:
            raise ValueError("the tokenizer has no chat template; set tokenizer.chat_template")
        self.tokenizer = tokenizer
        self.history = history
        self.protocol = protocol
        eos = getattr(tokenizer, "eos_token_id", None)
        self._end_ids = {int(eos)} if eos is not None else set()

    def system_text(self, task: str, privileged: Mapping[str, Any] | str | None = None,
                    examples: str | None = None) -> str:
        text = f"{self.protocol.role}\n\n{task}\n\n{self.protocol.answer_format}"
        if examples:  # in-context demonstrations (the student's own context, not privileged)
            text += f"\n\n{EXAMPLES_HEADER}\n{examples}"
        extra = privileged_text(privileged) if self.privileged_at == "system" else ""
        if extra:
            text += f"\n\nPrivileged information (the player does not see this):\n{extra}"
        return text

    def last_user_text(self, observation: str, privileged: Mapping[str, Any] | str | None = None) -> str:
        """The observation the reply answers, with the privileged block after it when it goes at the end."""
        if self.privileged_at == "system":
            return observation
        action = privileged.get("expert_action") if isinstance(privileged, Mapping) else None
        if self.privileged_at == "action" and action is not None:
            extra = f"{_LABELS['expert_action']}: <action>{action}</action>"
        else:
            extra = canonical_privileged(privileged)
        return f"{observation}\n\n{PRIVILEGED_HEADER}\n{extra}" if extra else observation

    def window(self, past: Sequence[PastTurn]) -> list[PastTurn]:
        if self.history is None:
            return list(past)
        return list(past[len(past) - self.history :]) if self.history else []

    def messages(
        self,
        task: str,
        past: Sequence[PastTurn],
        observation: str,
        privileged: Mapping[str, Any] | str | None = None,
        examples: str | None = None,
    ) -> list[dict[str, str]]:
        """The chat as text messages (for chat APIs and for reading)."""
        msgs = [{"role": "system", "content": self.system_text(task, privileged, examples)}]
        for turn in self.window(past):
            msgs += [{"role": "user", "content": turn.observation}, {"role": "assistant", "content": turn.reply}]
        msgs.append({"role": "user", "content": self.last_user_text(observation, privileged)})
        return msgs

    def prompt_ids(
        self,
        task: str,
        past: Sequence[PastTurn],
        observation: str,
        privileged: Mapping[str, Any] | str | None = None,
        examples: str | None = None,
    ) -> list[int]:
        """Token ids of the chat with the generation prompt; past replies spliced in as their exact ids.
        `examples`: in-context demonstrations, shown after the task in the system message."""
        shown = self.window(past)
        msgs = [{"role": "system", "content": self.system_text(task, privileged, examples)}]
        for k, turn in enumerate(shown):
            reply = _SENTINEL.format(k) if turn.reply_ids is not None else turn.reply
            msgs += [{"role": "user", "content": turn.observation}, {"role": "assistant", "content": reply}]
        msgs.append({"role": "user", "content": self.last_user_text(observation, privileged)})
        text = self.tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
        ids: list[int] = []
        for k, turn in enumerate(shown):
            if turn.reply_ids is None:
                continue
            head, sep, text = text.partition(_SENTINEL.format(k))
            if not sep:
                raise ValueError("the chat template dropped or altered an assistant message; cannot splice ids")
            ids += self._encode(head)
            reply_ids = list(turn.reply_ids)
            ids += reply_ids
            if reply_ids and reply_ids[-1] in self._end_ids:
                text = self._drop_leading_end(text)
        return ids + self._encode(text)

    def replay(self, task: str, turns: Sequence[Any], privileged: Callable[[int], Any] | None = None,
               replies: Sequence[tuple[str, list[int] | None]] | None = None) -> list[list[int]]:
        """The prompt of every turn of a recorded episode (`turns`: its `Turn`s), rebuilt with the history its
        agent had: each past turn's observation and reply (its exact ids when a model wrote it). `privileged(k)`
        is turn k's privileged context (a teacher's view); `replies` replaces the recorded replies (text, ids),
        e.g. demonstrations written as a model would have written them."""
        past: list[PastTurn] = []
        out = []
        for k, turn in enumerate(turns):
            out.append(self.prompt_ids(task, past, turn.observation, privileged(k) if privileged else None))
            recorded = (turn.info.get("reply", turn.action), turn.completion_ids)
            reply, ids = replies[k] if replies is not None else recorded
            past.append(PastTurn(turn.observation, reply, ids))
        return out

    def _encode(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"]) if text else []

    def _drop_leading_end(self, text: str) -> str:
        """A reply that ended with the end-of-turn token already closed the turn: drop the template's copy."""
        for end_id in self._end_ids:
            end = self.tokenizer.convert_ids_to_tokens(end_id)
            if isinstance(end, str) and text.startswith(end):
                return text[len(end) :]
        return text
