"""A small `tiny` model shared by the agent tests (built once per test process, from config: no downloads)."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture(scope="session")
def tiny_model() -> tuple[Any, Any]:
    pytest.importorskip("torch")
    from distillgym.agents.models import TinyConfig, build_tiny

    return build_tiny(TinyConfig(vocab_size=600, episodes_per_env=2))


@pytest.fixture(scope="session")
def household_demos(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A demonstration store of the expert's first 8 Household training episodes (BM25: no embedder to load)."""
    from distillgym.agents.policies import ExpertAgent
    from distillgym.agents.rollout import collect
    from distillgym.skills.demos import DemoStore

    db = DemoStore(tmp_path_factory.mktemp("demos") / "d.db", retriever="bm25")
    db.add_episodes(collect(ExpertAgent(), "Household-v0", 8, split="train", num_envs=8, progress=False),
                    family="household")
    return db
