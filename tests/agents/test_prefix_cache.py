"""Prefix reuse in the transformers backend: the same replies as a full prefill, less prefill, never stale keys."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from distillgym.agents.generation import SamplingParams, TransformersBackend  # noqa: E402
from distillgym.agents.policies import ModelAgent  # noqa: E402
from distillgym.agents.prefix_cache import PrefixCache, common_prefix  # noqa: E402
from distillgym.agents.rollout import collect  # noqa: E402


def turns(episodes: list[Any]) -> list[list[tuple[list[int], list[float]]]]:
    return [[(list(t.completion_ids), list(t.logprobs)) for t in e.turns] for e in episodes]


def assert_same(a: list[Any], b: list[Any]) -> None:
    """The same sampled tokens, log-probabilities equal to fp32 rounding (reused keys come from another layout)."""
    assert [[ids for ids, _ in ep] for ep in a] == [[ids for ids, _ in ep] for ep in b]
    for ep_a, ep_b in zip(a, b, strict=True):
        for (_, lp_a), (_, lp_b) in zip(ep_a, ep_b, strict=True):
            np.testing.assert_allclose(lp_a, lp_b, atol=1e-4)


@pytest.mark.parametrize("history", [None, 2])
@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_rollouts_with_prefix_reuse_equal_full_prefill(tiny_model: tuple, history: int | None,
                                                       temperature: float) -> None:
    model, tok = tiny_model
    played = {}
    for on in (False, True):
        backend = TransformersBackend(model, tok, prefix_cache=on)
        agent = ModelAgent(backend, history=history, sampling=SamplingParams(temperature=temperature, max_tokens=8))
        episodes = collect(agent, "Sokoban-6x6-1-v0", 4, split="train", group_size=2, num_envs=8, seed=3,
                           progress=False, env_kwargs={"max_steps": 6})
        played[on] = turns(episodes)
        if on:
            stats = backend.prefix_cache.stats()  # type: ignore[union-attr]
            assert stats["hits"] == stats["lookups"] == 8 * 6  # every prompt reused something (the system text)
            # with the whole history, turn t+1 extends turn t: most prompt tokens are not prefilled again
            assert stats["reused_share"] > (0.6 if history is None else 0.3)
    assert_same(played[False], played[True])


def test_the_next_turn_reuses_the_whole_previous_sequence(tiny_model: tuple) -> None:
    model, tok = tiny_model
    backend = TransformersBackend(model, tok)
    plain = TransformersBackend(model, tok, prefix_cache=False)
    first = tok("You are playing Sokoban. Push every box onto a target.", add_special_tokens=False)["input_ids"]
    params = SamplingParams(temperature=0.0, max_tokens=6)
    done = backend.generate([first], params)[0]
    assert done.ids == plain.generate([first], params)[0].ids
    cache = backend.prefix_cache
    assert cache is not None and len(cache) == 1
    fed = len(first) + len(done.ids) - (1 if done.finish_reason == "stop" else 0)  # a stop token is never fed
    (entry,) = cache.entries.values()
    assert list(entry.tokens) == (first + done.ids)[:fed]
    assert entry.kv[0][0].shape[-2] == fed
    following = first + done.ids + tok(" Then push left.", add_special_tokens=False)["input_ids"]
    _, n = cache.match(np.asarray(following))
    assert n == fed
    again = backend.generate([following], params)[0]
    reference = plain.generate([following], params)[0]
    assert again.ids == reference.ids
    np.testing.assert_allclose(again.logprobs, reference.logprobs, atol=1e-4)


def test_a_prefix_the_batch_shares_is_prefilled_once(tiny_model: tuple) -> None:
    model, tok = tiny_model
    shared = tok("You are playing Sokoban. Push every box onto a target, then stop.",
                 add_special_tokens=False)["input_ids"]
    tails = [tok(t, add_special_tokens=False)["input_ids"] for t in ("Push", "Score: 128", "#__P\n#X_O")]
    prompts = [shared + t for t in tails]
    cache = PrefixCache(min_tokens=4)
    backend = TransformersBackend(model, tok, prefix_cache=cache)
    params = SamplingParams(temperature=0.0, max_tokens=5)
    out = backend.generate(prompts, params)
    assert cache.hits == 3 and cache.reused_tokens == 3 * len(shared)  # every row read the shared prefill
    reference = TransformersBackend(model, tok, prefix_cache=False).generate(prompts, params)
    assert [c.ids for c in out] == [c.ids for c in reference]


@pytest.mark.parametrize("fused", [False, True])  # fused AdamW updates weights without bumping version counters
def test_an_update_of_the_weights_empties_the_cache(tiny_model: tuple, fused: bool) -> None:
    model, tok = tiny_model
    model = copy.deepcopy(model)
    backend = TransformersBackend(model, tok)
    prompt = tok("You are playing Sokoban. Push every box onto a target.", add_special_tokens=False)["input_ids"]
    params = SamplingParams(temperature=0.0, max_tokens=6)
    backend.generate([prompt], params)
    assert backend.prefix_cache is not None and len(backend.prefix_cache) == 1
    opt = torch.optim.AdamW(model.parameters(), lr=0.5, fused=fused)
    loss = model(input_ids=torch.tensor([prompt]), labels=torch.tensor([prompt])).loss
    loss.backward()
    opt.step()
    after = backend.generate([prompt], params)[0]  # keys of the old weights must not be read
    fresh = TransformersBackend(model, tok, prefix_cache=False).generate([prompt], params)[0]
    assert after.ids == fresh.ids
    np.testing.assert_allclose(after.logprobs, fresh.logprobs, atol=1e-4)
    # the second call found the cache emptied: neither lookup was a hit (without the clear, the second would be)
    assert backend.prefix_cache.lookups == 2 and backend.prefix_cache.hits == 0


def test_cache_bounds_and_lookup() -> None:
    def kv(n: int) -> list[tuple[Any, Any]]:
        return [(torch.zeros(2, n, 4), torch.zeros(2, n, 4))]  # 2 heads x n x 4 floats, twice: 64 n bytes

    assert common_prefix(np.array([1, 2, 3]), np.array([1, 2, 4, 5])) == 2
    assert common_prefix(np.array([1, 2]), np.array([1, 2, 3])) == 2
    assert common_prefix(np.array([], dtype=np.int64), np.array([1])) == 0
    cache = PrefixCache(max_entries=2, max_bytes=64 * 25, min_tokens=2)
    cache.add(np.arange(10), kv(10))
    cache.add(np.arange(5), kv(5))  # a prefix of an entry: already covered
    assert len(cache) == 1
    cache.add(np.arange(12), kv(12))  # extends the first: replaces it
    assert len(cache) == 1 and cache.nbytes == 64 * 12
    cache.add(np.array([7, 7, 7]), kv(3))
    cache.add(np.array([8, 8, 8]), kv(3))  # three entries > max_entries: the least recently used (arange 12) goes
    assert len(cache) == 2 and cache.longest(np.arange(12))[1] == 0
    entry, n = cache.match(np.array([7, 7, 7, 1]))
    assert entry is not None and n == 3
    entry, n = cache.match(np.array([7, 7, 7]))
    assert n == 2  # the last prompt token is always fed
    cache.add(np.arange(100, 130), kv(30))  # 64 x 30 bytes > max_bytes: not kept
    assert cache.longest(np.arange(100, 130))[1] == 0
    assert cache.match(np.array([9, 9, 9]))[1] == 0 and cache.stats()["hits"] == 2
    with pytest.raises(ValueError, match="max_entries"):
        PrefixCache(max_entries=0)
