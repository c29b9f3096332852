"""The one currency between the rooms: `Turn` and `Episode` (token-in/token-out), and the trainers' `Sample`.

An Episode records exactly what the model saw and sampled: for each turn the prompt token ids it was conditioned
on, the completion token ids it sampled and their log-probabilities. Past turns are never re-tokenized from text.
Environment-only agents (experts, people, random) leave the token fields empty.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Turn:
    """One environment step: what the agent saw, what it sent back, and what that earned."""

    observation: str  # the env's text the agent acted on
    action: str  # the text sent to env.step
    reward: float = 0.0
    terminated: bool = False
    truncated: bool = False
    invalid_action: bool = False
    prompt_ids: list[int] | None = None  # exact prompt tokens the model was conditioned on for this turn
    completion_ids: list[int] | None = None  # exact sampled tokens (the action text is their decoding)
    logprobs: list[float] | None = None  # sampled log-probabilities, one per completion token
    info: dict[str, Any] = field(default_factory=dict)  # JSON-able extras (e.g. admissible actions)

    def __post_init__(self) -> None:
        if self.logprobs is not None and self.completion_ids is None:
            raise ValueError("Turn.logprobs given without completion_ids")
        if self.logprobs is not None and len(self.logprobs) != len(self.completion_ids or []):
            raise ValueError(
                f"Turn.logprobs has {len(self.logprobs)} entries for {len(self.completion_ids or [])} completion ids"
            )

    @property
    def num_completion_tokens(self) -> int:
        return len(self.completion_ids or [])


@dataclass
class Episode:
    """A whole multi-turn episode on one task."""

    env_id: str
    task_index: int
    task_seed: int
    split: str
    task: str  # the instruction text (info["task"] at reset)
    initial_observation: str
    turns: list[Turn] = field(default_factory=list)
    success: bool = False
    privileged: dict[str, Any] = field(default_factory=dict)  # teacher-only information at reset
    agent: str = ""  # who played (model name, "expert", "random", ...)
    group_id: int | None = None  # rollouts of the same task share a group (GRPO)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def total_reward(self) -> float:
        return float(sum(t.reward for t in self.turns))

    @property
    def num_steps(self) -> int:
        return len(self.turns)

    @property
    def num_completion_tokens(self) -> int:
        return sum(t.num_completion_tokens for t in self.turns)

    @property
    def done(self) -> bool:
        return bool(self.turns) and (self.turns[-1].terminated or self.turns[-1].truncated)

    def samples(self, chain: bool = True) -> list[Sample]:
        """Training sequences, token-in/token-out.

        chain=True: consecutive turns whose prompt extends the previous prompt and completion are merged into one
        Sample whose completion interleaves the model's tokens (loss mask 1, sampled logprobs) with the tokens the
        environment wrote in between (mask 0, logprob 0.0); a turn whose prompt does not extend the previous one (a
        bounded history window) starts a new Sample. chain=False: one Sample per turn. `Sample.turn_index` maps
        each completion token to its turn (-1 on environment tokens). Turns without token ids (experts, people)
        are skipped.
        """
        out: list[Sample] = []
        prompt: list[int] = []
        comp: list[int] = []
        mask: list[int] = []
        logp: list[float] = []
        turn_index: list[int] = []

        def flush() -> None:
            if prompt:
                out.append(Sample(prompt, comp, mask, logp, self.total_reward, group_id=self.group_id,
                                  turn_index=turn_index))

        for k, turn in enumerate(self.turns):
            if turn.prompt_ids is None or turn.completion_ids is None:
                continue
            n = len(turn.completion_ids)
            lp = list(turn.logprobs) if turn.logprobs is not None else [0.0] * n
            seq = prompt + comp
            if chain and prompt and len(turn.prompt_ids) >= len(seq) and turn.prompt_ids[: len(seq)] == seq:
                env = turn.prompt_ids[len(seq) :]
                comp += env + turn.completion_ids
                mask += [0] * len(env) + [1] * n
                logp += [0.0] * len(env) + lp
                turn_index += [-1] * len(env) + [k] * n
                continue
            flush()
            prompt, comp = list(turn.prompt_ids), list(turn.completion_ids)
            mask, logp, turn_index = [1] * n, lp, [k] * n
        flush()
        return out

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Episode:
        data = dict(data)
        turns = [Turn(**t) for t in data.pop("turns", [])]
        return cls(turns=turns, **data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> Episode:
        return cls.from_dict(json.loads(text))


@dataclass
class Sample:
    """One training sequence built from an Episode (see trainers/): prompt + completion tokens with a loss mask
    that is 1 on model tokens and 0 on everything the environment wrote."""

    prompt_ids: list[int]
    completion_ids: list[int]
    loss_mask: list[int]
    old_logprobs: list[float]
    reward: float = 0.0
    advantage: float = 0.0
    group_id: int | None = None
    turn_index: list[int] | None = None  # per completion token: the Episode turn it belongs to (-1: env tokens)

    def __post_init__(self) -> None:
        n = len(self.completion_ids)
        if self.turn_index is not None and len(self.turn_index) != n:
            raise ValueError(f"Sample.turn_index has {len(self.turn_index)} entries for {n} completion ids")
        if len(self.loss_mask) != n:
            raise ValueError(f"Sample.loss_mask has {len(self.loss_mask)} entries for {n} completion ids")
        if len(self.old_logprobs) != n:
            raise ValueError(f"Sample.old_logprobs has {len(self.old_logprobs)} entries for {n} completion ids")
        if any(m not in (0, 1) for m in self.loss_mask):
            raise ValueError("Sample.loss_mask must contain only 0 and 1")
