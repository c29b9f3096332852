"""Loss functions: pure functions over tensors, shared by every trainer (the objectives: docs/algorithms.md).

Shapes: per-token tensors are [B, T] (B sequences, T completion positions), `mask` is 1 on tokens that learn
(model tokens) and 0 elsewhere (environment tokens, padding); logits are [B, T, V]. Masked positions never
contribute a value or a gradient, whatever finite garbage they hold (`torch.where`, not multiplication).
"""

from __future__ import annotations

import math
from typing import Literal

import torch

Aggregation = Literal["grpo", "bnpo", "dr_grpo", "dapo", "token_mean", "seq_mean"]


def masked(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """x where mask is 1, exactly 0 elsewhere (with no gradient path through the masked entries)."""
    return torch.where(mask.bool(), x, torch.zeros_like(x))


def aggregate(
    per_token: torch.Tensor,
    mask: torch.Tensor,
    mode: Aggregation = "dapo",
    *,
    max_len: int | None = None,
    num_tokens: float | None = None,
) -> torch.Tensor:
    """Reduce per-token losses to a scalar, TRL's variants:

    grpo / seq_mean: mean over each sequence's tokens, then over sequences; bnpo / token_mean: sum over the batch
    / its active tokens; dr_grpo: sum / (B * max_len) (max_len defaults to T); dapo: sum / active tokens of the
    whole optimizer step (`num_tokens`, for gradient accumulation; defaults to this batch's).
    """
    per_token = masked(per_token, mask)
    m = mask.to(per_token.dtype)
    if mode in ("grpo", "seq_mean"):
        return (per_token.sum(-1) / m.sum(-1).clamp(min=1)).mean()
    if mode in ("bnpo", "token_mean"):
        return per_token.sum() / m.sum().clamp(min=1)
    if mode == "dr_grpo":
        return per_token.sum() / (per_token.shape[0] * (max_len or per_token.shape[-1]))
    if mode == "dapo":
        denom = num_tokens if num_tokens is not None else m.sum().clamp(min=1)
        return per_token.sum() / denom
    raise ValueError(f"unknown loss aggregation {mode!r}; use one of grpo, bnpo, dr_grpo, dapo")


def clipped_pg(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    advantages: torch.Tensor,
    *,
    clip_low: float = 0.2,
    clip_high: float = 0.2,
    ratio_cap: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """PPO's clipped surrogate per token: -min(rho A, clip(rho, 1-clip_low, 1+clip_high) A), rho = pi/pi_old.

    advantages: [B] (one per sequence) or [B, T]. With `ratio_cap` > 0, tokens whose rho exceeds it drop out of the
    loss (value and gradient 0: AReaL's behaviour-importance cap, which ProAct sets to 5). Returns (per-token loss,
    per-token clipped indicator).
    """
    if advantages.dim() == logp.dim() - 1:
        advantages = advantages.unsqueeze(-1)
    ratio = torch.exp(logp - old_logp)
    unclipped = ratio * advantages
    clipped = torch.clamp(ratio, 1 - clip_low, 1 + clip_high) * advantages
    loss = -torch.minimum(unclipped, clipped)
    if ratio_cap > 0:
        loss = torch.where(ratio.detach() > ratio_cap, torch.zeros_like(loss), loss)
    return loss, (clipped < unclipped).to(logp.dtype)


def kl_k1(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """k1 estimator of KL(pi || ref) on tokens sampled from pi: log pi - log ref."""
    return logp - ref_logp


def kl_k3(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """k3 estimator of KL(pi || ref) on tokens sampled from pi: exp(-l) - 1 + l, l = log pi - log ref (>= 0).

    Its gradient alone is the *forward* KL's; weight it by `importance_ratio` for the reverse KL's gradient.
    """
    log_ratio = ref_logp - logp
    return torch.exp(log_ratio) - 1 - log_ratio


def importance_ratio(logp: torch.Tensor, old_logp: torch.Tensor) -> torch.Tensor:
    """rho = pi_theta / sg(pi_old), keeping its gradient (1 in value when on-policy)."""
    return torch.exp(logp - old_logp.detach())


def iw_reverse_kl(logp: torch.Tensor, old_logp: torch.Tensor, teacher_logp: torch.Tensor) -> torch.Tensor:
    """Skill-SD's self-distillation loss per token: rho * k3(student || teacher), an unbiased estimate of
    reverse KL(S || T) whose gradient is the reverse KL's gradient (tokens sampled from pi_old)."""
    return importance_ratio(logp, old_logp) * kl_k3(logp, teacher_logp.detach())


def sampled_token_distill(logp: torch.Tensor, teacher_logp: torch.Tensor) -> torch.Tensor:
    """On-policy distillation on the sampled token: sg(log pi_S - log pi_T) * log pi_S (a REINFORCE step on the
    per-token reward -(log pi_S - log pi_T), i.e. reverse KL's gradient)."""
    return (logp - teacher_logp).detach() * logp


def kl_full(p_logits: torch.Tensor, q_logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Exact KL(p || q) over the vocabulary at each position: [B, T, V] logits -> [B, T]."""
    logp = torch.log_softmax(p_logits / temperature, -1)
    logq = torch.log_softmax(q_logits / temperature, -1)
    return (logp.exp() * (logp - logq)).sum(-1)


def generalized_jsd(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    beta: float = 0.5,
    temperature: float = 1.0,
) -> torch.Tensor:
    """GKD's generalized Jensen-Shannon divergence per position, over the full vocabulary: [B, T].

    m = beta p_T + (1 - beta) p_S; JSD = beta KL(p_T || m) + (1 - beta) KL(p_S || m). As in TRL, beta = 0 is the
    forward KL(p_T || p_S) and beta = 1 the reverse KL(p_S || p_T).
    """
    if not 0.0 <= beta <= 1.0:
        raise ValueError(f"jsd_beta must be in [0, 1], got {beta}")
    s = torch.log_softmax(student_logits / temperature, -1)
    t = torch.log_softmax(teacher_logits / temperature, -1)
    if beta == 0.0:
        return (t.exp() * (t - s)).sum(-1)
    if beta == 1.0:
        return (s.exp() * (s - t)).sum(-1)
    log_m = torch.logaddexp(t + math.log(beta), s + math.log(1 - beta))  # no stacked [2, B, T, V] copy
    kl_t = (t.exp() * (t - log_m)).sum(-1)
    kl_s = (s.exp() * (s - log_m)).sum(-1)
    return beta * kl_t + (1 - beta) * kl_s
