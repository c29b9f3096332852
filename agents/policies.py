"""Agents behind one interface: a model policy, each family's expert, and a random policy.

An agent acts for a batch of environments at once (`act(requests, seed)`): a model agent batches generation across
them; the expert and random agents answer per env. Each answer is the action text for `env.step` and, for a model,
the exact prompt ids, sampled completion ids and their logprobs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from distillgym.agents.generation import Backend, SamplingParams
from distillgym.agents.prompts import PastTurn, PromptBuilder
from distillgym.envs.core.protocol import DEFAULT_PROTOCOL, AgentProtocol


def row_seed(seed: int, episode: int, step: int) -> int:
    """The sampling seed of one reply: the rollout's seed, the episode's index in its rollout and the step, so a row
    draws the same whatever else is in its batch (num_envs, order, which episodes already ended)."""
    return int(np.random.SeedSequence([seed, episode, step, 17]).generate_state(1, np.uint64)[0] >> 1)


@dataclass
class ActRequest:
    """What an agent knows when it acts in one environment."""

    env: Any  # the unwrapped env (experts ask it for their plan)
    family: str  # the env's family name (what skills are filed under)
    task: str
    observation: str
    info: dict[str, Any]
    past: list[PastTurn] = field(default_factory=list)
    episode: int = 0  # index of the episode in its rollout (seeds per-episode randomness)
    step: int = 0
    seed: int = 0  # the rollout's seed: with episode and step, seeds randomness independent of batching
    protocol: AgentProtocol = DEFAULT_PROTOCOL  # how to talk to this env (`protocol_of(env)`)


@dataclass
class ActResult:
    """An agent's answer for one environment."""

    action: str  # sent to env.step
    reply: str = ""  # what the agent wrote (the action for non-model agents)
    prompt_ids: list[int] | None = None
    completion_ids: list[int] | None = None
    logprobs: list[float] | None = None
    info: dict[str, Any] = field(default_factory=dict)  # JSON-able extras kept on the turn (a cascade's accounting)


class Agent(Protocol):
    name: str

    def act(self, requests: Sequence[ActRequest], seed: int) -> list[ActResult]:
        """One answer per request; deterministic for a seed."""
        ...


def _actions(req: ActRequest) -> list[str]:
    admissible = req.info.get("admissible_actions")
    if admissible:
        return list(admissible)
    if req.protocol.actions:
        return list(req.protocol.actions)
    raise ValueError(f"family {req.family!r} lists no admissible actions and its agent protocol no fixed action set, "
                     "so a random agent cannot act in it")


class RandomAgent:
    """Uniform over the admissible actions (over the family's action set when it lists none; else the env's own
    `sample_random_action()`, as GEM envs have)."""

    name = "random"

    def act(self, requests: Sequence[ActRequest], seed: int) -> list[ActResult]:
        out = []
        for req in requests:
            sample = getattr(getattr(req.env, "unwrapped", req.env), "sample_random_action", None)
            if callable(sample) and not req.info.get("admissible_actions") and not req.protocol.actions:
                a = str(sample())  # the env's own random move (a GEM env: in its own format, from its own stream)
            else:
                rng = np.random.default_rng([req.seed, req.episode, req.step])  # the same for any num_envs
                actions = _actions(req)
                a = actions[int(rng.integers(len(actions)))]
            out.append(ActResult(action=a, reply=a))
        return out


class ExpertAgent:
    """Each family's solver (`env.expert_action()`); a random admissible action where the expert has none."""

    name = "expert"

    def act(self, requests: Sequence[ActRequest], seed: int) -> list[ActResult]:
        out = []
        for req in requests:
            expert = getattr(getattr(req.env, "unwrapped", req.env), "expert_action", None)
            if not callable(expert):
                raise ValueError(f"the expert agent needs an env with an expert (expert_action); "
                                 f"{type(getattr(req.env, 'unwrapped', req.env)).__name__} has none")
            a = expert()
            if a is None:
                a = RandomAgent().act([req], seed)[0].action
            out.append(ActResult(action=a, reply=a))
        return out


