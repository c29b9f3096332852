"""Model presets: `tiny` (a small causal LM built from a config, with a BPE tokenizer trained locally on text from
every registered environment) or any Hugging Face model name / local path, loaded offline when asked.

Nothing here downloads anything for `tiny`: it trains on CPU in minutes and runs anywhere. It is saved and loaded
with `save_pretrained` / `from_pretrained` like any Hugging Face model.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym

import distillgym

SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|pad|>")
#: ChatML, as Qwen models use it, so that prompts written for Qwen carry over.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


@dataclass(frozen=True)
class TinyConfig:
    """Size of the `tiny` preset: a Qwen2-style decoder small enough to train on 2 CPU cores."""

    vocab_size: int = 2000
    hidden_size: int = 128
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    intermediate_size: int = 512
    max_position_embeddings: int = 4096
    # Untied: with the output layer tied to the input embedding, every reply token's loss pushes the embeddings of
    # the board symbols around (as outputs they must score low), and the tiny model never learns to read a board:
    # measured on Sokoban 6x6 expert actions, tied stayed at chance (1.39 nats) after 500 steps of 32, untied
    # reached 53% accuracy at step 300.
    tie_word_embeddings: bool = False
    episodes_per_env: int = 4  # expert + random episodes per registered env, for tokenizer training text
    # Families whose text trains the tokenizer (None: every native family). Byte-level BPE encodes any text, so
    # other families still work, in more tokens. Sokoban and 2048 by default, because the quickstart's numbers
    # depend on it: adding household text grew the vocabulary from 601 to 800, which changed the initialization,
    # and SFT then left its chance-level plateau later: 38% held-out success after 600 iterations instead of 81%.
    families: tuple[str, ...] | None = ("sokoban", "2048")
    seed: int = 0
    # Steps of the copy warm-up (`agents/warmup.py`: repeat a span of random tokens, half the rows plain language
    # modelling of the env text) run on the fresh model before any task, so that it can copy from its context (a
    # teacher's hint) from the start. 0: none (the default, which keeps the quickstart's numbers); on Household
    # text 1200 steps of 32 (2 minutes on 2 cores) take the tiny model past its induction-head phase change (at
    # ~900 steps) to 96% copy accuracy on fresh spans.
    copy_steps: int = 0


def environment_text(episodes_per_env: int = 4, seed: int = 0, max_steps: int = 60,
                     families: tuple[str, ...] | None = None) -> Iterator[str]:
    """Text an agent meets in every registered native environment (of `families`, None: all): tasks,
    observations, feedback and action words.

    Half the episodes follow the expert, half act at random (so that feedback and invalid-action texts appear).
    """
    rng = random.Random(seed)
    words = ["Up", "Down", "Left", "Right", "up", "down", "left", "right", "<action>Up</action>", "thought: move:"]
    for entry in distillgym.ENVS:
        if entry.external:  # needs TextWorld or downloaded data: the tokenizer must build anywhere
            continue
        env = gym.make(entry.id, privileged=False)
        core: Any = env.unwrapped
        if families is not None and core.family not in families:
            env.close()
            continue
        for k in range(episodes_per_env):
            obs, info = env.reset(seed=seed + k)
            yield info["task"]
            yield obs
            for _ in range(max_steps):
                move = core.expert_action() if k % 2 == 0 else rng.choice(words)
                obs, _, terminated, truncated, info = env.step(move or "Up")
                yield f"{move}\n{obs}"
                if terminated or truncated:
                    break
        env.close()
    yield " ".join(words)


# Characters that never merge into longer tokens: every digit, punctuation or symbol, and a capital letter that does
# not start a word. A grid row such as `#PX__#` then reads one cell per token (BPE would make `#`, `PX`, `__#` of it,
# and a small model cannot see where the player stands), and a 2048 tile `128` reads digit by digit.
ISOLATED = r"[^\sA-Za-z]|[A-Z](?![a-z])"


def train_tokenizer(texts: Any, vocab_size: int = 2000) -> Any:
    """A byte-level BPE tokenizer (any unicode round-trips) trained on `texts`, as a transformers tokenizer with
    ChatML special tokens and chat template. Symbols, digits and lone capitals stay single tokens (`ISOLATED`)."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(ISOLATED), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|pad|>",
        bos_token=None,
        unk_token=None,
        additional_special_tokens=["<|endoftext|>", "<|im_start|>"],
        chat_template=CHAT_TEMPLATE,
        clean_up_tokenization_spaces=False,
    )


def build_tiny(cfg: TinyConfig | None = None, out_dir: str | Path | None = None) -> tuple[Any, Any]:
    """(model, tokenizer) of the `tiny` preset, deterministic in `cfg.seed`; saved to `out_dir` when given."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    cfg = cfg or TinyConfig()
    tokenizer = train_tokenizer(environment_text(cfg.episodes_per_env, cfg.seed, families=cfg.families), cfg.vocab_size)
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=cfg.hidden_size,
        num_hidden_layers=cfg.num_hidden_layers,
        num_attention_heads=cfg.num_attention_heads,
        num_key_value_heads=cfg.num_key_value_heads,
        intermediate_size=cfg.intermediate_size,
        max_position_embeddings=cfg.max_position_embeddings,
        tie_word_embeddings=cfg.tie_word_embeddings,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
    )
    torch.manual_seed(cfg.seed)
    model = Qwen2ForCausalLM(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    if cfg.copy_steps:
        from distillgym.agents.warmup import copy_warmup

        texts = environment_text(cfg.episodes_per_env, cfg.seed, families=cfg.families)
        copy_warmup(model, tokenizer, texts, cfg.copy_steps, seed=cfg.seed)
    if out_dir is not None:
        save(model, tokenizer, out_dir)
    return model, tokenizer


def save(model: Any, tokenizer: Any, out_dir: str | Path) -> Path:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def load(name_or_path: str | Path, *, offline: bool | None = None, dtype: Any = None) -> tuple[Any, Any]:
    """(model, tokenizer) from "tiny" (built here), a local directory, or a Hugging Face model name.

    offline: never touch the network (sets HF_HUB_OFFLINE); default: on when HF_HUB_OFFLINE is set or the name
    is a local path.
    """
    if str(name_or_path) == "tiny":
        return build_tiny()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    local = Path(name_or_path).exists()
    if local and not (Path(name_or_path) / "config.json").is_file():
        raise ValueError(
            f"cannot load model {str(name_or_path)!r}: not a local model directory (no config.json). "
            "Use 'tiny', or a directory written by save_pretrained."
        )
    if offline is None:
        offline = local or os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0")
    if offline:
        os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        tokenizer = AutoTokenizer.from_pretrained(name_or_path, local_files_only=offline)
        model = AutoModelForCausalLM.from_pretrained(
            name_or_path, local_files_only=offline, dtype=dtype or torch.float32
        )
    except OSError as e:
        raise ValueError(
            f"cannot load model {str(name_or_path)!r}: not a local model directory"
            + (" and offline mode is on (HF_HUB_OFFLINE=1), so nothing is downloaded" if offline else "")
            + f". Use 'tiny', or a directory written by save_pretrained. ({e.__class__.__name__}: {e})"
        ) from e
    return model, tokenizer
