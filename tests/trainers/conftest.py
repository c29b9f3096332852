"""Fixtures shared by the trainer tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A tiny model (small vocabulary, few tokenizer episodes), built once per test session."""
    from distillgym.agents.models import TinyConfig, build_tiny

    out = tmp_path_factory.mktemp("tiny-model")
    build_tiny(TinyConfig(vocab_size=600, episodes_per_env=2), out_dir=out)
    return str(out)
