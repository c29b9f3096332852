"""The skill record: a natural-language lesson drawn from earlier attempts at a task (Skill-SD).

A skill is {success_analysis, mistake_analysis, golden_workflow} plus where it came from and how it has fared
(uses, reward_sum) when it was appended to the teacher's prompt. `Skill.text()` is exactly what the teacher sees.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, fields
from typing import Any

_WORD = re.compile(r"[^\W_]+")  # letters and digits: "send_money" -> send, money


@dataclass
class Skill:
    """One skill for one task of one environment family."""

    task_family: str  # env family, e.g. "sokoban", "apps"
    task_key: str  # the task it came from, e.g. "distillgym/Sokoban-6x6-1-v0:train:17"
    success_analysis: str
    mistake_analysis: str
    golden_workflow: list[str]  # ordered steps
    source_episodes: list[str] = field(default_factory=list)  # provenance ids
    task_text: str = ""  # the task as the agent read it (retrieval matches similar tasks on it)
    id: int | None = None
    uses: int = 0  # episodes whose teacher used it
    reward_sum: float = 0.0  # sum of those episodes' rewards
    version: int = 1
    created_at: str = ""  # ISO, set by the store
    updated_at: str = ""

    @property
    def mean_reward(self) -> float:
        """Mean reward of the episodes whose teacher used this skill (0 when unused)."""
        return self.reward_sum / self.uses if self.uses > 0 else 0.0

    def text(self) -> str:
        """How the skill reads in the teacher's prompt (short and deterministic)."""
        lines = ["Skill (from earlier attempts):"]
        if self.success_analysis.strip():
            lines.append(f"What worked: {_one_line(self.success_analysis)}")
        if self.mistake_analysis.strip():
            lines.append(f"Mistakes to avoid: {_one_line(self.mistake_analysis)}")
        steps = [s for s in (_step_text(x) for x in self.golden_workflow) if s]
        if steps:
            lines.append("Workflow:")
            lines.extend(f"{i}. {s}" for i, s in enumerate(steps, 1))
        return "\n".join(lines)

    def content(self) -> str:
        """The lesson's text alone (no header), used for deduplication and retrieval."""
        return "\n".join([self.success_analysis, self.mistake_analysis, *self.golden_workflow])

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Skill:
        """A Skill from `to_dict`'s output; unknown keys are ignored, a string workflow is split into steps."""
        names = {f.name for f in fields(cls)}
        data = {k: v for k, v in d.items() if k in names}
        wf = data.get("golden_workflow", [])
        if isinstance(wf, str):
            wf = split_steps(wf)
        data["golden_workflow"] = [str(s) for s in wf]
        data["source_episodes"] = [str(s) for s in data.get("source_episodes") or []]
        return cls(**data)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _step_text(step: str) -> str:
    """A workflow step as printed: one line, or a multi-line step (code) with its lines indented under the number."""
    body = [ln.rstrip() for ln in str(step).strip("\n").splitlines()]
    while body and not body[-1]:
        body.pop()
    if not body:
        return ""
    return "\n".join([body[0].strip(), *("   " + ln for ln in body[1:])])


_NUMBERING = re.compile(r"^\s*(?:[-*•]|\(?\d+[.):]|step\s*\d+[.):]?)\s*", re.IGNORECASE)


def split_steps(text: str) -> list[str]:
    """A workflow written as one string ("1. a\\n2. b", "- a\\n- b", or "a; b" on one line) as a list of steps."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if len(lines) == 1 and ";" in lines[0]:
        lines = lines[0].split(";")
    return [s for s in (_NUMBERING.sub("", ln).strip() for ln in lines) if s]


def strip_numbering(step: str) -> str:
    """One step on one line without its list marker ("2. ", "- ", "Step 3:")."""
    return _NUMBERING.sub("", _one_line(step)).strip()


def line_keys(text: str, max_lines: int = 24, max_len: int = 48) -> str:
    """One word per short line of `text`, naming the line's position and its exact content (`l3x23x5f...`): a
    grid such as a Sokoban room becomes words that only rooms with the same row in the same place share, which is
    what BM25 needs to tell rooms apart (its own words drop the symbols grids are made of)."""
    words = []
    for i, line in enumerate(text.splitlines()[:max_lines]):
        line = line.strip()
        if line and len(line) <= max_len:
            words.append(f"l{i}" + "".join(c.lower() if c.isalnum() else f"x{ord(c):x}" for c in line))
    return " ".join(words)


def task_identity(episode: Any) -> str:
    """What identifies an episode's task, for finding skills of the same or similar tasks: its text, its first
    observation and that observation's line keys (where every task reads the same, as in Sokoban, the room is
    what tells tasks apart)."""
    return identity_text(str(episode.task), str(getattr(episode, "initial_observation", "") or ""))


def identity_text(task: str, first_observation: str) -> str:
    """`task_identity` from a task's text and its first observation."""
    if not first_observation or first_observation in task:
        return task
    return f"{task}\n{first_observation}\n{line_keys(first_observation)}"


def tokens(text: str) -> list[str]:
    """Lower-case word tokens (the normalization behind deduplication and BM25)."""
    return _WORD.findall(text.lower())
