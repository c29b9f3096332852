"""A small `tiny` model shared by the agent tests (built once per test process, from config: no downloads)."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture(scope="session")
def tiny_model() -> tuple[Any, Any]:
    pytest.importorskip("torch")
    from distillgym.agents.models import TinyConfig, build_tiny

    return build_tiny(TinyConfig(vocab_size=600, episodes_per_env=2))
