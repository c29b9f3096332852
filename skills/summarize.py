"""Summarizers: a completed episode -> a skill for the next attempt.

`ExpertSummarizer` needs no model: it compares the episode with the expert's plan that the environments expose as
privileged information. `LLMSummarizer` (skills/llm_summarizer.py) asks a text generator for a JSON skill, parsed by
skills/json_repair.py; `AsyncSummarizer` (skills/async_writer.py) runs either on a background thread.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from distillgym.skills.records import Skill, task_identity
from distillgym.types import Episode

log = logging.getLogger(__name__)

FIELDS = ("success_analysis", "mistake_analysis", "golden_workflow")


class Summarizer(Protocol):
    def summarize(self, episode: Episode, task_key: str) -> Skill | None: ...


# ---------------------------------------------------------------------------------------------------- helpers


def family_of(env_id: str) -> str:
    """The env family from an id: "distillgym/Sokoban-6x6-1-v0" -> "sokoban", "Apps-JSON-v0" -> "apps"."""
    name = env_id.rsplit("/", 1)[-1]
    return name.split("-", 1)[0].lower()


def task_key(env_id: str, split: str, task_index: int) -> str:
    """The key skills are filed under, one per task: "<registered env id>:<split>:<task index>" (distillgym's
    namespace always spelled out, so `Sokoban-v0` and `distillgym/Sokoban-v0` file under one key)."""
    from distillgym.envs.core.make import canonical_id

    return f"{canonical_id(env_id)}:{split}:{task_index}"


def task_key_of(episode: Episode) -> str:
    """The task key of an episode (see `task_key`)."""
    return task_key(episode.env_id, episode.split, episode.task_index)


def episode_id(episode: Episode) -> str:
    """A provenance id for an episode (its own meta["episode_id"] when set)."""
    if episode.meta.get("episode_id"):
        return str(episode.meta["episode_id"])
    seed = episode.meta.get("rollout_seed", "")
    return f"{task_key_of(episode)}:{episode.agent or 'agent'}:g{episode.group_id}:s{seed}"


def compress_steps(steps: Sequence[str], max_steps: int = 40) -> list[str]:
    """Runs of the same step as one ("Up x3"), at most `max_steps` entries (then "... (N more steps)"). Single-line
    steps have their whitespace normalized; multi-line steps (code) keep their lines."""
    out: list[str] = []
    keys: list[str] = []
    counts: list[int] = []
    for s in steps:
        key = " ".join(str(s).split())
        multiline = "\n" in str(s).strip()
        if keys and keys[-1] == key and not multiline:
            counts[-1] += 1
        else:
            keys.append(key)
            out.append(str(s).strip("\n").rstrip() if multiline else key)  # code keeps its lines
            counts.append(1)
    runs = [s if n == 1 else f"{s} x{n}" for s, n in zip(out, counts, strict=True)]
    if len(runs) > max_steps:
        rest = sum(counts[max_steps - 1 :])
        runs = [*runs[: max_steps - 1], f"... ({rest} more steps)"]
    return runs


def _norm(action: str) -> str:
    return " ".join(str(action).lower().split())


def _expert_action(turn_info: Mapping[str, Any]) -> str | None:
    priv = turn_info.get("privileged")
    if isinstance(priv, Mapping):
        a = priv.get("expert_action")
        if a is None and isinstance(priv.get("expert_plan"), list) and priv["expert_plan"]:
            a = priv["expert_plan"][0]
        return None if a is None else str(a)
    return None


def plan_of(episode: Episode) -> list[str] | None:
    for key in ("expert_plan", "solution"):
        plan = episode.privileged.get(key)
        if isinstance(plan, list) and plan:
            return [str(a) for a in plan]
    if episode.turns:
        priv = episode.turns[0].info.get("privileged")
        if isinstance(priv, Mapping):
            for key in ("expert_plan", "solution"):
                plan = priv.get(key)
                if isinstance(plan, list) and plan:
                    return [str(a) for a in plan]
    return None


def _short(text: str, limit: int = 60) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _quote(text: str, limit: int = 80) -> str:
    return repr(_short(text, limit))


# -------------------------------------------------------------------------------------------------- expert


class ExpertSummarizer:
    """A skill from an episode and the expert's plan (privileged info), no model needed.

    success_analysis: the outcome and how many actions matched the expert; mistake_analysis: the first deviation
    from the expert (turn, what the agent did, what the expert would do) and the invalid actions; golden_workflow:
    the expert's plan from the start, else the successful episode's own actions (compressed, "Up x3").
    """

    def __init__(self, *, family: str | None = None, max_steps: int = 40) -> None:
        self.family = family
        self.max_steps = max_steps

    def summarize(self, episode: Episode, task_key: str) -> Skill | None:
        if not episode.turns:
            return None
        n = len(episode.turns)
        outcome = "Solved in" if episode.success else "Not solved after"
        plural = "step" if n == 1 else "steps"
        matched, compared, deviation = 0, 0, None
        for t, turn in enumerate(episode.turns):
            expert = _expert_action(turn.info)
            if expert is None:
                continue
            compared += 1
            if _norm(turn.action) == _norm(expert):
                matched += 1
            elif deviation is None:
                deviation = (t, turn.action, expert)
        invalid = [(t, turn.action) for t, turn in enumerate(episode.turns) if turn.invalid_action]

        success = [f"{outcome} {n} {plural} (return {episode.total_reward:+.2f})."]
        if compared:
            success.append(f"{matched} of {compared} actions matched the expert's.")
            prefix = deviation[0] if deviation is not None else n
            if prefix > 0:
                first = compress_steps([_short(tu.action) for tu in episode.turns[:prefix]], 8)
                success.append(f"The opening moves were right: {', '.join(first)}.")
        elif episode.success:
            worked = compress_steps([_short(t.action) for t in episode.turns], 8)
            success.append(f"The actions that worked: {', '.join(worked)}.")

        mistakes: list[str] = []
        if deviation is not None:
            t, did, would = deviation
            mistakes.append(f"First deviation at turn {t + 1}: the agent did {_quote(did)}; the expert would do "
                            f"{_quote(would)}.")
        if invalid:
            t, a = invalid[0]
            mistakes.append(f"{len(invalid)} invalid action(s), first at turn {t + 1}: {_quote(a)}.")
        if not episode.success and episode.turns[-1].truncated:
            mistakes.append(f"Ran out of steps after {n} turns.")
        if not mistakes:
            mistakes.append("None: every action matched the expert." if compared else "None observed.")

        plan = plan_of(episode)
        if plan is None and episode.success:
            plan = [t.action for t in episode.turns if not t.invalid_action]
        if not plan and not compared:
            return None  # nothing reliable to teach
        return Skill(
            task_family=self.family or family_of(episode.env_id),
            task_key=task_key,
            task_text=task_identity(episode),
            success_analysis=" ".join(success),
            mistake_analysis=" ".join(mistakes),
            golden_workflow=compress_steps(plan or [], self.max_steps),
            source_episodes=[episode_id(episode)],
        )
