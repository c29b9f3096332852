"""The copy warm-up: its batches are what they claim, and it teaches a fresh model to copy from its context."""

from __future__ import annotations

import random

import pytest

torch = pytest.importorskip("torch")

from distillgym.agents.warmup import copy_accuracy, copy_batch, copy_row, copy_warmup, token_pool  # noqa: E402


class DigitTokenizer:
    """Text of space-separated integers, one token each (enough tokenizer for the warm-up)."""

    pad_token_id = 0

    def __call__(self, text: str, add_special_tokens: bool = False) -> dict[str, list[int]]:
        return {"input_ids": [int(x) for x in text.split()]}


def test_copy_batch_repeats_a_span_and_labels_only_the_predictable_repeat() -> None:
    ids, mask, labels = copy_batch([5, 6, 7], random.Random(0), batch=3, max_span=4, pad_id=0)
    for row, m, lab in zip(ids.tolist(), mask.tolist(), labels.tolist(), strict=True):
        n = sum(m) // 2
        span = row[:n]
        assert n == 4 and row[:2 * n] == span + span and set(span) <= {5, 6, 7}
        assert lab[:n + 1] == [-100] * (n + 1) and lab[n + 1:2 * n] == span[1:]  # hand-derived
    assert token_pool(DigitTokenizer(), ["9 8 8 1 2 3 4 5 6", "12 9"]) == [1, 2, 3, 4, 5, 6, 8, 9, 12]
    with pytest.raises(ValueError, match="8 distinct tokens"):
        token_pool(DigitTokenizer(), ["1 2 3"])


def test_copy_row_puts_a_window_of_the_text_between_span_and_repeat() -> None:
    stream = list(range(100, 400))
    rng = random.Random(3)
    widths = []
    for _ in range(200):
        context, repeat = copy_row([5, 6, 7], rng, 6, stream, max_gap=50)
        gap = context[6:]
        assert len(repeat) == 6 and context[:6] == repeat and set(repeat) <= {5, 6, 7}
        assert len(gap) <= 50 and (not gap or gap == stream[gap[0] - 100:gap[0] - 100 + len(gap)])  # a text window
        widths.append(len(gap))
    assert min(widths) < 10 and max(widths) > 40  # widths spread over 0..max_gap
    context, repeat = copy_row([5, 6, 7], rng, 4, stream, max_gap=0)
    assert context == repeat  # no gap: span + span, as the warm-up's rows


def test_copy_batch_mixes_in_language_modelling_windows_of_the_text() -> None:
    stream = list(range(100, 200))
    ids, mask, labels = copy_batch([5, 6, 7], random.Random(1), batch=64, max_span=6, pad_id=0, stream=stream,
                                   lm_fraction=0.5)
    windows = 0
    for row, m, lab in zip(ids.tolist(), mask.tolist(), labels.tolist(), strict=True):
        row, lab = row[:sum(m)], lab[:sum(m)]
        if row[0] >= 100:  # a window: consecutive text, every token but the first a label
            windows += 1
            assert row == list(range(row[0], row[0] + len(row))) and lab == [-100, *row[1:]]
        else:
            assert set(row) <= {5, 6, 7}
    assert 16 < windows < 48


def test_copy_warmup_teaches_a_fresh_model_to_copy_random_spans() -> None:
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    model = Qwen2ForCausalLM(Qwen2Config(
        vocab_size=40, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        intermediate_size=128, max_position_embeddings=64, tie_word_embeddings=False))
    pool = list(range(8, 40))
    texts = [" ".join(map(str, pool))]
    before = copy_accuracy(model, pool, max_span=8)
    losses = copy_warmup(model, DigitTokenizer(), texts, 150, max_span=8, lr=3e-3, seed=0, lm_fraction=0.0)
    after = copy_accuracy(model, pool, max_span=8)
    assert len(losses) == 150 and sum(losses[-10:]) < sum(losses[:10])
    assert before < 0.1  # chance is 1/32
    assert after > 0.2, after  # 0.34 measured: the look-back has started to form
