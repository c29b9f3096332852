"""The lean decode step (agents/fast_decode.py) computes what transformers' forward computes: the same replies and
log-probabilities on Qwen2 and Llama models, through row drops and prefix reuse; other models decode through
transformers."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from distillgym.agents.fast_decode import Decoder, supports  # noqa: E402
from distillgym.agents.generation import SamplingParams, TransformersBackend, pad_left  # noqa: E402
from distillgym.agents.policies import ModelAgent  # noqa: E402
from distillgym.agents.rollout import collect  # noqa: E402


def prompts(n: int, seed: int = 0, vocab: int = 500) -> list[list[int]]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(5, vocab, (int(torch.randint(3, 40, (1,), generator=g)),), generator=g).tolist()
            for _ in range(n)]


def both(model: Any, tok: Any, batch: list[list[int]], params: SamplingParams, **kw: Any) -> tuple[list, list]:
    fast = TransformersBackend(model, tok, fast_decode=True, **kw).generate(batch, params)
    slow = TransformersBackend(model, tok, fast_decode=False, **kw).generate(batch, params)
    return fast, slow


def assert_same(fast: list, slow: list) -> None:
    assert [c.ids for c in fast] == [c.ids for c in slow]
    assert [c.finish_reason for c in fast] == [c.finish_reason for c in slow]
    for a, b in zip(fast, slow, strict=True):
        np.testing.assert_allclose(a.logprobs, b.logprobs, atol=1e-5)


def llama(tok: Any, **overrides: Any) -> Any:
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = dict(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
               num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
               pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, rope_theta=10000.0)
    cfg.update(overrides)
    return LlamaForCausalLM(LlamaConfig(**cfg)).eval()


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_replies_equal_transformers_forward(tiny_model: tuple, temperature: float) -> None:
    model, tok = tiny_model
    assert supports(model)  # the tiny preset is Qwen2-style
    fast, slow = both(model, tok, prompts(12), SamplingParams(temperature=temperature, max_tokens=24, seed=1))
    assert_same(fast, slow)


@pytest.mark.parametrize("overrides", [{}, {"attention_bias": True, "tie_word_embeddings": True}])
def test_llama_models_decode_alike(tiny_model: tuple, overrides: dict) -> None:
    _, tok = tiny_model
    model = llama(tok, **overrides)
    assert supports(model)
    fast, slow = both(model, tok, prompts(6, seed=2), SamplingParams(temperature=1.0, max_tokens=16, seed=3))
    assert_same(fast, slow)


@pytest.mark.parametrize("history", [None, 2])
def test_rollouts_with_stops_and_prefix_reuse_equal_transformers(tiny_model: tuple, history: int | None) -> None:
    # episodes end rows at different turns and tokens; the decoder's kept rows feed the next turns' prefix reuse
    model, tok = tiny_model
    played = {}
    for fast in (True, False):
        backend = TransformersBackend(model, tok, fast_decode=fast)
        agent = ModelAgent(backend, history=history, sampling=SamplingParams(temperature=1.0, max_tokens=8))
        eps = collect(agent, "Sokoban-6x6-1-v0", 4, split="train", group_size=2, num_envs=8, seed=5, progress=False,
                      env_kwargs={"max_steps": 5})
        played[fast] = [[(list(t.completion_ids), list(t.logprobs)) for t in e.turns] for e in eps]
        assert backend.prefix_cache is not None and backend.prefix_cache.stats()["hits"] > 0
    assert [[ids for ids, _ in ep] for ep in played[True]] == [[ids for ids, _ in ep] for ep in played[False]]
    for a, b in zip(played[True], played[False], strict=True):
        for (_, la), (_, lb) in zip(a, b, strict=True):
            np.testing.assert_allclose(la, lb, atol=1e-5)


def test_kept_rows_hold_the_keys_transformers_computes(tiny_model: tuple) -> None:
    model, tok = tiny_model
    batch = prompts(3, seed=4)
    ids, mask = pad_left(batch, int(tok.pad_token_id))
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True)
        dec = Decoder(model, out.past_key_values, mask, max_new=2)
        nxt = out.logits[:, -1].argmax(-1)
        dec.step(nxt, positions[:, -1] + 1)
        # row 1 fed its prompt and one token: its kept keys are those of a plain forward over that sequence
        seq = [*batch[1], int(nxt[1])]
        ref = model(input_ids=torch.tensor([seq]), use_cache=True).past_key_values
    kv = dec.row_kv(1)
    assert kv[0][0].shape[-2] == len(seq)
    for (k, v), layer in zip(kv, ref.layers, strict=True):
        torch.testing.assert_close(k, layer.keys[0], atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(v, layer.values[0], atol=1e-5, rtol=1e-4)
    dec.step(nxt, positions[:, -1] + 2)
    with pytest.raises(RuntimeError, match="buffers are full"):
        dec.step(nxt, positions[:, -1] + 3)


def test_other_models_decode_through_transformers(tiny_model: tuple) -> None:
    from peft import LoraConfig, get_peft_model
    from transformers import GPT2Config, GPT2LMHeadModel

    model, tok = tiny_model
    gpt2 = GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_embd=32, n_layer=1, n_head=2)).eval()
    assert not supports(gpt2)
    fast, slow = both(gpt2, tok, prompts(3), SamplingParams(temperature=0.0, max_tokens=5))
    assert_same(fast, slow)
    # a peft-wrapped model: the decoder would read the base weights and skip the adapters, so it is not used
    lora = get_peft_model(llama(tok), LoraConfig(r=4, target_modules=["q_proj", "v_proj"], lora_dropout=0.0))
    assert not supports(lora) and not supports(lora.base_model)


def test_sampling_never_draws_a_token_outside_top_k(tiny_model: tuple) -> None:
    model, tok = tiny_model
    batch = prompts(8, seed=6)
    greedy = TransformersBackend(model, tok).generate(batch, SamplingParams(temperature=0.0, max_tokens=10))
    for seeds in (None, list(range(8))):
        top1 = TransformersBackend(model, tok).generate(
            batch, SamplingParams(temperature=1.0, top_k=1, max_tokens=10, seed=0, seeds=seeds))
        assert [c.ids for c in top1] == [c.ids for c in greedy]
