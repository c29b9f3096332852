"""GLAD (ProAct's first stage): search the real environment, compress each search into a short causal reasoning
chain that ends in the chosen move, and imitate the chains with the SFT trainer.

    episodes = glad_episodes("Sokoban-6x6-2-v0", range(200), cfg=GladConfig(simulations=200))
    write_jsonl(episodes, "glad.jsonl")      # then: distillgym train algo=sft sft.data=glad.jsonl max_tokens=96

At every step of an episode the search (`envs.core.search.mcts`) picks the move; the chain names that move, what it
does (the env's own feedback), how the search continues after it, and the strongest alternatives with their
consequences and values, then the move in the family's answer format:

    thought: Right: You pushed a box onto a target. Then Down, Left. Value 9.6. Up: nothing moved. Value -1.2.
    So Right.
    <action>Right</action>

The template needs no model. ProAct wrote its chains with an LLM (its prompt is not published): `llm_chain` asks any
generation backend to explain the search's facts in its own words, and keeps its text only when the text ends in
the move the tree chose (else the template's). Each turn keeps the chain as `info["reply"]`, which SFT imitates.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from distillgym.envs.core.protocol import protocol_of
from distillgym.envs.core.search import Node, SearchResult, legal_actions, mcts, ranked
from distillgym.types import Episode, Turn


@dataclass
class GladConfig:
    """The search behind each move, and what its chain says."""

    simulations: int = 100  # UCT descents per move
    max_depth: int = 20
    c_uct: float = 1.0
    gamma: float = 0.95
    rollouts: int = 16  # leaf rollouts (batched on the family's simulator for the random policy)
    horizon: int = 50
    rollout_policy: str = "random"  # random | expert (Household, Apps: a random walk rarely reaches the goal)
    rollout_noise: float = 0.1  # the expert policy's chance of a random move
    alternatives: int = 2  # the runner-up moves a chain names
    lookahead: int = 2  # moves of the search's continuation named after each move
    max_steps: int = 0  # steps per episode (0: the env's own limit)


def _sentence(text: str, limit: int = 100) -> str:
    """The first line of `text`, cut at a sentence end within `limit` characters where there is one."""
    line = " ".join(text.split())
    if len(line) <= limit:
        return line
    cut = max(line.rfind(". ", 0, limit), line.rfind("! ", 0, limit))
    return line[: cut + 1] if cut > 0 else line[:limit].rstrip() + "..."


def _value(v: float) -> str:
    return f"{v:.0f}" if abs(v) >= 100 else f"{v:.1f}"


def consequence(node: Node) -> str:
    """What taking the node's action does, in words: the env's feedback, or the end it reaches."""
    if node.success:
        return "This solves the task."
    said = _sentence(node.feedback)
    if node.terminal:
        return f"{said} The episode ends.".strip()
    return said or f"Reward {node.reward:+.1f}."


def continuation(node: Node, length: int) -> list[str]:
    """The most visited path below `node`, up to `length` actions."""
    out: list[str] = []
    while node.children and len(out) < length:
        node = ranked(node)[0]
        out.append(str(node.action))
    return out


def chain_text(result: SearchResult, *, alternatives: int = 2, lookahead: int = 2) -> str:
    """The template chain of one search: the chosen move, then up to `alternatives` runners-up, each with its
    consequence, the search's continuation and its value; then the move as a reply (`<action>MOVE</action>`)."""
    moves = [c for c in result.ranked() if c.visits]
    if not moves:
        raise ValueError("the search visited no action: nothing to explain")
    parts = []
    for node in moves[: 1 + max(0, alternatives)]:
        then = continuation(node, lookahead) if not node.terminal else []
        text = f"{node.action}: {consequence(node)}"
        if then:
            text += f" Then {', '.join(then)}."
        parts.append(f"{text} Value {_value(node.q)}.")
    best = moves[0].action
    return f"thought: {' '.join(parts)} So {best}.\n<action>{best}</action>"


def search_facts(result: SearchResult, lookahead: int = 2, alternatives: int = 3) -> str:
    """The search's findings as plain lines, for a model that writes the chain (`llm_chain`)."""
    lines = []
    for node in [c for c in result.ranked() if c.visits][: 1 + alternatives]:
        then = continuation(node, lookahead)
        lines.append(f"- {node.action}: {consequence(node)}" + (f" Best continuation: {', '.join(then)}." if then
                                                                else "") + f" Estimated value {_value(node.q)} "
                     f"({node.visits} simulations).")
    return "\n".join(lines)


_ACTION_TAG = re.compile(r"<action>(.*?)</action>", re.IGNORECASE | re.DOTALL)


