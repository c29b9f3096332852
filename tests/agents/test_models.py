"""The `tiny` preset: a locally trained tokenizer and a config-built model that save and load like any HF model."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import pytest

torch = pytest.importorskip("torch")

from distillgym.agents.models import TinyConfig, build_tiny, load  # noqa: E402

SMALL = TinyConfig(vocab_size=600, episodes_per_env=2)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    out = tmp_path_factory.mktemp("tiny")
    model, tokenizer = build_tiny(SMALL, out_dir=out)
    return model, tokenizer, out


def test_tokenizer_round_trips_environment_text_exactly(tiny: tuple) -> None:
    _, tokenizer, _ = tiny
    for env_id, kwargs in [("distillgym/Sokoban-v0", {}), ("distillgym/Sokoban-v0", {"symbols": "xsb"}),
                           ("distillgym/2048-v0", {})]:
        obs, info = gym.make(env_id, **kwargs).reset(seed=123)
        for text in (obs, info["task"], "Invalid action '🙂 向上'.", "<action>Left</action>"):
            ids = tokenizer(text, add_special_tokens=False)["input_ids"]
            assert tokenizer.decode(ids) == text
    # a board reads one cell per token (so that a small model can see where things are), a 2048 tile digit by
    # digit, while the words of the task text merge (trained on environment text)
    obs, info = gym.make("distillgym/Sokoban-v0").reset(seed=5)
    row = obs.splitlines()[2]
    assert tokenizer.tokenize(row) == list(row)
    assert tokenizer.tokenize("2048") == ["2", "0", "4", "8"]
    assert len(tokenizer(info["task"])["input_ids"]) < len(info["task"].encode()) / 2


def test_chat_template_and_special_tokens(tiny: tuple) -> None:
    _, tokenizer, _ = tiny
    ids = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Push the box."}], add_generation_prompt=True, tokenize=True
    )
    ids = ids["input_ids"] if isinstance(ids, dict) or hasattr(ids, "keys") else ids
    text = tokenizer.decode(ids)
    assert text == "<|im_start|>user\nPush the box.<|im_end|>\n<|im_start|>assistant\n"
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.pad_token == "<|pad|>"


def test_save_and_load_give_the_same_model(tiny: tuple) -> None:
    model, tokenizer, out = tiny
    loaded, loaded_tok = load(out)
    assert isinstance(loaded_tok.chat_template, str)
    ids = torch.tensor([tokenizer("#_P X O#\nUp")["input_ids"]])
    with torch.no_grad():
        assert torch.equal(model(ids).logits, loaded(ids).logits)
    assert loaded.config.vocab_size == len(tokenizer) and loaded.dtype == torch.float32


def test_build_is_deterministic() -> None:
    a, ta = build_tiny(SMALL)
    b, tb = build_tiny(SMALL)
    assert ta.get_vocab() == tb.get_vocab()
    for (na, pa), (nb, pb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert na == nb and torch.equal(pa, pb)


def test_copy_steps_train_the_built_model_reproducibly(tiny: tuple) -> None:
    """TinyConfig.copy_steps runs the copy warm-up on the fresh model: other weights than the plain build's, the
    same weights for the same config, the same tokenizer."""
    import dataclasses

    warm = dataclasses.replace(SMALL, copy_steps=2)
    a, ta = build_tiny(warm)
    b, _ = build_tiny(warm)
    plain, tokenizer, _ = tiny
    assert ta.get_vocab() == tokenizer.get_vocab()
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))
    assert not all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), plain.state_dict().values(),
                                                       strict=True))


def test_unknown_model_fails_clearly_offline(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="offline mode is on"):
        load("no-such-org/no-such-model", offline=True)
    with pytest.raises(ValueError, match="not a local model directory"):
        load(tmp_path)  # an empty directory
