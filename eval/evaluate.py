"""Evaluation runs: every agent on every environment over the same seeded test tasks, and the metrics per pair.

`evaluate` loads each agent once (a model is reused across environments), plays task indices 0..N-1 of the split
with `agents.rollout.collect` for each (agent, env) and reduces the Episodes to `Metrics`: success rate with a 95%
Wilson interval, return, steps, generated tokens, invalid actions, wall time. Reports and plots live in
eval/report.py; Episode export (JSONL, Hugging Face datasets) in eval/export.py.
"""

from __future__ import annotations

import math
import os
import re
import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from distillgym.registration import ENVS
from distillgym.types import Episode

#: two-sided 95% normal quantile, Phi^-1(0.975)
Z95 = 1.959963984540054
#: agent specs that need no model
BUILTIN_AGENTS = ("expert", "random")
AGENT_HELP = (
    "Agents: 'expert', 'random', 'tiny' (a small model built locally), a local model directory "
    "(written by save_pretrained, with config.json), a Hugging Face model name (e.g. Qwen/Qwen2.5-0.5B-Instruct), "
    "cascade:SPEC.json (an in-context cascade) or http://HOST:PORT (a running `distillgym serve`)."
)


class UnknownEnvError(ValueError):
    """An environment id that is not registered (the message lists the registered ids)."""


class UnknownAgentError(ValueError):
    """An agent spec that names no agent, model directory or reachable model (the message says what exists)."""


