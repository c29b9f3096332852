"""Skill-SD: the skill reaches the teacher's prompt and never the student's; UCB statistics follow the rewards;
the loss is GRPO plus lambda times the importance-weighted k3 term; the store is checkpointed and resumed."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from distillgym.agents.prompts import PRIVILEGED_HEADER  # noqa: E402
from distillgym.skills import Skill, SkillStore, task_key  # noqa: E402
from distillgym.trainers import core, skill_sd  # noqa: E402
from distillgym.trainers.config import load_config  # noqa: E402
from distillgym.trainers.loop import read_metrics, setup, train  # noqa: E402
from tests.trainers.test_train import quick  # noqa: E402

MARKER = "zebra-workflow-marker"


def _seed_store(path: Path, env: str, tasks: range) -> None:
    with SkillStore(path) as store:
        for t in tasks:
            store.add(Skill("sokoban", task_key(env, "train", t), f"{MARKER} worked", "none", [f"{MARKER} step {t}"]))


def _run(tiny_dir: str, tmp_path: Path, *extra: str) -> tuple[core.Run, skill_sd.Config]:
    cfg, acfg = load_config(None, quick(tiny_dir, tmp_path, "algo=skill_sd", *extra))
    run = setup(cfg)
    run.state = skill_sd.setup(run, acfg)
    return run, acfg


def test_skill_reaches_the_teacher_only(tiny_dir: str, tmp_path: Path) -> None:
    store = tmp_path / "seed.sqlite"
    _seed_store(store, "Sokoban-6x6-1-v0", range(4))
    run, acfg = _run(tiny_dir, tmp_path / "run", f"skill_sd.store={store}", "skill_sd.summarizer=none")
    tasks = core.train_tasks(run.cfg, 0)
    skills = skill_sd.select_skills(run, run.state, tasks, acfg)
    assert all(s is not None and MARKER in s.text() for s in skills.values())
    text = {t: s.text() for t, s in skills.items()}
    episodes = core.rollout(run, core.model_agent(run), tasks, run.cfg.group_size)
    tok = run.tokenizer
    teacher = skill_sd.teacher_prompts(run, episodes, text)
    students = [s for ep in episodes for s in ep.samples(chain=False)]
    assert len(teacher) == len(students) > 0
    for t_ids, s in zip(teacher, students, strict=True):
        assert MARKER in tok.decode(t_ids)
        assert MARKER not in tok.decode(s.prompt_ids)
    # the teacher scores exactly the student's tokens: its prompt is the student's with the skill inserted after the
    # last observation, right before the reply
    for t_ids, s in zip(teacher, students, strict=True):
        head, sep, tail = tok.decode(t_ids).partition("\n\n" + PRIVILEGED_HEADER + "\n")
        assert sep and head + tail[tail.index("<|im_end|>"):] == tok.decode(s.prompt_ids)
    run.state.skills.close()


def test_ablation_puts_the_skill_in_the_students_prompt(tiny_dir: str, tmp_path: Path) -> None:
    store = tmp_path / "seed.sqlite"
    _seed_store(store, "Sokoban-6x6-1-v0", range(4))
    run, acfg = _run(tiny_dir, tmp_path / "run", f"skill_sd.store={store}", "skill_sd.skill_in=student",
                     "skill_sd.summarizer=none")
    metrics = skill_sd.iteration(run, acfg, run.state)
    assert metrics["skills/tasks_with_skill"] == 1.0
    assert "sdl" not in metrics  # no distillation term in the ablation
    run.state.skills.close()


def test_ucb_statistics_follow_the_episodes(tiny_dir: str, tmp_path: Path) -> None:
    store = tmp_path / "seed.sqlite"
    _seed_store(store, "Sokoban-6x6-1-v0", range(2))
    run, acfg = _run(tiny_dir, tmp_path / "run", f"skill_sd.store={store}", "skill_sd.summarizer=none",
                     "skill_sd.lmbda=0.5")
    metrics = skill_sd.iteration(run, acfg, run.state)
    assert "sdl" in metrics and metrics["sdl"] >= 0
    with SkillStore(store) as s:
        used = {k.task_key: k.uses for k in s.list("sokoban")}
    # tasks 0 and 1, group_size rollouts each
    assert used == {task_key("Sokoban-6x6-1-v0", "train", t): run.cfg.group_size for t in range(2)}
    run.state.skills.close()


def test_summaries_fill_the_store_and_resume_restores_it(tiny_dir: str, tmp_path: Path) -> None:
    args = ["algo=skill_sd", "iterations=2", "checkpoint_every=1"]
    cfg, acfg = load_config(None, quick(tiny_dir, tmp_path, *args))
    run = train(cfg, acfg)
    state = run.state.skills
    state.writer.flush(timeout=60)
    n = len(state.store.list())
    assert n > 0  # every episode became (or refreshed) a skill
    ckpt = torch.load(tmp_path / "checkpoints" / "ckpt-000002" / "state.pt", weights_only=False)
    assert ckpt["algo_state"]["skills"]["sqlite"][:16] == b"SQLite format 3\x00"
    state.close()
    # resuming for one more iteration starts from the checkpoint's store
    cfg2, acfg2 = load_config(None, quick(tiny_dir, tmp_path, *args[:1], "iterations=3", "checkpoint_every=1"))
    run2 = train(cfg2, acfg2, resume=True)
    assert [m["iteration"] for m in read_metrics(tmp_path)][-1] == 3
    run2.state.skills.writer.flush(timeout=60)
    assert len(run2.state.skills.store.list()) >= n
    run2.state.skills.close()


def test_a_model_summarizer_runs_in_the_background_and_rejects_what_does_not_parse(tiny_dir: str,
                                                                                   tmp_path: Path) -> None:
    """summarizer=model: a real local model (the untrained tiny one) writes every summary on the writer's thread;
    its replies are not skill JSON, so each is rejected and nothing half-parsed reaches the store."""
    run, acfg = _run(tiny_dir, tmp_path, "skill_sd.summarizer=model", f"skill_sd.summarizer_model={tiny_dir}",
                     "skill_sd.summarizer_max_tokens=24")
    metrics = skill_sd.iteration(run, acfg, run.state)
    state = run.state.skills
    assert state.writer.flush(timeout=120) == 0  # skills written
    stats = state.writer.stats
    episodes = run.cfg.tasks_per_iter * run.cfg.group_size
    assert metrics["skills/tasks_with_skill"] == 0.0
    assert stats.submitted == episodes and stats.rejected == episodes and stats.written == stats.errors == 0
    assert state.summarizer.rejected == episodes and state.store.list() == []
    state.close()


def test_skills_of_similar_tasks_are_found_by_the_tasks_text(tiny_dir: str, tmp_path: Path) -> None:
    """A task with no skill of its own borrows the skill whose task text is closest to what the student read."""
    run, acfg = _run(tiny_dir, tmp_path / "run", "skill_sd.summarizer=none", "env=Household-v0")
    (first, second), store = core.train_tasks(run.cfg, 0)[:2], run.state.skills.store
    episodes = core.rollout(run, core.model_agent(run), [first, second], 1)
    texts = {ep.task_index: ep.task for ep in episodes}
    assert texts[first] != texts[second]
    for t in (first, second):  # filed under other tasks' keys, with these tasks' texts
        store.add(Skill("household", f"elsewhere:{t}", f"lesson {t}", "none", [f"step {t}"], task_text=texts[t]))
    picked = skill_sd.select_skills(run, run.state, texts, acfg)
    assert {t: s.success_analysis for t, s in picked.items()} == {t: f"lesson {t}" for t in (first, second)}
    run.state.skills.close()


def test_config_errors(tiny_dir: str, tmp_path: Path) -> None:
    # a value outside a field's choices: refused when the config is read, naming the field
    for bad, field in (("skill_sd.teacher=ema", "teacher"), ("skill_sd.skill_in=both", "skill_in"),
                       ("skill_sd.summarizer=gpt", "summarizer"), ("skill_sd.retriever=tfidf", "retriever")):
        with pytest.raises(ValueError, match=rf"skill_sd\.{field} must be one of"):
            load_config(None, quick(tiny_dir, tmp_path, "algo=skill_sd", bad))
    # fields that only make sense together: refused when the run is set up
    cfg, acfg = load_config(None, quick(tiny_dir, tmp_path, "algo=skill_sd", "skill_sd.summarizer=model"))
    run = setup(cfg)
    with pytest.raises(ValueError, match=r"skill_sd\.summarizer_model"):
        skill_sd.setup(run, acfg)
