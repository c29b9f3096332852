"""MC-PPO (ProAct): PPO whose turn-level advantages come from a learned value blended with a Monte-Carlo one.

Each iteration: the policy plays `group_size` episodes of each training task. At every visited state s_t a value
head reads the model's last hidden state at the end of the prompt (V_phi), the Monte-Carlo critic rolls out from the
state (V_MC), and the two blend: V~ = (1 - w) V_phi + w V_MC (ProAct: w = 0.9 on 2048; 1 on Sokoban). The turn's
advantage is TD(0), delta_t = r_t + gamma (1 - done_t) V~(s_{t+1}) - V~(s_t) (GAE with `lam` > 0), normalized over
the batch and copied to the turn's tokens; the policy takes the PPO-clipped step, and the head regresses on the
returns A_t + V~(s_t) with its own optimizer. The head reads features the policy step does not change (they are
computed before it, detached), so critic and policy never share a gradient.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from distillgym.agents.generation import pad_left
from distillgym.envs.core.make import make_env
from distillgym.trainers import core, grpo, mc_critic
from distillgym.trainers.config import Clip, Reduce, opt
from distillgym.types import Episode


@dataclass
class Config(mc_critic.ProActPG, mc_critic.MCCritic, Clip, Reduce):
    mc_weight: float = opt(0.9, "w in V~ = (1 - w) V_head + w V_MC (ProAct: 0.9 on 2048, 1 on Sokoban)")
    td_gamma: float = opt(0.95, "discount of the TD advantage (ProAct: 0.9 on 2048, 0.95 on Sokoban)")
    lam: float = opt(0.0, "GAE lambda over turns (0: TD(0), ProAct's MC-PPO)")
    value_lr: float = opt(1e-3, "learning rate of the value head (Adam)")
    value_steps: int = opt(20, "value-head optimizer steps per iteration (on the iteration's turns)")
    mc_horizon: int = opt(20, "steps per V_MC rollout (ProAct's MC-PPO: 20 on Sokoban, 1000 on 2048)")
    mc_rollouts: int = opt(256, "rollouts per V_MC")


@dataclass
class State(core.AlgoState):
    """The value head and its optimizer (checkpointed), and the KL reference (rebuilt at setup)."""

    head: torch.nn.Linear
    optimizer: torch.optim.Optimizer
    reference: Any = None

    def state_dict(self) -> dict[str, Any]:
        return {"head": self.head.state_dict(), "head_optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if "head" in state:
            self.head.load_state_dict(state["head"])
            self.optimizer.load_state_dict(state["head_optimizer"])


def needs(cfg: Config) -> set[str]:
    return mc_critic.needs(cfg)


def setup(run: core.Run, cfg: Config) -> State:
    mc_critic.check(cfg, "mc_ppo.")
    for name, lo, hi in (("mc_weight", 0.0, 1.0), ("td_gamma", 0.0, 1.0), ("lam", 0.0, 1.0)):
        if not lo <= getattr(cfg, name) <= hi:
            raise ValueError(f"config field mc_ppo.{name} must be in [{lo}, {hi}], got {getattr(cfg, name)}")
    hidden = int(run.model.config.hidden_size)
    torch.manual_seed(run.cfg.seed)
    head = torch.nn.Linear(hidden, 1).to(run.device)
    torch.nn.init.zeros_(head.weight)
    torch.nn.init.zeros_(head.bias)
    return State(head, torch.optim.Adam(head.parameters(), lr=cfg.value_lr),
                 core.frozen_copy(run.model) if cfg.kl_coef else None)


def td_advantages(rewards: Sequence[float], values: Sequence[float], last_value: float, terminated: bool,
                  gamma: float, lam: float = 0.0) -> tuple[list[float], list[float]]:
    """Turn-level GAE over one episode (lam = 0: TD(0)): (advantages A_t, returns A_t + V_t).

    values[t] = V(s_t) for the T turns; `last_value` = V(s_T) after the last turn, used only when the episode was
    cut (truncated), not `terminated`."""
    n = len(rewards)
    if len(values) != n:
        raise ValueError(f"{n} rewards but {len(values)} values")
    adv = [0.0] * n
    nxt_adv = 0.0
    for t in range(n - 1, -1, -1):
        last = t == n - 1
        done = terminated and last
        nxt_v = 0.0 if done else (last_value if last else values[t + 1])
        delta = rewards[t] + gamma * nxt_v - values[t]
        nxt_adv = delta + (0.0 if done else gamma * lam * nxt_adv)
        adv[t] = nxt_adv
    return adv, [a + v for a, v in zip(adv, values, strict=True)]


@torch.no_grad()
def prompt_features(run: core.Run, prompts: Sequence[Sequence[int]]) -> torch.Tensor:
    """The model's last hidden state at each prompt's last token [N, hidden] (detached)."""
    out = []
    run.model.eval()
    for lo in range(0, len(prompts), run.cfg.micro_batch_size):
        ids, mask = pad_left(prompts[lo : lo + run.cfg.micro_batch_size], run.pad_id, run.device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        res = run.model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=False,
                        output_hidden_states=True, logits_to_keep=1)
        out.append(res.hidden_states[-1][:, -1].float())
    return torch.cat(out) if out else torch.zeros((0, int(run.model.config.hidden_size)), device=run.device)


def mc_values(env: Any, episode: Episode, cfg: Config, seed: int) -> tuple[list[float], float, int]:
    """V_MC at each of the episode's states before a turn, and after its last turn (0 when it terminated); and the
    simulated steps spent. One replay of the episode."""
    out, spent = [], 0
    terminated = bool(episode.turns and episode.turns[-1].terminated)
    for t in mc_critic.walk(env, episode):
        if t == episode.num_steps and terminated:
            out.append(0.0)
            break
        critic = mc_critic.StateCritic(env, cfg, int(np.random.SeedSequence([seed, t]).generate_state(1)[0]))
        out.append(critic.v())
        spent += critic.sim_steps
    return out[:-1], out[-1], spent


def iteration(run: core.Run, cfg: Config, state: State) -> dict[str, float]:
    episodes = core.rollout(run, core.model_agent(run), core.train_tasks(run.cfg, run.iteration),
                            run.cfg.group_size)
    metrics = core.episode_metrics(episodes)
    prompts = [t.prompt_ids for ep in episodes for t in ep.turns]
    if not prompts or any(p is None for p in prompts):
        return metrics
    feats = prompt_features(run, [p for p in prompts if p is not None])
    with torch.no_grad():
        v_head = state.head(feats).squeeze(-1).tolist()
    env = make_env(run.cfg.env, **run.cfg.env_kwargs)
    per_turn, returns, blended_all, v_mc_all = [], [], [], []
    spent, k = 0, 0
    try:
        for i, ep in enumerate(episodes):
            v_mc, last_mc, steps = mc_values(env, ep, cfg, run.cfg.seed * 100_003 + run.iteration * 1009 + i)
            spent += steps
            head = v_head[k : k + ep.num_steps]
            k += ep.num_steps
            blended = [(1 - cfg.mc_weight) * h + cfg.mc_weight * m for h, m in zip(head, v_mc, strict=True)]
            terminated = bool(ep.turns and ep.turns[-1].terminated)
            adv, ret = td_advantages([t.reward for t in ep.turns], blended, last_mc, terminated, cfg.td_gamma, cfg.lam)
            per_turn.append(adv)
            returns += ret
            blended_all += blended
            v_mc_all += v_mc
    finally:
        env.close()
    flat = np.asarray([a for adv in per_turn for a in adv], dtype=np.float64)
    mean, std = flat.mean(), flat.std()
    normalized = [[float((a - mean) / (std + 1e-6)) for a in adv] for adv in per_turn]
    samples, advantages = grpo.token_samples(episodes, normalized, drop_zero=False)
    metrics.update({"samples": len(samples), "mc/sim_steps": spent, "v_mc": float(np.mean(v_mc_all)),
                    "v_head": float(np.mean(v_head)), "v_blend": float(np.mean(blended_all))})
    metrics.update(grpo.policy_gradient_step(run, samples, advantages, cfg, reference=state.reference))
    metrics["value_loss"] = train_head(state, feats, torch.tensor(returns, dtype=torch.float32, device=run.device),
                                       cfg.value_steps)
    return metrics


def train_head(state: State, feats: torch.Tensor, targets: torch.Tensor, steps: int) -> float:
    """`steps` Adam steps of the value head on MSE(V_head(features), returns); returns the last loss."""
    loss = torch.zeros(())
    for _ in range(max(0, steps)):
        state.optimizer.zero_grad(set_to_none=True)
        loss = 0.5 * (state.head(feats).squeeze(-1) - targets).pow(2).mean()
        loss.backward()
        state.optimizer.step()
    return float(loss.detach())
