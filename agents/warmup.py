"""A copy warm-up for a model built from scratch: teach it to repeat what its context holds before it meets a task.

A pretrained LM copies from its context (induction heads: having seen `A B` earlier, after `A` predict `B`) because
its pretraining text is full of repetition. The `tiny` preset starts from random weights, and on the longer actions
of some families (Household's `take apple 1 from countertop 2`) SFT learns the reply grammar long before it learns
to look back at the teacher's hint: the model sits on a plateau, writing well-formed actions its prior picks. This
warm-up trains the copying circuit first, on the standard synthetic task: a span of random tokens, then the same
span again, with the loss on the repeat only (the first copy cannot be predicted; the second can only be, by looking
back). The tokens are drawn uniformly from those environment text uses: spans cut from the text itself are learned
by heart instead (measured: 93% on spans of the text, 1% on random spans, after 300 steps), while random spans force
the look-back; it appears abruptly, the induction-head phase change, after ~400 steps of 32. `TinyConfig.copy_steps`
runs it inside `build_tiny`; docs/training.md has the measurement.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from typing import Any

__all__ = ["copy_accuracy", "copy_batch", "copy_row", "copy_warmup", "distinct_tokens", "token_pool", "token_stream"]


def token_pool(tokenizer: Any, texts: Iterable[str]) -> list[int]:
    """The distinct token ids of `texts` (what the copy spans are drawn from), sorted."""
    return distinct_tokens(token_stream(tokenizer, texts))


def distinct_tokens(stream: list[int]) -> list[int]:
    """The distinct ids of a token stream, sorted (at least 8 of them, or a ValueError)."""
    ids = set(stream)
    if len(ids) < 8:
        raise ValueError(f"copy warm-up needs text with at least 8 distinct tokens; got {len(ids)}")
    return sorted(ids)


def token_stream(tokenizer: Any, texts: Iterable[str]) -> list[int]:
    """`texts` tokenized and concatenated (the source of the language-modelling rows)."""
    ids: list[int] = []
    for text in texts:
        ids.extend(tokenizer(text, add_special_tokens=False)["input_ids"])
    return ids


def copy_row(pool: list[int], rng: random.Random, n: int, stream: list[int] | None = None,
             max_gap: int = 0) -> tuple[list[int], list[int]]:
    """One span-repeat row as (context, repeat): `n` tokens drawn uniformly from `pool`, then, with `stream` and
    `max_gap`, a window of 0..max_gap tokens of that text, then the same `n` tokens again. From its second token on
    the repeat can only be predicted by looking back across the window (the distance a long hint in the prompt puts
    between a token and its copy in the reply)."""
    span = [rng.choice(pool) for _ in range(n)]
    gap: list[int] = []
    if stream and max_gap > 0:
        width = rng.randint(0, min(max_gap, len(stream)))
        start = rng.randrange(0, len(stream) - width + 1)
        gap = stream[start:start + width]
    return span + gap, span


def copy_batch(pool: list[int], rng: random.Random, batch: int, max_span: int, pad_id: int,
               stream: list[int] | None = None, lm_fraction: float = 0.0) -> tuple[Any, Any, Any]:
    """(input_ids, attention_mask, labels) of `batch` sequences `span + span`, spans of 4..max_span tokens drawn
    uniformly from `pool`; labels are -100 except on the repeat from its second token on (its first token follows
    the end of the first copy, so looking back cannot predict it). With `stream`, a `lm_fraction` of the rows are
    instead windows of the text, every token a label (plain language modelling)."""
    import torch

    rows, labels = [], []
    for _ in range(batch):
        n = rng.randint(4, max(4, max_span))
        if stream is not None and len(stream) > 2 * n and rng.random() < lm_fraction:  # a window of the text
            start = rng.randrange(0, len(stream) - 2 * n + 1)
            window = stream[start:start + 2 * n]
            rows.append(window)
            labels.append([-100, *window[1:]])
            continue
        context, repeat = copy_row(pool, rng, n)
        rows.append(context + repeat)
        labels.append([-100] * (len(context) + 1) + repeat[1:])
    width = max(len(r) for r in rows)
    ids = torch.full((batch, width), pad_id, dtype=torch.long)
    mask = torch.zeros((batch, width), dtype=torch.long)
    lab = torch.full((batch, width), -100, dtype=torch.long)
    for i, (r, la) in enumerate(zip(rows, labels, strict=True)):
        ids[i, :len(r)] = torch.tensor(r)
        mask[i, :len(r)] = 1
        lab[i, :len(la)] = torch.tensor(la)
    return ids, mask, lab


def copy_accuracy(model: Any, pool: list[int], *, batches: int = 4, batch: int = 32, max_span: int = 24,
                  pad_id: int = 0, seed: int = 12345) -> float:
    """Greedy next-token accuracy on the repeats of fresh random spans (teacher-forced): about 1/len(pool) before
    copying is learned, near 1 after."""
    import torch

    rng = random.Random(seed)
    hits = total = 0
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for _ in range(batches):
            ids, mask, lab = copy_batch(pool, rng, batch, max_span, pad_id)
            logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1]
            target = lab[:, 1:]
            keep = target != -100
            hits += int((logits.argmax(-1)[keep] == target[keep]).sum())
            total += int(keep.sum())
    model.train(was_training)
    return hits / max(total, 1)


def copy_warmup(model: Any, tokenizer: Any, texts: Iterable[str], steps: int, *, batch: int = 32,
                max_span: int = 24, lr: float = 1e-3, seed: int = 0, lm_fraction: float = 0.5,
                progress: bool = False) -> list[float]:
    """Train `model` in place for `steps` AdamW steps on span-repeat copying, a `lm_fraction` of each batch being
    plain language modelling of `texts` (so that the model also knows the text it will meet: trained on copies
    alone, its first SFT steps meet a loss of 7 nats and wipe the copying out); returns the loss of each step."""
    import torch
    import torch.nn.functional as F

    stream = token_stream(tokenizer, texts)
    pool = distinct_tokens(stream)
    rng = random.Random(seed)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    model.train()
    losses: list[float] = []
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=steps, desc="copy warm-up", unit="step")
    for _ in range(steps):
        ids, mask, lab = copy_batch(pool, rng, batch, max_span, pad_id, stream, lm_fraction)
        logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1]
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), lab[:, 1:].reshape(-1), ignore_index=-100)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(float(loss.detach()))
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
    if bar is not None:
        bar.close()
    model.eval()
    return losses