def llm_chain(backend: Any, result: SearchResult, task: str, observation: str, *, parse: Callable[[str], str | None],
              max_tokens: int = 160, seed: int = 0) -> str | None:
    """A chain written by a model through `backend` (any generation backend) from the search's facts, or None when
    its reply does not end in the move the search chose (`parse`: the family's reply parser)."""
    from distillgym.agents.generation import SamplingParams

    best = result.best_action
    if best is None:
        return None
    messages = [
        {"role": "system", "content": "You explain the move a look-ahead search chose in a game or task, briefly and "
                                      "causally, as the player's own reasoning."},
        {"role": "user", "content": f"Task: {task}\n\nCurrent state:\n{observation}\n\nWhat the search found for each "
                                    f"move:\n{search_facts(result)}\n\nIn 2-4 sentences, reason about what the best "
                                    f"move {best} and the alternatives lead to. Start with 'thought:' and end with "
                                    f"<action>{best}</action>."},
    ]
    prompt = backend.tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=True)
    if isinstance(prompt, dict) or hasattr(prompt, "input_ids"):
        prompt = prompt["input_ids"]
    params = SamplingParams(temperature=0.0, max_tokens=max_tokens, stop=("</action>",), seed=seed)
    text = backend.generate([list(prompt)], params)[0].text.strip()
    if not _ACTION_TAG.search(text) and "<action>" in text:
        text += "</action>"
    chosen = parse(text)
    if chosen is None or chosen.strip().lower() != best.strip().lower() or not _ACTION_TAG.search(text):
        return None
    return text if text.lower().startswith("thought:") else f"thought: {text}"


def _candidates(env: Any) -> list[str]:
    """A state's moves to search: the legal ones, else (a family of free-form actions such as Apps) the expert's."""
    try:
        return legal_actions(env)
    except ValueError:
        action = env.expert_action()
        return [action] if action is not None else []


def glad_episode(env: Any, task: int, *, split: str = "train", cfg: GladConfig | None = None, backend: Any = None,
                 seed: int = 0) -> Episode:
    """One episode on task `task` of `split`, every move chosen by a search and written as its chain."""
    cfg = cfg or GladConfig()
    base = env.unwrapped
    protocol = protocol_of(env)
    obs, info = env.reset(options={"split": split, "task_index": int(task)})
    episode = Episode(env_id=env.spec.id if env.spec else type(base).__name__, task_index=int(info["task_index"]),
                      task_seed=int(info["task_seed"]), split=str(info["split"]), task=str(info["task"]),
                      initial_observation=obs, privileged=dict(info.get("privileged") or {}), agent="glad",
                      meta={"glad": {k: getattr(cfg, k) for k in cfg.__dataclass_fields__}, "seed": seed,
                            "chains_by_model": 0})
    limit = cfg.max_steps or base.max_steps
    for step in range(limit):
        step_seed = int(np.random.SeedSequence([seed, int(task), step, 29]).generate_state(1)[0])
        result = mcts(env, simulations=cfg.simulations, max_depth=cfg.max_depth, c_uct=cfg.c_uct, gamma=cfg.gamma,
                      rollouts=cfg.rollouts, horizon=cfg.horizon, rollout_policy=cfg.rollout_policy,
                      rollout_noise=cfg.rollout_noise, actions=_candidates, seed=step_seed)
        best = result.best_action
        if best is None:
            break
        text = None
        if backend is not None:
            text = llm_chain(backend, result, episode.task, obs, parse=protocol.parse, seed=step_seed)
            episode.meta["chains_by_model"] += text is not None
        if text is None:
            text = chain_text(result, alternatives=cfg.alternatives, lookahead=cfg.lookahead)
        privileged = dict(info.get("privileged") or {})
        new_obs, reward, terminated, truncated, info = env.step(best)
        turn_info: dict[str, Any] = {"reply": text, "search": {
            "q": result.q_values(), "visits": {str(c.action): c.visits for c in result.ranked()}}}
        if privileged:
            turn_info["privileged"] = privileged
        episode.turns.append(Turn(observation=obs, action=best, reward=float(reward), terminated=bool(terminated),
                                  truncated=bool(truncated), invalid_action=bool(info.get("invalid_action")),
                                  info=turn_info))
        obs = new_obs
        if terminated or truncated:
            break
    episode.success = bool(info.get("success"))
    return episode


def glad_episodes(env: Any, tasks: Sequence[int] | int, *, split: str = "train",
                  env_kwargs: dict[str, Any] | None = None, cfg: GladConfig | None = None, backend: Any = None,
                  seed: int = 0, progress: bool = True) -> list[Episode]:
    """GLAD episodes of `tasks` (a count: task indices 0..n-1) of `split` on `env` (an id, entry point or env),
    with a progress bar (rate and ETA)."""
    from tqdm.auto import tqdm

    from distillgym.envs.core.make import make_env

    task_list = list(range(tasks)) if isinstance(tasks, int) else [int(t) for t in tasks]
    made = make_env(env, **dict(env_kwargs or {})) if isinstance(env, str) else env
    out = []
    wins = 0
    try:
        bar = tqdm(task_list, desc="GLAD search", unit="task", disable=not progress)
        for task in bar:
            ep = glad_episode(made, task, split=split, cfg=cfg, backend=backend, seed=seed)
            out.append(ep)
            wins += ep.success
            bar.set_postfix(success=f"{wins}/{len(out)}", steps=ep.num_steps, refresh=False)
    finally:
        if made is not env:
            made.close()
    return out
