"""A lean decode step for Llama- and Qwen2-style causal LMs: the same arithmetic as transformers' forward for one
new token per row, without its per-call machinery.

After the prompt's prefill (transformers' own forward), each generated token needs one forward pass of one token
per row. transformers builds an attention mask, grows a DynamicCache by concatenation and dispatches through
module wrappers at every one of those passes; for a small model on a CPU that overhead is most of the pass. Here the
keys and values go into buffers allocated once for the whole reply (the prefill's cache copied in, one column
written per token), the mask is an additive row kept alongside, and each layer is a few functional calls on the
model's own weights: RMSNorm in fp32 as transformers computes it, the model's rotary embedding module, SDPA with
grouped-query attention, the SiLU-gated MLP. The logits agree with transformers' to float rounding (tested).

Used by `TransformersBackend` for models it `supports` (Qwen2 and Llama configurations with plain `nn.Linear`
projections: not a peft-wrapped model, whose adapters this would skip); anything else decodes through transformers.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

MODEL_TYPES = ("qwen2", "llama")


def _base(model: Any) -> Any:
    return getattr(model, "model", None)


def supports(model: Any) -> bool:
    """Whether `model` is a Llama/Qwen2-style causal LM this decoder computes exactly."""
    cfg = getattr(model, "config", None)
    base = _base(model)
    if cfg is None or base is None or getattr(cfg, "model_type", None) not in MODEL_TYPES:
        return False
    if getattr(cfg, "use_sliding_window", False) or getattr(cfg, "hidden_act", "silu") != "silu":
        return False
    if getattr(cfg, "mlp_bias", False):
        return False
    if not all(hasattr(base, a) for a in ("embed_tokens", "layers", "norm", "rotary_emb")):
        return False
    if type(getattr(model, "lm_head", None)) is not torch.nn.Linear:
        return False
    for layer in base.layers:
        at, mlp = getattr(layer, "self_attn", None), getattr(layer, "mlp", None)
        projections = [getattr(at, n, None) for n in ("q_proj", "k_proj", "v_proj", "o_proj")] + \
            [getattr(mlp, n, None) for n in ("gate_proj", "up_proj", "down_proj")]
        if any(type(p) is not torch.nn.Linear for p in projections):  # peft's LoRA layers and others: no
            return False
    return True


def _rms(x: torch.Tensor, norm: Any) -> torch.Tensor:
    """transformers' RMSNorm: computed in fp32, scaled in the input's dtype."""
    if x.dtype == torch.float32 and norm.weight.dtype == torch.float32:  # one fused kernel, the same numbers
        return F.rms_norm(x, (x.shape[-1],), norm.weight, norm.variance_epsilon)
    h = x.float()
    h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + norm.variance_epsilon)
    return norm.weight * h.to(x.dtype)


def _rotate(z: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    half = z.shape[-1] // 2
    return z * cos + torch.cat([-z[..., half:], z[..., :half]], dim=-1) * sin


class Decoder:
    """One reply's decoding state: key/value buffers for `max_new` more tokens after the prefill's cache `past`
    (rows aligned with `mask`, 1 on real slots), and the additive attention mask."""

    def __init__(self, model: Any, past: Any, mask: torch.Tensor, max_new: int) -> None:
        cfg = model.config
        self.model = model
        self.base = _base(model)
        self.heads = int(cfg.num_attention_heads)
        self.kv_heads = int(getattr(cfg, "num_key_value_heads", None) or self.heads)
        self.head_dim = int(getattr(cfg, "head_dim", None) or cfg.hidden_size // self.heads)
        rows, width = mask.shape
        total = width + max(1, max_new)
        self.keys: list[torch.Tensor] = []
        self.values: list[torch.Tensor] = []
        for layer in past.layers:
            k, v = layer.keys, layer.values
            kb = k.new_zeros((rows, self.kv_heads, total, self.head_dim))
            vb = v.new_zeros((rows, self.kv_heads, total, self.head_dim))
            kb[:, :, :width] = k
            vb[:, :, :width] = v
            self.keys.append(kb)
            self.values.append(vb)
        dtype = self.keys[0].dtype if self.keys else torch.float32
        self.bias = torch.full((rows, 1, 1, total), float("-inf"), dtype=dtype, device=mask.device)
        self.bias[:, 0, 0, :width].masked_fill_(mask.bool(), 0.0)
        self.col = width  # the next column a token's keys and values go to
        # each layer's weights looked up once (module attribute lookups are a real share of a small model's step)
        self.layers = [(layer.input_layernorm, layer.self_attn.q_proj, layer.self_attn.k_proj, layer.self_attn.v_proj,
                        layer.self_attn.o_proj, getattr(layer.self_attn, "scaling", None),
                        layer.post_attention_layernorm, layer.mlp.gate_proj.weight, layer.mlp.up_proj.weight,
                        layer.mlp.down_proj.weight) for layer in self.base.layers]

    @torch.no_grad()
    def step(self, tokens: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """Feed one token per row (at `positions`); the next-token logits [rows, vocab] in fp32."""
        if self.col >= self.bias.shape[-1]:
            raise RuntimeError("the decoder's buffers are full: more tokens than max_new")
        col, end = self.col, self.col + 1
        self.bias[:, 0, 0, col] = 0.0
        rows = tokens.shape[0]
        x = self.base.embed_tokens(tokens)  # [rows, hidden]
        cos, sin = self.base.rotary_emb(x, positions.unsqueeze(-1))  # [rows, 1, head_dim]
        cos, sin = cos.to(x.dtype), sin.to(x.dtype)
        mask = self.bias[..., :end]
        gqa = self.kv_heads != self.heads
        for i, (ln1, qp, kp, vp, op, scale, ln2, gate, up, down) in enumerate(self.layers):
            h = _rms(x, ln1)
            q = F.linear(h, qp.weight, qp.bias).view(rows, self.heads, self.head_dim)
            k = F.linear(h, kp.weight, kp.bias).view(rows, self.kv_heads, self.head_dim)
            v = F.linear(h, vp.weight, vp.bias).view(rows, self.kv_heads, self.head_dim)
            self.keys[i][:, :, col] = _rotate(k, cos, sin)
            self.values[i][:, :, col] = v
            a = F.scaled_dot_product_attention(
                _rotate(q, cos, sin).unsqueeze(2), self.keys[i][:, :, :end], self.values[i][:, :, :end],
                attn_mask=mask, scale=scale, enable_gqa=gqa)
            x = x + F.linear(a.reshape(rows, self.heads * self.head_dim), op.weight, op.bias)
            h = _rms(x, ln2)
            x = x + F.linear(F.silu(F.linear(h, gate)) * F.linear(h, up), down)
        self.col = end
        head = self.model.lm_head
        return F.linear(_rms(x, self.base.norm), head.weight, head.bias).float()

    def select(self, rows: torch.Tensor) -> None:
        """Keep only these batch rows (finished rows leave)."""
        self.keys = [k[rows] for k in self.keys]
        self.values = [v[rows] for v in self.values]
        self.bias = self.bias[rows]

    def row_kv(self, j: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Row j's keys and values on its real slots (the tokens fed so far), per layer: [kv_heads, n, head_dim]."""
        real = self.bias[j, 0, 0, : self.col] == 0
        return [(k[j][:, : self.col][:, real], v[j][:, : self.col][:, real])
                for k, v in zip(self.keys, self.values, strict=True)]
