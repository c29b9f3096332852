"""The transformers backend and the scorer: exact token bookkeeping, matching logprobs, seeds, stops, padding."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from distillgym.agents.generation import (  # noqa: E402
    SamplingParams,
    TransformersBackend,
    completion_logprobs,
    filter_logits,
)

TEXTS = ["#__P\n#X_O", "Push", "You are playing Sokoban. Push every box onto a target, then stop.", "Score: 128"]


@pytest.fixture(scope="module")
def backend(tiny_model: tuple) -> TransformersBackend:
    model, tokenizer = tiny_model
    return TransformersBackend(model, tokenizer, batch_size=3)  # batch 3 < 4 prompts: exercises chunking


def prompts(backend: TransformersBackend) -> list[list[int]]:
    return [backend.tokenizer(t, add_special_tokens=False)["input_ids"] for t in TEXTS]


@pytest.mark.parametrize(
    "params",
    [SamplingParams(temperature=1.0, max_tokens=24, seed=1), SamplingParams(temperature=0.7, top_k=20, top_p=0.9,
                                                                             max_tokens=24, seed=2)],
)
def test_scorer_matches_generator_logprobs(backend: TransformersBackend, params: SamplingParams) -> None:
    ps = prompts(backend)
    out = backend.generate(ps, params)
    assert [len(c.ids) for c in out] and all(len(c.ids) == len(c.logprobs) for c in out)
    scores = backend.score(ps, [c.ids for c in out])
    for c, s in zip(out, scores, strict=True):
        assert len(s.logprobs) == len(c.ids)
        assert max(abs(a - b) for a, b in zip(c.logprobs, s.logprobs, strict=True)) < 1e-4
        assert c.text == backend.tokenizer.decode(c.ids, skip_special_tokens=True)


def test_left_padding_does_not_change_results(backend: TransformersBackend) -> None:
    ps = prompts(backend)
    greedy = SamplingParams(temperature=0, max_tokens=16)
    batched = backend.generate(ps, greedy)
    for p, b in zip(ps, batched, strict=True):
        alone = backend.generate([p], greedy)[0]
        assert alone.ids == b.ids
        assert max(abs(x - y) for x, y in zip(alone.logprobs, b.logprobs, strict=True)) < 1e-4


def test_seed_makes_sampling_reproducible(backend: TransformersBackend) -> None:
    ps = prompts(backend)
    a = backend.generate(ps, SamplingParams(max_tokens=16, seed=7))
    b = backend.generate(ps, SamplingParams(max_tokens=16, seed=7))
    c = backend.generate(ps, SamplingParams(max_tokens=16, seed=8))
    assert [x.ids for x in a] == [x.ids for x in b]
    assert [x.ids for x in a] != [x.ids for x in c]


def test_per_prompt_seeds_make_a_row_independent_of_its_batch(backend: TransformersBackend) -> None:
    """With `seeds`, a prompt samples the same completion alone, with other prompts beside it, or in another order
    and chunking: its draws come from its own seed, not from its position in the batch."""
    ps = prompts(backend)
    params = dict(temperature=1.0, max_tokens=16)
    alone = backend.generate([ps[2]], SamplingParams(**params, seeds=(11,)))[0]
    batch = backend.generate(ps, SamplingParams(**params, seeds=(5, 6, 11, 8)))
    flipped = backend.generate(ps[::-1], SamplingParams(**params, seeds=(8, 11, 6, 5)))
    assert alone.ids == batch[2].ids == flipped[1].ids
    assert [c.ids for c in batch] == [c.ids for c in flipped[::-1]]
    assert len({tuple(c.ids) for c in backend.generate([ps[2]] * 4, SamplingParams(**params, seeds=(1, 2, 3, 4)))}) > 1
    with pytest.raises(ValueError, match="2 seeds for 4 prompts"):
        backend.generate(ps, SamplingParams(**params, seeds=(1, 2)))


def test_top_k_one_is_greedy(backend: TransformersBackend) -> None:
    ps = prompts(backend)
    greedy = backend.generate(ps, SamplingParams(temperature=0, max_tokens=12))
    top1 = backend.generate(ps, SamplingParams(temperature=1.3, top_k=1, max_tokens=12, seed=3))
    assert [g.ids for g in greedy] == [t.ids for t in top1]


def test_stop_strings_and_length(backend: TransformersBackend) -> None:
    ps = prompts(backend)
    # one prompt: in a batch, other rows that meet the stop string leave early and the seeded draws shift
    free = backend.generate(ps[2:3], SamplingParams(max_tokens=40, seed=11))[0]
    # a stop string the free-running sample produced: generation must end exactly where it first completes
    text = free.text
    stop = text[len(text) // 2 : len(text) // 2 + 2]
    assert stop.strip(), "the sample should contain printable text"
    c = backend.generate(ps[2:3], SamplingParams(max_tokens=40, seed=11, stop=(stop,)))[0]
    assert c.finish_reason == "stop" and stop in c.text
    assert stop not in backend.tokenizer.decode(c.ids[:-1], skip_special_tokens=True)
    assert c.ids == free.ids[: len(c.ids)]
    short = backend.generate(ps, SamplingParams(max_tokens=3, seed=1))
    assert all(len(s.ids) <= 3 for s in short)
    for s in short:
        ended = s.ids[-1] in backend.stop_ids
        assert s.finish_reason == ("stop" if ended else "length") and (ended or len(s.ids) == 3)


def test_scorer_distributions(backend: TransformersBackend) -> None:
    ps = prompts(backend)[:2]
    comps = [c.ids for c in backend.generate(ps, SamplingParams(max_tokens=8, seed=5))]
    scores = backend.score(ps, comps, top_k=5, full=True)
    hot = backend.score(ps, comps, temperature=2.0, full=True)
    for s, h, ids in zip(scores, hot, comps, strict=True):
        assert s.full.shape == (len(ids), backend.vocab_size)
        assert torch.allclose(s.full.exp().sum(-1), torch.ones(len(ids)), atol=1e-5)
        assert s.logprobs == pytest.approx([s.full[t, i].item() for t, i in enumerate(ids)], abs=1e-6)
        assert all(row == sorted(row, reverse=True) for row in s.top_logprobs)
        assert [r[0] for r in s.top_ids] == s.full.argmax(-1).tolist()
        # temperature T: log softmax(logits / T) = log softmax(log p / T)
        assert torch.allclose(h.full, torch.log_softmax(s.full / 2.0, -1), atol=1e-5)


def test_completion_logprobs_is_differentiable_and_masked(tiny_model: tuple) -> None:
    model, tokenizer = tiny_model
    p = [[5, 6, 7], [8]]
    c = [[9, 10], [11, 12, 13]]
    logp, mask, _ = completion_logprobs(model, p, c, pad_id=tokenizer.pad_token_id)
    assert mask.tolist() == [[1, 1, 0], [1, 1, 1]] and logp[0, 2].item() == 0.0
    logp.sum().backward()
    grad = model.get_input_embeddings().weight.grad
    assert grad is not None and grad.abs().sum() > 0
    model.zero_grad(set_to_none=True)


def test_filter_logits_by_hand() -> None:
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    assert torch.isinf(filter_logits(logits, top_k=2)).tolist() == [[False, False, True, True]]
    # nucleus 0.8: 0.5 + 0.3 reaches 0.8, so only the first two stay
    assert torch.isinf(filter_logits(logits, top_p=0.8)).tolist() == [[False, False, True, True]]
    assert torch.isinf(filter_logits(logits, top_p=0.81)).tolist() == [[False, False, False, True]]
    assert not torch.isinf(filter_logits(logits)).any()


def test_bad_input_gets_clear_errors(backend: TransformersBackend) -> None:
    with pytest.raises(ValueError, match="prompt 1 is empty"):
        backend.generate([[1, 2], []], SamplingParams())
    with pytest.raises(ValueError, match="outside the vocabulary"):
        backend.generate([[10**7]], SamplingParams())
    for field, kwargs in [("temperature", {"temperature": -1}), ("top_p", {"top_p": 0}), ("top_k", {"top_k": -2}),
                          ("max_tokens", {"max_tokens": 0})]:
        with pytest.raises(ValueError, match=field):
            SamplingParams(**kwargs)
    assert math.isfinite(backend.score([[1, 2]], [[3]])[0].logprobs[0])