# ------------------------------------------------------------------------------------------------------ metrics


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion: unlike p +- z*se it stays inside [0, 1] and is not
    degenerate at 0/n or n/n, which matters for the small episode counts of agent evals. n = 0 gives (0, 1)."""
    if n < 0 or not 0 <= successes <= max(n, 0):
        raise ValueError(f"need 0 <= successes <= n, got successes={successes}, n={n}")
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    z2 = z * z
    denom = 1.0 + z2 / n
    center = (p + z2 / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    # at 0/n and n/n the bound is exactly 0 or 1; floating point can land it a hair inside the rate
    low = 0.0 if successes == 0 else max(0.0, center - half)
    high = 1.0 if successes == n else min(1.0, center + half)
    return low, high


@dataclass
class Metrics:
    """What one agent did on one environment, over `episodes` seeded tasks."""

    agent: str
    env_id: str
    episodes: int
    successes: int
    success_rate: float
    ci_low: float  # 95% Wilson interval of the success rate
    ci_high: float
    mean_return: float
    std_return: float  # sample standard deviation (ddof=1); 0 for a single episode
    mean_steps: float
    mean_tokens: float  # generated (completion) tokens per episode; 0 for agents without a model
    invalid_action_rate: float  # invalid turns / all turns, pooled over the episodes
    wall_s: float
    episodes_per_s: float

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Metrics:
        return cls(**{f.name: data[f.name] for f in fields(cls)})


def compute_metrics(
    episodes: Sequence[Episode], *, agent: str | None = None, env_id: str | None = None, wall_s: float = 0.0
) -> Metrics:
    """Reduce Episodes of one agent on one environment to Metrics (agent and env_id default to the episodes')."""
    if not episodes:
        raise ValueError("compute_metrics needs at least one episode")
    n = len(episodes)
    wins = sum(bool(e.success) for e in episodes)
    low, high = wilson_interval(wins, n)
    returns = [e.total_reward for e in episodes]
    turns = sum(e.num_steps for e in episodes)
    invalid = sum(t.invalid_action for e in episodes for t in e.turns)
    return Metrics(
        agent=agent if agent is not None else episodes[0].agent,
        env_id=env_id if env_id is not None else episodes[0].env_id,
        episodes=n,
        successes=wins,
        success_rate=wins / n,
        ci_low=low,
        ci_high=high,
        mean_return=statistics.fmean(returns),
        std_return=statistics.stdev(returns) if n > 1 else 0.0,
        mean_steps=turns / n,
        mean_tokens=sum(e.num_completion_tokens for e in episodes) / n,
        invalid_action_rate=invalid / turns if turns else 0.0,
        wall_s=float(wall_s),
        episodes_per_s=n / wall_s if wall_s > 0 else 0.0,
    )


# ------------------------------------------------------------------------------------------------ names -> things


def registered_env_ids() -> list[str]:
    return [e.id for e in ENVS]


def resolve_env_ids(names: Sequence[str]) -> list[str]:
    """Full registered ids for `names` ('distillgym/' prefix optional; 'all' = every native id, i.e. those that need
    no outside engine or data; an entry point 'package.module:EnvClass' as given), in order, without duplicates;
    UnknownEnvError (listing the registered ids) for a name that is neither."""

    from distillgym.envs.core.make import canonical_id, nameable

    known = registered_env_ids()
    out: list[str] = []
    for name in names:
        name = name.strip()
        if name.lower() == "all":
            ids = [e.id for e in ENVS if not e.external]
        elif nameable(name):  # a registered id (distillgym's namespace optional), an entry point, a GEM id
            ids = [canonical_id(name)]
        else:
            raise UnknownEnvError(f"unknown environment {name!r}. Registered: {', '.join(known)} (or 'all'), an "
                                  "entry point 'package.module:EnvClass', or a GEM id 'gem:game:Sokoban-v0-easy'")
        out += [i for i in ids if i not in out]
    if not out:
        raise UnknownEnvError(f"no environment given. Registered: {', '.join(known)} (or 'all')")
    return out


_HF_NAME = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


def check_agent_spec(spec: str) -> None:
    """Fail fast (UnknownAgentError) on a spec that cannot become an agent, before any model is loaded: not a
    built-in, not a model directory, and not a Hugging Face name that is cached or exists on a reachable Hub."""
    if spec.startswith(("http://", "https://")):
        return
    if spec.startswith("cascade:"):
        if not Path(spec.removeprefix("cascade:")).expanduser().is_file():
            raise UnknownAgentError(f"agent {spec!r}: no cascade spec file at {spec.removeprefix('cascade:')!r}")
        return
    if spec in (*BUILTIN_AGENTS, "tiny"):
        return
    path = Path(spec).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise UnknownAgentError(
                f"agent {spec!r} is a path but not a model directory (no config.json). {AGENT_HELP}"
            )
        return
    if not _HF_NAME.match(spec) or spec.endswith((".", "/")):
        raise UnknownAgentError(f"unknown agent {spec!r}: no such directory, and not a model name. {AGENT_HELP}")
    from huggingface_hub import try_to_load_from_cache

    if isinstance(try_to_load_from_cache(spec, "config.json"), str):
        return
    if os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0"):
        raise UnknownAgentError(
            f"unknown agent {spec!r}: no such directory, and not in the local Hugging Face cache "
            f"(offline mode: nothing is downloaded). {AGENT_HELP}"
        )
    from huggingface_hub import model_info
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    try:
        model_info(spec, timeout=10)
    except GatedRepoError:
        return  # exists; loading says whether this user may read it
    except RepositoryNotFoundError as e:
        raise UnknownAgentError(f"unknown agent {spec!r}: no such directory or Hugging Face model. {AGENT_HELP}") from e
    except Exception as e:  # network down or Hub unreachable: loading would only retry and fail slowly
        raise UnknownAgentError(
            f"unknown agent {spec!r}: no such directory, not in the local Hugging Face cache, and the Hub is "
            f"unreachable ({e.__class__.__name__}: {e}). {AGENT_HELP}"
        ) from e


def load_agent(spec: str, *, check: bool = True, **model_kwargs: Any) -> Any:
    """An Agent from a spec (see AGENT_HELP); model_kwargs go to a model agent only (sampling, history,
    batch_size). UnknownAgentError when the spec names nothing loadable (check=False: the spec was checked)."""
    from distillgym.agents.policies import make_agent

    if check:
        check_agent_spec(spec)
    if spec in BUILTIN_AGENTS:
        return make_agent(spec)
    if spec.startswith(("http://", "https://")):  # a running `distillgym serve`
        from distillgym.agents.remote import RemoteCascade

        return RemoteCascade(spec)
    if spec.startswith("cascade:"):
        from distillgym.agents.cascade import CascadeSpec, build

        try:
            return build(CascadeSpec.load(spec.removeprefix("cascade:")))
        except (ValueError, OSError) as e:
            raise UnknownAgentError(f"cannot build cascade {spec!r}: {e}") from e
    try:
        return make_agent(spec, **model_kwargs)
    except (ValueError, OSError) as e:
        raise UnknownAgentError(f"cannot load agent {spec!r}: {e}") from e


# ------------------------------------------------------------------------------------------------------- contexts

#: What a model agent may be shown besides its own prompt (`evaluate(contexts=...)`, `distillgym eval --context`).
CONTEXT_HELP = (
    "plain (the prompt alone), privileged (the env's privileged info: the expert's plan or solution), "
    "expert-skill (a skill summarized from the expert's own episode on the same task), "
    "skill:STORE (the skill the store at STORE retrieves for the task, queried with its text and first observation)"
)


def parse_context(spec: str) -> tuple[str, str | None]:
    """(kind, argument) of a context spec; ValueError naming the choices for anything else."""
    kind, sep, arg = spec.strip().partition(":")
    if kind in ("plain", "privileged", "expert-skill") and not sep:
        return kind, None
    if kind == "skill" and arg:
        if not Path(arg).expanduser().is_file():
            raise ValueError(f"context {spec!r}: no skill store at {arg!r}")
        return kind, arg
    raise ValueError(f"unknown context {spec!r}; contexts: {CONTEXT_HELP}")


def context_label(spec: str) -> str:
    """How a context appears in an agent's name ('' for plain)."""
    kind, _ = parse_context(spec)
    return "" if kind == "plain" else f" [{kind}]"


def _expert_skills(env_id: str, episodes: int, split: str, seed: int, num_envs: int,
                   env_kwargs: dict[str, Any] | None) -> dict[int, str | None]:
    """task index -> the ExpertSummarizer's skill of the expert's episode on that task (None where it has none)."""
    from distillgym.agents.policies import ExpertAgent
    from distillgym.agents.rollout import collect
    from distillgym.skills import ExpertSummarizer, task_key_of

    summarizer, out = ExpertSummarizer(), {}
    for ep in collect(ExpertAgent(), env_id, episodes, split=split, num_envs=num_envs, seed=seed,
                      env_kwargs=env_kwargs, progress=False):
        skill = summarizer.summarize(ep, task_key_of(ep))
        out[ep.task_index] = skill.text() if skill is not None else None
    return out


def context_agent(agent: Any, spec: str, env_id: str, name: str, *, episodes: int, split: str, seed: int,
                  num_envs: int, env_kwargs: dict[str, Any] | None) -> Any:
    """`agent` (a ModelAgent) shown the context `spec` on `env_id`'s tasks 0..episodes-1; the agent itself for
    plain."""
    from distillgym.agents.policies import ModelAgent

    kind, arg = parse_context(spec)
    if kind == "plain":
        return agent
    privileged: Any = True
    if kind == "expert-skill":
        texts = _expert_skills(env_id, episodes, split, seed, num_envs, env_kwargs)
        privileged = lambda req: texts.get(int(req.info.get("task_index", -1)))  # noqa: E731
    elif kind == "skill":
        from distillgym.skills import EpisodeSkills, SkillStore

        privileged = EpisodeSkills(SkillStore(str(arg)))
    return ModelAgent(agent.backend, sampling=agent.sampling, history=agent.history, privileged=privileged,
                      name=name, privileged_at=agent.privileged_at)


# ----------------------------------------------------------------------------------------------------- the run


@dataclass
class EvalResult:
    """Metrics per (agent, env) in run order, the run's config, and the Episodes (kept in memory for export)."""

    metrics: list[Metrics]
    config: dict[str, Any] = field(default_factory=dict)
    episodes: dict[tuple[str, str], list[Episode]] = field(default_factory=dict, repr=False)

    @property
    def agents(self) -> list[str]:
        return list(dict.fromkeys(m.agent for m in self.metrics))

    @property
    def env_ids(self) -> list[str]:
        return list(dict.fromkeys(m.env_id for m in self.metrics))

    def get(self, agent: str, env_id: str) -> Metrics:
        """The Metrics of one pair; env_id with or without the 'distillgym/' prefix."""
        from distillgym.envs.core.make import canonical_id

        for m in self.metrics:
            if m.agent == agent and m.env_id in (env_id, canonical_id(env_id)):
                return m
        raise KeyError(f"no result for agent {agent!r} on {env_id!r}; agents {self.agents}, envs {self.env_ids}")

    def all_episodes(self) -> list[Episode]:
        return [e for eps in self.episodes.values() for e in eps]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able metrics and config (the Episodes go through eval/export.py)."""
        return {"config": self.config, "metrics": [asdict(m) for m in self.metrics]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EvalResult:
        return cls(metrics=[Metrics.from_dict(m) for m in data["metrics"]], config=dict(data.get("config", {})))


def _agent_names(agents: Sequence[Any]) -> list[str]:
    names: list[str] = []
    for a in agents:
        base = a if isinstance(a, str) else str(getattr(a, "name", "") or type(a).__name__)
        name, k = base, 2
        while name in names:
            name, k = f"{base}#{k}", k + 1
        names.append(name)
    return names


def evaluate(
    agents: Sequence[str | Any],
    env_ids: Sequence[str],
    episodes: int,
    *,
    split: str = "test",
    seed: int = 0,
    num_envs: int = 16,
    env_kwargs: dict[str, Any] | None = None,
    temperature: float = 0.0,
    max_tokens: int = 32,
    history: int | None = 4,
    batch_size: int = 64,
    progress: bool = True,
    contexts: Sequence[str] = ("plain",),
    privileged_at: str = "end",
) -> EvalResult:
    """Run every agent on every env over task indices 0..episodes-1 of `split` and measure each pair.

    contexts: each model agent plays once per context (see CONTEXT_HELP), on the same tasks with the same seed, as
    "<name> [<context>]" (plain keeps the name): the teacher's view, side by side with the student's. Agents
    without a model (expert, random) play plain only.

    agents: specs ('expert', 'random', 'tiny', a model directory, an HF name) or Agent objects; every agent plays
    the same tasks with the same rollout seed. Model agents sample with `temperature` (0 = greedy, the default, so
    a score is not a draw), `max_tokens` per reply, `history` past turns in the prompt (None = all) and generate
    `batch_size` prompts at a time; a privileged context goes where `privileged_at` says ("end" or "system", as
    the model was trained: see PromptBuilder). env_kwargs go to every environment. A model is loaded once, before any
    episode is played, and reused across environments.
    """
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    if not agents:
        raise UnknownAgentError(f"no agent given. {AGENT_HELP}")
    from distillgym.agents.generation import SamplingParams
    from distillgym.agents.rollout import collect
    from distillgym.envs.core.make import short_id

    ids = resolve_env_ids(env_ids)
    contexts = list(dict.fromkeys(contexts)) or ["plain"]
    for spec in contexts:
        parse_context(spec)  # fail before loading anything
    sampling = SamplingParams(temperature=temperature, max_tokens=max_tokens)
    from distillgym.agents.prompts import PRIVILEGED_PLACES

    if privileged_at not in PRIVILEGED_PLACES:
        raise ValueError(f"privileged_at must be one of {PRIVILEGED_PLACES}, got {privileged_at!r}")
    for a in agents:
        if isinstance(a, str):
            check_agent_spec(a)  # every name is checked before the first (slow) model load
    names = _agent_names(agents)
    loaded: list[Any] = []
    load_s: dict[str, float] = {}
    for name, a in zip(names, agents, strict=True):
        t = time.perf_counter()
        loaded.append(
            load_agent(a, check=False, sampling=sampling, history=history, batch_size=batch_size,
                       privileged_at=privileged_at)
            if isinstance(a, str)
            else a
        )
        load_s[name] = round(time.perf_counter() - t, 3)
    result = EvalResult(
        metrics=[],
        config={
            "agents": names,
            "agent_specs": [a if isinstance(a, str) else type(a).__name__ for a in agents],
            "env_ids": ids,
            "episodes": episodes,
            "task_indices": f"0..{episodes - 1}",
            "split": split,
            "seed": seed,
            "num_envs": num_envs,
            "env_kwargs": dict(env_kwargs or {}),
            "sampling": {"temperature": temperature, "max_tokens": max_tokens},
            "history": history,
            "batch_size": batch_size,
            "agent_load_s": load_s,
            "contexts": contexts,
            "privileged_at": privileged_at,
        },
    )
    from distillgym.agents.policies import ModelAgent

    for base, agent in zip(names, loaded, strict=True):
        for spec in contexts if isinstance(agent, ModelAgent) else ["plain"]:
            name = base + context_label(spec)
            for env_id in ids:
                t = time.perf_counter()
                player = context_agent(agent, spec, env_id, name, episodes=episodes, split=split, seed=seed,
                                       num_envs=num_envs, env_kwargs=env_kwargs)
                eps = collect(
                    player, env_id, episodes, split=split, num_envs=num_envs, seed=seed, env_kwargs=env_kwargs,
                    progress=progress, desc=f"{name} on {short_id(env_id)}",
                )
                wall = time.perf_counter() - t
                for e in eps:
                    e.agent = name
                result.episodes[(name, env_id)] = eps
                result.metrics.append(compute_metrics(eps, agent=name, env_id=env_id, wall_s=wall))
    return result
