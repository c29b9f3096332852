"""Skill-SD: skill-conditioned self-distillation (docs/algorithms.md).

Each iteration: a skill is chosen per training task from the skill store by UCB; the student acts on the plain
task prompt (G rollouts per task); the teacher (the same weights, synced every iteration: its log-probabilities are
taken before the update) scores the student's sampled tokens under the student's prompt plus the skill; the loss is

    L = L_GRPO + lambda * L_SDL,    L_SDL = mean_t rho_t * (exp(-l_t) - 1 + l_t),
    l_t = log pi_S(y_t) - log pi_T(y_t),   rho_t = pi_theta(y_t) / sg(pi_old(y_t))   (rho keeps its gradient),

the importance-weighted k3 estimate of reverse KL(S || T) (`losses.iw_reverse_kl`). The episodes' rewards update
the skills' UCB statistics, and every finished episode is summarized into a new skill in the background (the
summarizer never blocks the step). The store is checkpointed and resumed with the run.

Ablations (the paper's): `teacher=frozen` (the initial weights instead of synced ones), `skill_in=student` (the
skill in the student's own prompt and no distillation: "GRPO with skills in the student prompt").
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from distillgym.skills import identity_text, task_identity
from distillgym.trainers import core, grpo
from distillgym.trainers.config import Clip, Reduce, opt
from distillgym.trainers.losses import iw_reverse_kl


@dataclass
class Config(Clip, Reduce):
    lmbda: float = opt(0.001, "weight of L_SDL (the paper's sweep on AppWorld: 0.001 best)")
    teacher: Literal["self", "frozen"] = opt(
        "self", "self (same weights, synced every iteration) | frozen (the initial weights: ablation)")
    skill_in: Literal["teacher", "student"] = opt(
        "teacher", "teacher (Skill-SD) | student (ablation: the skill in the student's prompt, GRPO only)")
    ucb_c: float = opt(1.0, "UCB exploration constant (not published)")
    ucb_reward: Literal["success", "return"] = opt(
        "success", "what updates a skill's mean: success (0/1) | return (the episode's return)")
    similar: bool = opt(True, "a task with no skill of its own borrows the skill of the most similar task")
    retriever: Literal["bm25", "embed"] = opt(
        "bm25", "how similar tasks are found: bm25 (lexical) | embed (all-MiniLM-L6-v2, the embed extra)")
    summarizer: Literal["expert", "model", "none"] = opt(
        "expert", "expert (model-free: the episode against the expert's plan) | model | none")
    summarizer_model: str = opt(
        "", "summarizer=model: a local model directory (run on the CPU, in the background thread), or the URL of an "
        "OpenAI-compatible server (vLLM's)")
    summarizer_tokenizer: str = opt("", "summarizer=model with a server URL: a local path to its tokenizer")
    summarizer_max_tokens: int = opt(512, "the summary's reply budget (greedy)")
    summarize: Literal["all", "success", "failure"] = opt(
        "all", "which finished episodes become skills: all | success | failure")
    store: str = opt("", "skill store path (default: <out_dir>/skills.sqlite); an existing store seeds the run")
    advantage: Literal["grpo", "gigpo"] = opt("grpo", "grpo | gigpo (see grpo.advantage)")
    normalize_std: bool = opt(True, "divide advantages by the group's reward std")


class SkillState:
    """The run's skill store and background summarizer; `state_dict` makes the store part of a checkpoint."""

    def __init__(self, path: Path, cfg: Config, summarizer: Any = None) -> None:
        from distillgym.skills import AsyncSummarizer, ExpertSummarizer, LLMSummarizer, SkillStore

        self.path = path
        self.cfg = cfg
        path.parent.mkdir(parents=True, exist_ok=True)
        self.store = SkillStore(path, retriever=cfg.retriever)
        if summarizer is None and cfg.summarizer == "expert":
            summarizer = ExpertSummarizer()
        elif summarizer is None and cfg.summarizer == "model":
            summarizer = LLMSummarizer.from_spec(cfg.summarizer_model, tokenizer=cfg.summarizer_tokenizer or None,
                                                 max_tokens=cfg.summarizer_max_tokens)
        self.summarizer = summarizer
        self.writer = AsyncSummarizer(summarizer, path) if summarizer is not None else None

    def state_dict(self) -> dict[str, Any]:
        """A consistent copy of the store (SQLite's backup API), after the summaries queued so far are written."""
        if self.writer is not None:
            self.writer.flush(timeout=60)
        with tempfile.TemporaryDirectory() as tmp:
            copy = Path(tmp) / "skills.sqlite"
            self.store.backup(copy)
            return {"sqlite": copy.read_bytes()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Put the store back as it was at the checkpoint (skills written after it are dropped)."""
        if self.writer is not None:
            self.writer.flush(timeout=60)
            self.writer.close()
        self.store.close()
        tmp = self.path.with_suffix(".restore")
        tmp.write_bytes(state["sqlite"])
        for suffix in ("-wal", "-shm"):
            Path(str(self.path) + suffix).unlink(missing_ok=True)
        os.replace(tmp, self.path)
        self.__init__(self.path, self.cfg, self.summarizer)  # type: ignore[misc]

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.store.close()


@dataclass
class State(core.AlgoState):
    """The skill store (checkpointed with the run) and the teacher's weights: the training model itself (synced
    every iteration) or, for the frozen-teacher ablation, a copy of the initial policy (rebuilt at setup)."""

    skills: SkillState
    teacher: Any

    def state_dict(self) -> dict[str, Any]:
        return {"skills": self.skills.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if "skills" in state:
            self.skills.load_state_dict(state["skills"])


def setup(run: core.Run, cfg: Config) -> State:
    if cfg.summarizer == "model" and not cfg.summarizer_model:
        raise ValueError("config field skill_sd.summarizer_model must name a local model directory or a server URL "
                         "when skill_sd.summarizer=model")
    path = Path(cfg.store) if cfg.store else run.out / "skills.sqlite"
    return State(SkillState(path, cfg), core.frozen_copy(run.model) if cfg.teacher == "frozen" else run.model)


def task_key(run: core.Run, task_index: int, split: str = "train") -> str:
    """The key skills are filed under (`skills.task_key`): the env and the task (its index within its split)."""
    from distillgym.skills import task_key as key

    return key(run.cfg.env, split, task_index)


def select_skills(run: core.Run, state: State, tasks: Mapping[int, str | None] | Iterable[int],
                  cfg: Config) -> dict[int, Any]:
    """The skill (or None) each task's teacher gets this iteration, by UCB over the store. `tasks` maps a task
    index to its text (what the student read), which finds skills of similar tasks when the task has none."""
    store = state.skills.store
    queries = tasks if isinstance(tasks, Mapping) else dict.fromkeys(tasks)
    out: dict[int, Any] = {}
    for t, query in queries.items():
        picked = store.select(run.family, task_key(run, t), c=cfg.ucb_c, k=1, similar=cfg.similar, query=query)
        out[t] = picked[0] if picked else None
    return out


def iteration(run: core.Run, cfg: Config, state: State) -> dict[str, float]:
    tasks = core.train_tasks(run.cfg, run.iteration)
    skills: dict[int, Any] = {}
    if cfg.skill_in == "student":  # ablation: the student itself reads the skill, chosen when it first acts

        def privileged(req: Any) -> str | None:
            t = req.info.get("task_index")
            if t not in skills:  # asked at the episode's first step: the observation is its first
                skills.update(select_skills(run, state, {t: identity_text(req.task, req.observation)}, cfg))
            return skills[t].text() if skills[t] is not None else None

        episodes = core.rollout(run, core.model_agent(run, privileged=privileged), tasks, run.cfg.group_size)
    else:  # the skill is chosen after the rollout, for the teacher only
        episodes = core.rollout(run, core.model_agent(run), tasks, run.cfg.group_size)
        skills = select_skills(run, state, {ep.task_index: task_identity(ep) for ep in episodes}, cfg)
    text = {t: (s.text() if s is not None else None) for t, s in skills.items()}
    metrics: dict[str, float] = {**core.episode_metrics(episodes)}
    metrics["skills/tasks_with_skill"] = sum(s is not None for s in skills.values()) / max(1, len(skills))
    _update_stats(state, episodes, skills, cfg)
    _summarize(run, state, episodes, cfg)

    pg = grpo.Config(clip_low=cfg.clip_low, clip_high=cfg.clip_high, loss_agg=cfg.loss_agg, advantage=cfg.advantage,
                     normalize_std=cfg.normalize_std)
    samples, advantages = grpo.token_samples(episodes, grpo.turn_advantages(episodes, pg), drop_zero=False)
    metrics["samples"] = len(samples)
    if not samples:
        return metrics
    if cfg.skill_in == "teacher" and cfg.lmbda > 0:
        rows = _teacher_logprobs(run, state.teacher, episodes, samples, text)
        metrics.update(grpo.policy_gradient_step(run, samples, advantages, pg, _sdl_term(run, cfg), teacher_logp=rows))
    else:
        metrics.update(grpo.policy_gradient_step(run, samples, advantages, pg))
    return metrics


def teacher_prompts(run: core.Run, episodes: list, text: dict[int, str | None]) -> list[list[int]]:
    """The teacher's prompt for every student turn: the student's prompt (same history, exact reply ids) plus the
    task's skill as privileged context. Only the teacher's prompt ever holds the skill."""
    return core.teacher_prompts(episodes, run.builder(), lambda ep, k: text.get(ep.task_index))


@torch.no_grad()
def _teacher_logprobs(run: core.Run, teacher: Any, episodes: list, samples: list,
                      text: dict[int, str | None]) -> list[list[float]]:
    """log pi_T of each sampled token under the skill-conditioned prompt, taken before the update (the teacher is
    synced to the iteration's starting weights, also across `updates_per_iter` steps)."""
    prompts = teacher_prompts(run, episodes, text)
    rows: list[list[float]] = []
    size = run.cfg.micro_batch_size
    for lo in range(0, len(samples), size):
        micro = samples[lo : lo + size]
        logp, _ = core.logprobs(teacher, micro, run.pad_id, prompts=prompts[lo : lo + size])
        rows += [logp[j, : len(s.completion_ids)].tolist() for j, s in enumerate(micro)]
    return rows


def _sdl_term(run: core.Run, cfg: Config) -> grpo.ExtraLoss:
    """lambda * rho_t * k3(l_t) per token, against the teacher log-probabilities taken before the update (the
    step's `teacher_logp` column)."""

    def term(micro: core.Micro, logp: torch.Tensor, batch: core.Batch) -> tuple[torch.Tensor, dict[str, float]]:
        t_logp = core.token_tensor(micro.cols["teacher_logp"], logp.shape[1], run.device)
        sdl = iw_reverse_kl(logp, batch.old_logp, t_logp)
        m = batch.mask.sum().clamp(min=1)
        metrics = {"sdl": float((sdl.detach() * batch.mask).sum() / m),
                   "teacher_minus_student_logp": float(((t_logp - logp.detach()) * batch.mask).sum() / m)}
        return cfg.lmbda * sdl, metrics

    return term


def _update_stats(state: State, episodes: list, skills: dict[int, Any], cfg: Config) -> None:
    store = state.skills.store
    for ep in episodes:
        s = skills.get(ep.task_index)
        if s is not None and s.id is not None:
            reward = float(ep.success) if cfg.ucb_reward == "success" else float(ep.total_reward)
            store.update_stats(s.id, reward)


def _summarize(run: core.Run, state: State, episodes: list, cfg: Config) -> None:
    writer = state.skills.writer
    if writer is None:
        return
    for ep in episodes:
        if cfg.summarize == "all" or (cfg.summarize == "success") == bool(ep.success):
            writer.submit(ep, task_key(run, ep.task_index, ep.split))


def export_store(state: State, path: str | Path) -> Path:
    """Copy the run's skill store (after pending summaries) to `path`."""
    if state.skills.writer is not None:
        state.skills.writer.flush(timeout=60)
    state.skills.store.backup(path)
    return Path(path)


def teacher_context(run: core.Run, cfg: Config, state: State) -> Any:
    """The self-teacher reads the skill the store retrieves for the task (by what identifies it)."""
    from distillgym.skills import EpisodeSkills

    return EpisodeSkills(state.skills.store)


__all__ = ["Config", "SkillState", "State", "export_store", "iteration", "select_skills", "setup", "task_key",
           "teacher_context", "teacher_prompts"]
