"""Generation backends behind one interface, and the scorer.

A backend turns a batch of prompt token ids into completions: the sampled token ids, one log-probability per
sampled token and the decoded text. Three implementations share this interface: `TransformersBackend` (here: any
device, batched with a KV cache, left padding), `VLLMBackend` (agents/vllm_backend.py) and `HTTPBackend`
(agents/http_backend.py, any OpenAI-compatible server).

Log-probability convention (the same in every backend and in the scorer): `Completion.logprobs[t]` is
log softmax(logits)[token_t] of the model's *own* distribution (temperature 1, before top-k/top-p), which is what
vLLM reports by default. The scorer gives the same numbers for the same ids (`temperature=1`), and any other
temperature on request.

Text convention: `Completion.text` is the decoding of `Completion.ids` with special tokens skipped. A stop string
ends generation at the token that completes it and stays in the text (so text and ids always agree).
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from distillgym.agents.prefix_cache import PrefixCache, common_prefix

if TYPE_CHECKING:
    from distillgym.agents.fast_decode import Decoder


@dataclass(frozen=True)
class SamplingParams:
    """How to sample. temperature 0 is greedy; top_k 0 and top_p 1 switch those filters off."""

    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    max_tokens: int = 64
    stop: tuple[str, ...] = ()
    seed: int | None = None
    # One seed per prompt: prompt i's randomness then comes from seeds[i] alone, whatever else is in the batch
    # (batch size, order, which rows finished). Overrides `seed`.
    seeds: tuple[int, ...] | None = None
    # One key per prompt: a fleet of servers sends prompts with the same key to the same server (an episode's
    # turns, so that server's prefix cache stays warm). Backends on one machine ignore it.
    sessions: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if not self.temperature >= 0:
            raise ValueError(f"SamplingParams.temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"SamplingParams.top_p must be in (0, 1], got {self.top_p}")
        if self.top_k < 0:
            raise ValueError(f"SamplingParams.top_k must be >= 0 (0 = off), got {self.top_k}")
        if self.max_tokens < 1:
            raise ValueError(f"SamplingParams.max_tokens must be >= 1, got {self.max_tokens}")
        if isinstance(self.stop, str):
            object.__setattr__(self, "stop", (self.stop,))
        if any(not s for s in self.stop):
            raise ValueError("SamplingParams.stop must not contain an empty string")
        if self.seeds is not None:
            object.__setattr__(self, "seeds", tuple(int(s) for s in self.seeds))
        if self.sessions is not None:
            object.__setattr__(self, "sessions", tuple(int(s) for s in self.sessions))

    def prompt_seed(self, i: int) -> int | None:
        """The seed of prompt i: its own (`seeds`), else `seed + i`, else None (unseeded)."""
        if self.seeds is not None:
            return self.seeds[i]
        return None if self.seed is None else self.seed + i

    def check_seeds(self, n: int) -> None:
        if self.seeds is not None and len(self.seeds) != n:
            raise ValueError(f"SamplingParams.seeds has {len(self.seeds)} seeds for {n} prompts")
        if self.sessions is not None and len(self.sessions) != n:
            raise ValueError(f"SamplingParams.sessions has {len(self.sessions)} keys for {n} prompts")


@dataclass
class Completion:
    """One sampled completion: exact token ids, their log-probabilities, the decoded text and why it ended."""

    ids: list[int]
    logprobs: list[float]
    text: str
    finish_reason: str  # "stop" (end-of-sequence token or stop string) or "length" (max_tokens reached)

    def __post_init__(self) -> None:
        if len(self.ids) != len(self.logprobs):
            raise ValueError(f"Completion has {len(self.ids)} ids but {len(self.logprobs)} logprobs")


@dataclass
class Scores:
    """Log-probabilities of given completion ids under given prompts (one per completion token).

    top_ids/top_logprobs: the k most likely tokens at each position (when asked); full: the whole log-distribution
    at each position as a [len(ids), vocab] tensor (when asked).
    """

    logprobs: list[float]
    top_ids: list[list[int]] | None = None
    top_logprobs: list[list[float]] | None = None
    full: Any = None
    extra: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Backend(Protocol):
    """What every generation backend offers."""

    tokenizer: Any

    def generate(self, prompts: Sequence[Sequence[int]], params: SamplingParams) -> list[Completion]:
        """One completion per prompt (prompts are token ids)."""
        ...


def check_prompts(prompts: Sequence[Sequence[int]], vocab_size: int | None = None) -> list[list[int]]:
    """Prompts as lists of ints, with a clear error for an empty prompt or an id outside the vocabulary."""
    out = []
    for i, p in enumerate(prompts):
        p = [int(t) for t in p]
        if not p:
            raise ValueError(f"prompt {i} is empty: a prompt needs at least one token")
        if vocab_size is not None and (min(p) < 0 or max(p) >= vocab_size):
            raise ValueError(f"prompt {i} has a token id outside the vocabulary [0, {vocab_size})")
        out.append(p)
    return out


def eos_ids(tokenizer: Any, model_config: Any = None) -> set[int]:
    """Token ids that end a completion: the tokenizer's eos and the model's generation eos ids."""
    ids: set[int] = set()
    if getattr(tokenizer, "eos_token_id", None) is not None:
        ids.add(int(tokenizer.eos_token_id))
    for cfg in (model_config,):
        eos = getattr(cfg, "eos_token_id", None) if cfg is not None else None
        if isinstance(eos, int):
            ids.add(eos)
        elif isinstance(eos, list | tuple):
            ids.update(int(e) for e in eos)
    return ids


def decode(tokenizer: Any, ids: Sequence[int]) -> str:
    return tokenizer.decode(list(ids), skip_special_tokens=True)


def truncate_at_stop(tokenizer: Any, ids: list[int], stop: Sequence[str]) -> int | None:
    """Length of the shortest prefix of `ids` whose text contains a stop string, or None."""
    if not stop:
        return None
    text = decode(tokenizer, ids)
    if not any(s in text for s in stop):
        return None
    for n in range(1, len(ids) + 1):
        t = decode(tokenizer, ids[:n])
        if any(s in t for s in stop):
            return n
    return None


# ----------------------------------------------------------------------------------------------- transformers


def _torch() -> Any:
    import torch

    return torch


def pad_left(seqs: Sequence[Sequence[int]], pad_id: int, device: Any = None) -> tuple[Any, Any]:
    """(ids [B, L], attention_mask [B, L]) with sequences aligned to the right."""
    torch = _torch()
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        if s:
            ids[i, width - len(s) :] = torch.tensor(list(s), dtype=torch.long)
            mask[i, width - len(s) :] = 1
    return ids.to(device), mask.to(device)


def filter_logits(logits: Any, top_k: int = 0, top_p: float = 1.0) -> Any:
    """Set logits outside the top-k / nucleus (top-p) sets to -inf (rows are independent)."""
    torch = _torch()
    if top_k and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        probs = torch.softmax(sorted_logits, dim=-1)
        # drop a token when the mass before it already reaches top_p (the most likely token always stays)
        drop_sorted = probs.cumsum(-1) - probs >= top_p
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def completion_logprobs(
    model: Any,
    prompts: Sequence[Sequence[int]],
    completions: Sequence[Sequence[int]],
    *,
    pad_id: int,
    temperature: float = 1.0,
    return_logits: bool = False,
) -> tuple[Any, Any, Any]:
    """Per-token log-probabilities of `completions` under `prompts` in one batched forward pass.

    Prompts are padded on the left and completions on the right, the layout generation uses, so that the numbers
    match the generator's. Returns (logprobs [B, T], mask [B, T], logits [B, T, V] or None), T the longest
    completion; differentiable when called with gradients enabled (the trainers' primitive).
    """
    torch = _torch()
    if len(prompts) != len(completions):
        raise ValueError(f"{len(prompts)} prompts but {len(completions)} completions")
    device = next(model.parameters()).device
    prompt_ids, prompt_mask = pad_left(prompts, pad_id, device)
    width = max(1, max(len(c) for c in completions))
    comp = torch.full((len(completions), width), pad_id, dtype=torch.long)
    comp_mask = torch.zeros((len(completions), width), dtype=torch.long)
    for i, c in enumerate(completions):
        if c:
            comp[i, : len(c)] = torch.tensor(list(c), dtype=torch.long)
            comp_mask[i, : len(c)] = 1
    comp, comp_mask = comp.to(device), comp_mask.to(device)
    ids = torch.cat([prompt_ids, comp], dim=1)
    mask = torch.cat([prompt_mask, comp_mask], dim=1)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    out = model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=False, logits_to_keep=width + 1)
    logits = out.logits[:, :width].float()  # logits at column P-1+t predict completion token t
    if temperature != 1.0:
        logits = logits / temperature
    logp = torch.log_softmax(logits, dim=-1).gather(-1, comp.unsqueeze(-1)).squeeze(-1)
    logp = logp * comp_mask
    return logp, comp_mask, (logits if return_logits else None)


def _cache_of(out: Any) -> Any:
    cache = getattr(out, "cache", None)
    return cache if cache is not None else out.past_key_values


class _CacheSteps:
    """Decoding through transformers' own forward and its KV cache (models `fast_decode` does not support): the
    same interface as `fast_decode.Decoder`."""

    def __init__(self, backend: TransformersBackend, past: Any, mask: Any) -> None:
        self.backend, self.past, self.mask = backend, past, mask

    def step(self, tokens: Any, positions: Any) -> Any:
        torch = _torch()
        self.mask = torch.cat([self.mask, torch.ones_like(self.mask[:, :1])], dim=1)
        out = self.backend.model(input_ids=tokens.unsqueeze(-1), attention_mask=self.mask,
                                 position_ids=positions.unsqueeze(-1), use_cache=True,
                                 **{self.backend._cache_kw: self.past})
        self.past = _cache_of(out)
        return out.logits[:, -1].float()

    def select(self, rows: Any) -> None:
        self.past.batch_select_indices(rows)
        self.mask = self.mask[rows]

    def row_kv(self, j: int) -> list[tuple[Any, Any]]:
        real = self.mask[j].bool()
        return [(layer.keys[j][..., real, :], layer.values[j][..., real, :]) for layer in self.past.layers]


class TransformersBackend:
    """Batched sampling with a KV cache on any transformers causal LM, any device.

    Prompts are left-padded (position ids follow the attention mask); a row that finishes leaves the batch and the
    KV cache, so short replies cost nothing while long ones finish. `score` is the matching scorer.
    """

    def __init__(self, model: Any, tokenizer: Any, *, batch_size: int = 64, name: str = "",
                 prefix_cache: bool | PrefixCache = True, fast_decode: bool = True) -> None:
        if tokenizer.pad_token_id is None and tokenizer.eos_token_id is None:
            raise ValueError("the tokenizer has neither a pad nor an eos token: set tokenizer.pad_token")
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.name = name or getattr(model.config, "_name_or_path", "") or model.__class__.__name__
        self.pad_id = int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id)
        self.stop_ids = eos_ids(tokenizer, getattr(model, "generation_config", None))
        self.vocab_size = int(model.get_input_embeddings().weight.shape[0])
        # transformers >= 5.2x names the KV cache argument `cache`; older releases `past_key_values`
        self._cache_kw = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
        # exact KV reuse across calls (agents/prefix_cache.py): True for a default-sized cache, or a PrefixCache
        # one-token steps through agents/fast_decode.py where the model is Llama/Qwen2-style (same logits, less
        # overhead per token); else through transformers' forward
        self.fast_decode = fast_decode
        self.prefix_cache: PrefixCache | None = (
            prefix_cache if isinstance(prefix_cache, PrefixCache) else PrefixCache() if prefix_cache else None)

    @property
    def device(self) -> Any:
        return next(self.model.parameters()).device

    def generate(self, prompts: Sequence[Sequence[int]], params: SamplingParams) -> list[Completion]:
        """One completion per prompt. With `params.seeds`, each prompt samples from its own generator (one uniform
        draw per token, inverse-CDF), so its completion does not depend on the rest of the batch; else one generator
        seeded `params.seed` serves the batch."""
        prompts = check_prompts(prompts, self.vocab_size)
        params.check_seeds(len(prompts))
        torch = _torch()
        gen = torch.Generator(device=self.device)
        gen.manual_seed(params.seed if params.seed is not None else int(torch.randint(0, 2**62, ()).item()))
        row_gens = None
        if params.seeds is not None:
            row_gens = [torch.Generator().manual_seed(s % 2**63) for s in params.seeds]
        out: list[Completion] = []
        was_training = self.model.training
        self.model.eval()
        if self.prefix_cache is not None:
            self.prefix_cache.check(self.model)
        try:
            with torch.no_grad():
                for start in range(0, len(prompts), self.batch_size):
                    stop = start + self.batch_size
                    gens = gen if row_gens is None else row_gens[start:stop]
                    out.extend(self._generate_batch(prompts[start:stop], params, gens))
        finally:
            self.model.train(was_training)
        return out

    def _generate_batch(self, prompts: list[list[int]], params: SamplingParams, gen: Any) -> list[Completion]:
        """gen: one torch.Generator for the batch, or a list of one per prompt (row-independent sampling)."""
        torch = _torch()
        n = len(prompts)
        from distillgym.agents.fast_decode import Decoder, supports

        out, mask, next_pos = self._prefill(prompts)
        logits = out.logits[:, -1].float()
        steps: Decoder | _CacheSteps = (
            Decoder(self.model, _cache_of(out), mask, params.max_tokens)
            if self.fast_decode and supports(self.model) else _CacheSteps(self, _cache_of(out), mask))
        tokens: list[list[int]] = [[] for _ in range(n)]
        logps: list[list[float]] = [[] for _ in range(n)]
        reason = ["length"] * n
        rows = list(range(n))  # which prompt each live batch row belongs to; finished rows leave the batch
        stop_ids = torch.tensor(sorted(self.stop_ids), dtype=torch.long, device=self.device)
        for _ in range(params.max_tokens):
            logp_all = torch.log_softmax(logits, dim=-1)
            if params.temperature == 0:
                tok = logits.argmax(-1)
            else:
                probs = torch.softmax(filter_logits(logits / params.temperature, params.top_k, params.top_p), -1)
                # inverse CDF, one uniform per live row: from the row's own generator, or the batch's (10x faster
                # than torch.multinomial on a CPU, the same distribution)
                if isinstance(gen, list):
                    u = torch.cat([torch.rand(1, generator=gen[i], dtype=torch.float64) for i in rows])
                else:
                    u = torch.rand(len(rows), generator=gen, dtype=torch.float64, device=gen.device)
                cdf = probs.double().cumsum(-1)
                # right: the first token whose cumulative mass exceeds the draw, never one of zero probability
                tok = torch.searchsorted(cdf, (u.to(cdf.device) * cdf[:, -1]).unsqueeze(-1), right=True).squeeze(-1)
                tok = tok.clamp(max=probs.shape[-1] - 1)
            tok_logp = logp_all.gather(-1, tok.unsqueeze(-1)).squeeze(-1)
            tok_cpu, logp_cpu = tok.tolist(), tok_logp.tolist()
            ended = torch.isin(tok, stop_ids).tolist() if len(stop_ids) else [False] * len(rows)
            keep = []
            for j, i in enumerate(rows):
                tokens[i].append(tok_cpu[j])
                logps[i].append(logp_cpu[j])
                hit_stop = bool(params.stop) and any(s in decode(self.tokenizer, tokens[i]) for s in params.stop)
                if ended[j] or hit_stop:
                    reason[i] = "stop"
                    self._keep_row(steps, j, prompts[i] + tokens[i])
                else:
                    keep.append(j)
            if not keep:
                break
            if len(keep) < len(rows):  # drop finished rows from the batch and the KV cache
                idx = torch.tensor(keep, dtype=torch.long, device=self.device)
                steps.select(idx)
                tok, next_pos = tok[idx], next_pos[idx]
                rows = [rows[j] for j in keep]
            logits = steps.step(tok, next_pos)
            next_pos = next_pos + 1
        else:  # max_tokens reached: the live rows' sequences (their last token fed) are kept too
            for j, i in enumerate(rows):
                self._keep_row(steps, j, prompts[i] + tokens[i])
        return [Completion(t, lp, decode(self.tokenizer, t), r) for t, lp, r in zip(tokens, logps, reason, strict=True)]

    def _prefill(self, prompts: list[list[int]]) -> tuple[Any, Any, Any]:
        """Run the prompts through the model: (output with its KV cache, attention mask, next position per row).

        Without a prefix cache the prompts are left-padded. With one, each row reuses the keys and values of its
        longest cached prefix: the past slots hold row i's n_i cached tokens right-aligned to the widest reuse P,
        then its remaining tokens follow left-padded; the mask marks the real slots and positions continue from n_i.
        """
        torch = _torch()
        cache = self.prefix_cache
        if cache is None:
            ids, mask = pad_left(prompts, self.pad_id, self.device)
            positions = (mask.cumsum(-1) - 1).clamp(min=0)
            out = self.model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True,
                             logits_to_keep=1)
            return out, mask, positions[:, -1] + 1
        arrays = [np.asarray(p, dtype=np.int64) for p in prompts]
        self._share_batch_prefix(arrays)
        matches = [cache.match(a) for a in arrays]
        width = max(n for _, n in matches)
        ids, new_mask = pad_left([p[n:] for p, (_, n) in zip(prompts, matches, strict=True)], self.pad_id,
                                 self.device)
        reused = torch.tensor([n for _, n in matches], dtype=torch.long, device=self.device)
        positions = reused.unsqueeze(-1) + (new_mask.cumsum(-1) - 1).clamp(min=0)
        if width == 0:
            out = self.model(input_ids=ids, attention_mask=new_mask, position_ids=positions, use_cache=True,
                             logits_to_keep=1)
            return out, new_mask, positions[:, -1] + 1
        past_mask = torch.zeros((len(prompts), width), dtype=torch.long, device=self.device)
        some = next(e for e, _ in matches if e is not None).kv
        layers = [(torch.zeros((len(prompts), *k.shape[:-2], width, k.shape[-1]), dtype=k.dtype, device=k.device),
                   torch.zeros((len(prompts), *v.shape[:-2], width, v.shape[-1]), dtype=v.dtype, device=v.device))
                  for k, v in some]
        for i, (entry, n) in enumerate(matches):
            if entry is None:
                continue
            past_mask[i, width - n :] = 1
            for (keys, values), (k, v) in zip(layers, entry.kv, strict=True):
                keys[i, ..., width - n :, :] = k[..., :n, :]
                values[i, ..., width - n :, :] = v[..., :n, :]
        from transformers import DynamicCache

        past = DynamicCache(ddp_cache_data=layers, config=self.model.config)
        mask = torch.cat([past_mask, new_mask], dim=1)
        out = self.model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True,
                         logits_to_keep=1, **{self._cache_kw: past})
        return out, mask, positions[:, -1] + 1

    def _share_batch_prefix(self, arrays: list[np.ndarray]) -> None:
        """Prefill the prefix every prompt of the batch shares (the system text) once, as a cache entry."""
        cache = self.prefix_cache
        if cache is None or len(arrays) < 2:
            return
        m = min(len(a) for a in arrays) - 1
        for a in arrays[1:]:
            m = min(m, common_prefix(arrays[0], a))
        if m < cache.min_tokens or cache.longest(arrays[0][:m])[1] >= m:
            return
        torch = _torch()
        ids = torch.tensor(arrays[0][:m], dtype=torch.long, device=self.device).unsqueeze(0)
        out = self.model(input_ids=ids, use_cache=True, logits_to_keep=1)
        cache.add(arrays[0][:m], [(layer.keys[0], layer.values[0]) for layer in _cache_of(out).layers])

    def _keep_row(self, steps: Decoder | _CacheSteps, j: int, sequence: list[int]) -> None:
        """Keep batch row j's keys and values (its real slots) for the tokens fed so far."""
        if self.prefix_cache is None:
            return
        kv = steps.row_kv(j)
        n = int(kv[0][0].shape[-2]) if kv else 0
        self.prefix_cache.add(np.asarray(sequence[:n], dtype=np.int64), kv)

    def score(
        self,
        prompts: Sequence[Sequence[int]],
        completions: Sequence[Sequence[int]],
        *,
        temperature: float = 1.0,
        top_k: int = 0,
        full: bool = False,
    ) -> list[Scores]:
        """Log-probabilities of `completions` under `prompts` (batched, no gradients)."""
        torch = _torch()
        prompts = check_prompts(prompts, self.vocab_size)
        results: list[Scores] = []
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                for s in range(0, len(prompts), self.batch_size):
                    p, c = prompts[s : s + self.batch_size], completions[s : s + self.batch_size]
                    logp, _, logits = completion_logprobs(
                        self.model, p, c, pad_id=self.pad_id, temperature=temperature, return_logits=True
                    )
                    dist = torch.log_softmax(logits, dim=-1)
                    for i, ci in enumerate(c):
                        n = len(ci)
                        sc = Scores(logprobs=logp[i, :n].tolist())
                        if top_k:
                            top = torch.topk(dist[i, :n], min(top_k, dist.shape[-1]), dim=-1)
                            sc.top_ids, sc.top_logprobs = top.indices.tolist(), top.values.tolist()
                        if full:
                            sc.full = dist[i, :n].cpu()
                        results.append(sc)
        finally:
            self.model.train(was_training)
        return results
