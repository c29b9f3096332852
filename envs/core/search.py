"""Monte-Carlo tree search (UCT) in the real environment, through `snapshot()` / `restore()` (ProAct's GLAD search).

    from distillgym.envs.core.search import mcts
    result = mcts(env, simulations=200, seed=0)      # env: any distillgym env, reset and mid-episode
    result.best_action, result.principal_variation(), result.ranked()

Every simulation restores the root, walks down the tree by UCT (Q normalized to [0, 1] by the values seen so far,
so the exploration constant does not depend on the family's reward scale), expands one new action, estimates the
value of the state it reaches and backs the discounted return up the path. The tree is open-loop: a node is the
sequence of actions from the root, and in a stochastic family (2048's spawns) each simulation draws fresh chance
(`TextEnv.resample_chance`), so a node's value averages over what can happen. The env is put back where it was.

Leaf values come from rollouts: uniformly random ones run batched on the family's `BatchSimulator` when it has one
(Sokoban, 2048: `rollouts` games in a few array operations per step), otherwise step by step through snapshots with
any rollout policy (random, the expert with noise: the only informative choice in Household and Apps, where a
random walk rarely reaches the goal).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from distillgym.envs.core.mc import EnvPolicy, env_returns, rollout_returns
from distillgym.envs.core.protocol import protocol_of

#: A leaf value estimate: (unwrapped env at the leaf, rng) -> value.
ValueFn = Callable[[Any, np.random.Generator], float]


def legal_actions(env: Any) -> list[str]:
    """The actions worth searching from the env's current state: its admissible actions, else its protocol's fixed
    action set. Raises for a family that lists neither (Apps: pass `actions=` to `mcts`)."""
    admissible = env.admissible_actions()
    if admissible is not None:
        return list(admissible)
    fixed = protocol_of(env).actions
    if fixed:
        return list(fixed)
    raise ValueError(f"{type(env).__name__} lists no admissible actions: give mcts(actions=...) a function that "
                     "proposes candidates for a state (e.g. the expert's action and model samples)")


def random_policy(env: Any, rng: np.random.Generator) -> str:
    """Uniform over the legal actions."""
    actions = legal_actions(env)
    return actions[int(rng.integers(len(actions)))]


def expert_policy(noise: float = 0.0) -> EnvPolicy:
    """The family's expert, replaced by a uniformly random legal action with probability `noise` (and where the
    expert has no move). A family of free-form actions (Apps' code cells) has no random move: the expert's stands."""
    if not 0.0 <= noise <= 1.0:
        raise ValueError(f"expert noise must be in [0, 1], got {noise}")

    def policy(env: Any, rng: np.random.Generator) -> str:
        if noise and rng.random() < noise:
            try:
                return random_policy(env, rng)
            except ValueError:
                pass
        action = env.expert_action()
        return action if action is not None else random_policy(env, rng)

    return policy


def rollout_policy(spec: str | EnvPolicy, noise: float = 0.0) -> EnvPolicy:
    """'random', 'expert' (with `noise`) or a callable (env, rng) -> action."""
    if callable(spec):
        return spec
    if spec == "random":
        return random_policy
    if spec == "expert":
        return expert_policy(noise)
    raise ValueError(f"rollout policy must be 'random', 'expert' or a callable, got {spec!r}")


@dataclass
class Node:
    """A node of the open-loop tree: the state reached by `action` from its parent."""

    action: str | None  # the action from the parent (None at the root)
    depth: int = 0
    visits: int = 0
    value_sum: float = 0.0  # sum of the discounted returns from the parent through this action
    reward_sum: float = 0.0  # sum of the immediate rewards of this action
    terminal: bool = False  # the episode ended on this action (first time it was taken)
    success: bool = False  # and the task was done
    feedback: str = ""  # the env's feedback the first time this action was taken (its consequence, in words)
    children: dict[str, Node] = field(default_factory=dict)
    untried: list[str] | None = None  # actions not yet expanded (None: not listed yet)

    @property
    def q(self) -> float:
        """Mean discounted return of taking `action` from the parent (0 before any visit)."""
        return self.value_sum / self.visits if self.visits else 0.0

    @property
    def reward(self) -> float:
        """Mean immediate reward of `action`."""
        return self.reward_sum / self.visits if self.visits else 0.0

    def to_dict(self, max_depth: int = 2) -> dict[str, Any]:
        out: dict[str, Any] = {"action": self.action, "visits": self.visits, "q": self.q, "reward": self.reward,
                               "terminal": self.terminal, "success": self.success, "feedback": self.feedback}
        if max_depth > 0 and self.children:
            out["children"] = [c.to_dict(max_depth - 1) for c in ranked(self)]
        return out


def ranked(node: Node) -> list[Node]:
    """A node's children, most visited first (ties: higher Q, then action name)."""
    return sorted(node.children.values(), key=lambda c: (-c.visits, -c.q, str(c.action)))


@dataclass
class SearchResult:
    """The tree of one search from the env's state at the call."""

    root: Node
    gamma: float
    simulations: int
    env_steps: int  # env.step calls the search made in the tree (rollouts not included)
    rollout_steps: int  # simulated steps of the leaf rollouts (batched or through the env)

    @property
    def best_action(self) -> str | None:
        """The most visited root action (None when the root has no action)."""
        top = ranked(self.root)
        return top[0].action if top else None

    def ranked(self) -> list[Node]:
        """The root's children, most visited first."""
        return ranked(self.root)

    def principal_variation(self, max_len: int = 64) -> list[str]:
        """The most visited path from the root."""
        out: list[str] = []
        node = self.root
        while node.children and len(out) < max_len:
            node = ranked(node)[0]
            if node.action is None:
                break
            out.append(node.action)
        return out

    def q_values(self) -> dict[str, float]:
        """{root action: Q} of every visited root action."""
        return {str(c.action): c.q for c in self.ranked() if c.visits}

    def to_dict(self, max_depth: int = 2) -> dict[str, Any]:
        return {"best_action": self.best_action, "principal_variation": self.principal_variation(),
                "simulations": self.simulations, "env_steps": self.env_steps, "rollout_steps": self.rollout_steps,
                "gamma": self.gamma, "root": self.root.to_dict(max_depth)}


class _Evaluator:
    """Leaf values: batched random rollouts on the family's simulator, or rollouts through env snapshots."""

    def __init__(self, env: Any, value: Literal["rollout", "zero"] | ValueFn, policy: str | EnvPolicy, noise: float,
                 rollouts: int, horizon: int, gamma: float, batched: bool | None) -> None:
        self.env, self.value, self.gamma = env, value, gamma
        self.rollouts, self.horizon = rollouts, horizon
        has_sim = callable(getattr(env, "batch_simulator", None))
        if batched and not (has_sim and policy == "random"):
            raise ValueError("batched rollouts need the family's batch_simulator() and rollout_policy='random'")
        self.batched = has_sim and policy == "random" if batched is None else batched
        self.policy = rollout_policy(policy, noise)
        self.steps = 0

    def __call__(self, rng: np.random.Generator) -> float:
        if callable(self.value):
            return float(self.value(self.env, rng))
        if self.value == "zero":
            return 0.0
        if self.batched:
            sim = self.env.batch_simulator()
            first = rng.integers(len(sim.action_names), size=self.rollouts)
            returns = rollout_returns(sim, sim.replicate(self.rollouts), first, horizon=self.horizon,
                                      gamma=self.gamma, rng=rng)
            self.steps += self.rollouts * self.horizon  # an upper bound: finished rollouts stop early
            return float(returns.mean())
        return self._through_env(rng)

    def _through_env(self, rng: np.random.Generator) -> float:
        self.steps += self.rollouts * self.horizon  # an upper bound: finished rollouts stop early
        return env_returns(self.env, self.policy, num_rollouts=self.rollouts, horizon=self.horizon, gamma=self.gamma,
                           rng=rng)


def mcts(
    env: Any,
    *,
    simulations: int = 100,
    max_depth: int = 20,
    c_uct: float = 1.0,
    gamma: float = 0.95,
    value: Literal["rollout", "zero"] | ValueFn = "rollout",
    rollout_policy: str | EnvPolicy = "random",
    rollout_noise: float = 0.1,
    rollouts: int = 16,
    horizon: int = 50,
    batched: bool | None = None,
    actions: Callable[[Any], list[str]] | None = None,
    chance: Literal["resample", "fixed"] = "resample",
    seed: int | None = None,
) -> SearchResult:
    """UCT search from the current state of `env` (a distillgym env, through wrappers); the env ends where it began.

    Args:
        simulations: descents from the root (each expands at most one new action).
        max_depth: the deepest a descent goes before the leaf is valued.
        c_uct: exploration constant on Q normalized to [0, 1] (sqrt(2) is classic UCT; smaller searches deeper).
        gamma: discount of the returns backed up and of the rollouts.
        value: "rollout" (mean discounted return of `rollouts` rollouts of `horizon` steps from the leaf), "zero",
            or a function (env, rng) -> value.
        rollout_policy: "random", "expert" (replaced by a random move with probability `rollout_noise`) or a
            function (env, rng) -> action.
        batched: run random rollouts on the family's batch simulator (default: whenever it has one).
        actions: the candidate actions of a state (env -> list); default the admissible ones (`legal_actions`).
        chance: "resample" draws fresh chance per simulation in a stochastic family; "fixed" keeps the env's
            (a determinized search of the one future the env's RNG holds).
        seed: seeds expansion order, rollouts and chance.
    """
    if simulations < 1 or max_depth < 1 or rollouts < 1 or horizon < 1:
        raise ValueError("simulations, max_depth, rollouts and horizon must be >= 1, got "
                         f"{simulations}, {max_depth}, {rollouts}, {horizon}")
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"gamma must be in [0, 1], got {gamma}")
    if c_uct < 0:
        raise ValueError(f"c_uct must be >= 0, got {c_uct}")
    if chance not in ("resample", "fixed"):
        raise ValueError(f"chance must be 'resample' or 'fixed', got {chance!r}")
    base = env.unwrapped
    propose = actions or legal_actions
    rng = np.random.default_rng(seed)
    evaluate = _Evaluator(base, value, rollout_policy, rollout_noise, rollouts, horizon, gamma, batched)
    root_snap = base.snapshot()
    privileged = base.compute_privileged
    base.compute_privileged = False  # the search needs no expert plans at every step (Sokoban re-plans otherwise)
    root = Node(None, terminal=bool(root_snap.done))
    lo, hi = math.inf, -math.inf  # the range of Q seen, for UCT's normalization
    env_steps = 0
    resample = chance == "resample" and callable(getattr(base, "resample_chance", None))
    try:
        for _ in range(simulations):
            base.restore(root_snap)
            if resample:
                base.resample_chance(int(rng.integers(2**63)))
            node, path, rewards = root, [root], []
            leaf = 0.0
            while True:
                if node.terminal:
                    break
                if node.untried is None:
                    node.untried = [a for a in propose(base) if a not in node.children]
                    rng.shuffle(node.untried)
                if node.depth >= max_depth or (not node.untried and not node.children):
                    leaf = evaluate(rng)
                    break
                expanding = bool(node.untried)
                if expanding:
                    assert node.untried is not None
                    action = node.untried.pop()
                else:
                    action = _select(node, c_uct, lo, hi)
                _, r, terminated, truncated, info = base.step(action)
                env_steps += 1
                if expanding:
                    node.children[action] = Node(action, node.depth + 1, terminal=bool(terminated or truncated),
                                                 success=bool(info.get("success")),
                                                 feedback=str(info.get("feedback", "")))
                node = node.children[action]
                path.append(node)
                rewards.append(float(r))
                if expanding:
                    leaf = 0.0 if node.terminal else evaluate(rng)
                    break
            ret = leaf
            root.visits += 1
            for k in range(len(path) - 1, 0, -1):
                ret = rewards[k - 1] + gamma * ret
                path[k].visits += 1
                path[k].value_sum += ret
                path[k].reward_sum += rewards[k - 1]
                lo, hi = min(lo, path[k].q), max(hi, path[k].q)
    finally:
        base.restore(root_snap)
        base.compute_privileged = privileged
    return SearchResult(root, gamma, simulations, env_steps, evaluate.steps)


def _select(node: Node, c: float, lo: float, hi: float) -> str:
    """The child maximizing normalized Q + c sqrt(ln N / n)."""
    span = hi - lo if hi > lo else 1.0
    log_n = math.log(max(1, node.visits))
    best, best_score = "", -math.inf
    for action, child in node.children.items():
        if child.visits == 0:
            return action
        score = (child.q - lo) / span + c * math.sqrt(log_n / child.visits)
        if score > best_score:
            best, best_score = action, score
    return best