class ModelAgent:
    """A language model through any generation backend, with each env's prompts and reply parser (its protocol).

    privileged: show each step's `info["privileged"]` (or this fixed text, or `privileged(request)`) in the prompt --
    a teacher, never a student. examples: `examples(request)` is shown after the task (in-context demonstrations,
    `agents.cascade.DemoContext`). A reply that names no action is sent as written, so the env answers with its
    invalid-action feedback.
    """

    def __init__(
        self,
        backend: Backend,
        *,
        sampling: SamplingParams | None = None,
        history: int | None = 4,
        privileged: bool | str | Callable[[ActRequest], str | None] = False,
        name: str = "",
        privileged_at: str = "end",
        examples: Callable[[ActRequest], str | None] | None = None,
    ) -> None:
        self.backend = backend
        self.tokenizer = backend.tokenizer
        self.sampling = sampling or SamplingParams(temperature=1.0, max_tokens=32)
        self.history = history
        self.privileged = privileged
        self.name = name or getattr(backend, "name", "") or "model"
        self.privileged_at = privileged_at
        self.examples = examples
        self._builders: dict[AgentProtocol, PromptBuilder] = {}

    def builder(self, protocol: AgentProtocol) -> PromptBuilder:
        if protocol not in self._builders:
            self._builders[protocol] = PromptBuilder(self.tokenizer, protocol, history=self.history,
                                                     privileged_at=self.privileged_at)
        return self._builders[protocol]

    def _privileged(self, req: ActRequest) -> Mapping[str, Any] | str | None:
        if self.privileged is False:
            return None
        if isinstance(self.privileged, str):
            return self.privileged
        if callable(self.privileged):  # per request, e.g. the skill selected for this task
            return self.privileged(req)
        return req.info.get("privileged") or None

    def prompt_ids(self, req: ActRequest) -> list[int]:
        """The exact prompt this agent generates from for `req`."""
        examples = self.examples(req) if self.examples is not None else None
        return self.builder(req.protocol).prompt_ids(req.task, req.past, req.observation, self._privileged(req),
                                                     examples)

    def act(self, requests: Sequence[ActRequest], seed: int) -> list[ActResult]:
        if not requests:
            return []
        prompts = [self.prompt_ids(r) for r in requests]
        stop = tuple(dict.fromkeys(self.sampling.stop + requests[0].protocol.stop))
        params = SamplingParams(
            temperature=self.sampling.temperature,
            top_p=self.sampling.top_p,
            top_k=self.sampling.top_k,
            max_tokens=self.sampling.max_tokens,
            stop=stop,
            seed=seed,
            seeds=tuple(row_seed(r.seed, r.episode, r.step) for r in requests),
            sessions=tuple(r.seed * 1_000_003 + r.episode for r in requests),  # a fleet keeps an episode on one server
        )
        completions = self.backend.generate(prompts, params)
        out = []
        for req, prompt, c in zip(requests, prompts, completions, strict=True):
            action = req.protocol.parse(c.text)
            out.append(ActResult(action if action is not None else c.text, c.text, prompt, c.ids, c.logprobs))
        return out


def make_agent(spec: str, **kwargs: Any) -> Agent:
    """An agent from a short spec: 'expert', 'random', or a model ('tiny', a local path or an HF name) with
    kwargs for ModelAgent (sampling, history, privileged) and `batch_size` for its transformers backend."""
    if spec == "expert":
        return ExpertAgent()
    if spec == "random":
        return RandomAgent()
    from distillgym.agents.generation import TransformersBackend
    from distillgym.agents.models import load

    batch_size = kwargs.pop("batch_size", 64)
    model, tokenizer = load(spec)
    return ModelAgent(TransformersBackend(model, tokenizer, batch_size=batch_size, name=spec), name=spec, **kwargs)
