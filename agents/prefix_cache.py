"""Exact prefix reuse for the transformers backend: KV states kept across `generate` calls.

A multi-turn rollout asks for the same tokens again and again: every prompt of a family starts with the same system
text, and with the whole history shown the prompt of turn t+1 is the prompt of turn t, its completion and the new
observation (the prompt builder splices past replies in as the exact sampled ids). `PrefixCache` keeps the keys and
values of finished sequences (prompt + completion, per row) and, for a new prompt, finds the cached sequence that
shares the longest token prefix with it; the backend then prefills only the rest. Within one batch, the prefix all
prompts share (the system text) is prefilled once and shared.

Reuse is exact up to floating-point rounding: a cached key was computed in another batch layout, so logits agree to
about 1e-5 in fp32, not bit for bit. The cache forgets everything when the model's weights change (an optimizer
step, a weight load: checked by a fingerprint of every parameter's norm at each call, and cleared by the trainers
after every update), so a training loop never reads keys of old weights. It is bounded by entries and bytes, least
recently used first out.

With a sliding history window (`history=4`), the window drops the oldest turn and every token after it changes, so
within an episode only the system text is reused once the window is full (docs/scaling.md has the measured effect).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class Entry:
    tokens: np.ndarray  # the sequence whose keys and values are kept, [T]
    kv: list[tuple[Any, Any]]  # per layer (keys [H, T, D], values [H, T, D])
    nbytes: int


def common_prefix(a: np.ndarray, b: np.ndarray) -> int:
    """Length of the longest common prefix of two token arrays."""
    n = min(len(a), len(b))
    if n == 0:
        return 0
    diff = np.flatnonzero(a[:n] != b[:n])
    return int(diff[0]) if len(diff) else n


def weights_version(model: Any) -> Any:
    """A fingerprint of the model's weights: the norm of every parameter (one fused reduction). Version counters
    would be cheaper but are not enough: fused AdamW and `.data` writes update weights without bumping them."""
    import torch

    params = [p.detach() for p in model.parameters()]
    return id(model), torch.stack(torch._foreach_norm(params)).double().cpu() if params else None


def _same_weights(old: Any, new: Any) -> bool:
    if old is None or old[0] != new[0]:
        return False
    if old[1] is None or new[1] is None:
        return old[1] is None and new[1] is None
    return bool((old[1] == new[1]).all())


class PrefixCache:
    """Keys and values of past sequences, looked up by longest common token prefix (see the module docstring).

    max_entries: sequences kept (rows of recent calls; the next turn of a row looks for its own last sequence).
    max_bytes: memory the kept keys and values may use (on the model's device).
    min_tokens: shorter matches are not worth a separate cache layout and count as none.
    """

    def __init__(self, *, max_entries: int = 256, max_bytes: int = 1 << 30, min_tokens: int = 8) -> None:
        if max_entries < 1 or max_bytes < 1:
            raise ValueError("PrefixCache needs max_entries >= 1 and max_bytes >= 1")
        self.max_entries, self.max_bytes, self.min_tokens = max_entries, max_bytes, min_tokens
        self.entries: OrderedDict[int, Entry] = OrderedDict()
        self.nbytes = 0
        self._next = 0
        self._version: Any = None
        self._matrix: tuple[list[int], np.ndarray, np.ndarray] | None = None
        self.hits = self.lookups = self.reused_tokens = self.prompt_tokens = 0

    def __len__(self) -> int:
        return len(self.entries)

    def clear(self) -> None:
        self.entries.clear()
        self.nbytes = 0
        self._matrix = None

    def check(self, model: Any) -> None:
        """Forget every entry when the model's weights changed since the last call."""
        version = weights_version(model)
        if not _same_weights(self._version, version):
            self.clear()
            self._version = version

    def _table(self) -> tuple[list[int], np.ndarray, np.ndarray]:
        """Every entry's tokens in one padded matrix (rebuilt after a change), for one comparison per lookup."""
        if self._matrix is None:
            keys = list(self.entries)
            width = max((len(e.tokens) for e in self.entries.values()), default=0)
            matrix = np.full((len(keys), width), -1, dtype=np.int64)
            for row, key in enumerate(keys):
                tokens = self.entries[key].tokens
                matrix[row, : len(tokens)] = tokens
            self._matrix = (keys, matrix, np.array([len(self.entries[k].tokens) for k in keys], dtype=np.int64))
        return self._matrix

    def longest(self, tokens: np.ndarray) -> tuple[int | None, int]:
        """(key, length) of the entry sharing the longest prefix with `tokens` ((None, 0) when none shares any)."""
        keys, matrix, lengths = self._table()
        if not keys or len(tokens) == 0:
            return None, 0
        width = min(matrix.shape[1], len(tokens))
        differ = matrix[:, :width] != tokens[:width]
        # the first differing column per entry; an entry equal over the compared width shares all of it
        shared = np.where(differ.any(axis=1), differ.argmax(axis=1), width)
        shared = np.minimum(shared, lengths)
        row = int(shared.argmax())
        return (keys[row], int(shared[row])) if shared[row] > 0 else (None, 0)

    def match(self, prompt: np.ndarray) -> tuple[Entry | None, int]:
        """The cached entry sharing the longest prefix with `prompt`, and that length (at most len(prompt) - 1: the
        last prompt token is always fed, its logits start the reply)."""
        key, n = self.longest(prompt)
        n = min(n, len(prompt) - 1)
        self.lookups += 1
        self.prompt_tokens += len(prompt)
        if key is None or n < self.min_tokens:
            return None, 0
        self.entries.move_to_end(key)
        self.hits += 1
        self.reused_tokens += n
        return self.entries[key], n

    def add(self, tokens: np.ndarray, kv: list[tuple[Any, Any]]) -> None:
        """Keep `kv` (per layer, [H, len(tokens), D]) for `tokens`; an entry that is a prefix of the new one goes."""
        if len(tokens) < self.min_tokens:
            return
        keys, matrix, lengths = self._table()
        if keys:
            width = min(matrix.shape[1], len(tokens))
            differ = matrix[:, :width] != tokens[:width]
            shared = np.minimum(np.where(differ.any(axis=1), differ.argmax(axis=1), width), lengths)
            covering = np.flatnonzero(shared == len(tokens))
            if len(covering):  # already covered by a longer (or equal) entry
                self.entries.move_to_end(keys[int(covering[0])])
                return
            for row in np.flatnonzero(shared == lengths):  # the new sequence extends these
                self._drop(keys[int(row)])
        nbytes = sum(k.numel() * k.element_size() + v.numel() * v.element_size() for k, v in kv)
        if nbytes > self.max_bytes:
            return
        self._matrix = None
        self.entries[self._next] = Entry(tokens, kv, nbytes)
        self._next += 1
        self.nbytes += nbytes
        while len(self.entries) > self.max_entries or self.nbytes > self.max_bytes:
            self._drop(next(iter(self.entries)))

    def _drop(self, key: int) -> None:
        self.nbytes -= self.entries.pop(key).nbytes
        self._matrix = None

    def stats(self) -> dict[str, float]:
        """Lookups, hits and the share of prompt tokens that were not prefilled again."""
        return {"lookups": self.lookups, "hits": self.hits, "entries": len(self.entries), "bytes": self.nbytes,
                "reused_share": self.reused_tokens / self.prompt_tokens if self.prompt_tokens else 0.0}
