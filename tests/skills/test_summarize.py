"""Summarizers: reply parsing, the expert summarizer on real episodes, the LLM summarizer, the async writer."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from distillgym.agents.generation import Completion, SamplingParams
from distillgym.agents.policies import ExpertAgent, RandomAgent
from distillgym.agents.rollout import collect
from distillgym.skills import (
    AsyncSummarizer,
    ExpertSummarizer,
    LLMSummarizer,
    Skill,
    SkillStore,
    family_of,
    parse_skill_json,
    task_key_of,
)
from distillgym.skills.summarize import compress_steps
from distillgym.types import Episode, Turn

GOOD = {"success_analysis": "a", "mistake_analysis": "b", "golden_workflow": ["x", "y"]}
BODY = '{"success_analysis": "a", "mistake_analysis": "b", "golden_workflow": ["x", "y"]}'

REPLIES: list[tuple[str, Any, dict[str, Any] | None]] = [
    ("valid", BODY, GOOD),
    ("fenced", f"Here it is:\n```json\n{BODY}\n```\nDone.", GOOD),
    ("fenced no lang", f"```\n{BODY}\n```", GOOD),
    ("prose around", f"Sure! {BODY} Hope this helps.", GOOD),
    ("trailing commas", '{"success_analysis": "a", "mistake_analysis": "b", "golden_workflow": ["x", "y",],}', GOOD),
    ("single quotes", "{'success_analysis': 'a', 'mistake_analysis': 'b', 'golden_workflow': ['x', 'y']}", GOOD),
    (
        "single quotes with quotes inside",
        "{'success_analysis': 'it\\'s \"fine\"', 'mistake_analysis': 'b', 'golden_workflow': ['x']}",
        {"success_analysis": 'it\'s "fine"', "mistake_analysis": "b", "golden_workflow": ["x"]},
    ),
    ("missing closing brace", BODY[:-1], GOOD),
    ("missing closing brace, trailing comma", BODY[:-1] + ",\n", GOOD),
    ("truncated in a string", BODY[:-5], None),
    ("truncated in the list", BODY[:-2], None),
    ("truncated after a key", '{"success_analysis": "a", "mistake_analysis":', None),
    ("truncated before the last field", '{"success_analysis": "a", "mistake_analysis": "b",', None),
    ("missing field", '{"success_analysis": "a", "mistake_analysis": "b"}', None),
    ("analysis not a string", '{"success_analysis": 3, "mistake_analysis": "b", "golden_workflow": ["x"]}', None),
    ("workflow of numbers", '{"success_analysis": "a", "mistake_analysis": "b", "golden_workflow": [1, 2]}', None),
    ("workflow an object", '{"success_analysis": "a", "mistake_analysis": "b", "golden_workflow": {"1": "x"}}', None),
    ("analysis null", '{"success_analysis": null, "mistake_analysis": "b", "golden_workflow": ["x"]}', None),
    (
        "numbered workflow string",
        '{"success_analysis": "a", "mistake_analysis": "b", "golden_workflow": "1. x\\n2. y"}',
        GOOD,
    ),
    (
        "numbered workflow list",
        '{"success_analysis": " a ", "mistake_analysis": "b", "golden_workflow": ["1. x", "Step 2: y", ""]}',
        GOOD,
    ),
    ("nested under a key", f'{{"skill": {BODY}}}', GOOD),
    ("braces inside strings", BODY.replace('"a"', '"use {x} then }"'), {**GOOD, "success_analysis": "use {x} then }"}),
    ("an example before the answer", f'Format: {{"field": 1}}. Answer: {BODY}', GOOD),
    ("all empty", '{"success_analysis": "", "mistake_analysis": "", "golden_workflow": []}', None),
    ("a list", f"[{BODY}]", GOOD),  # the object inside is found
    ("a list of strings", '["x", "y"]', None),
    ("not JSON", "I could not analyse this episode.", None),
    ("broken JSON", '{"success_analysis": "a" "mistake_analysis": "b", "golden_workflow": ["x"]}', None),
    ("empty", "", None),
    ("none", None, None),
]


@pytest.mark.parametrize(("reply", "expected"), [(r, e) for _, r, e in REPLIES], ids=[n for n, _, _ in REPLIES])
def test_parse_skill_json(reply: Any, expected: dict[str, Any] | None) -> None:
    assert parse_skill_json(reply) == expected


def test_helpers() -> None:
    assert compress_steps(["Up", "Up", "Up", "Left", "Up"]) == ["Up x3", "Left", "Up"]
    assert compress_steps([str(i) for i in range(10)], max_steps=4) == ["0", "1", "2", "... (7 more steps)"]
    assert family_of("distillgym/Sokoban-6x6-1-v0") == "sokoban"
    assert family_of("Apps-JSON-v0") == "apps"


# --------------------------------------------------------------------------------------------- expert


def sokoban_episodes() -> tuple[Episode, Episode]:
    env = "distillgym/Sokoban-6x6-1-v0"
    good = collect(ExpertAgent(), env, [2], split="train", progress=False)[0]
    bad = collect(RandomAgent(), env, [2], split="train", progress=False)[0]  # random fails task 2 (seed 0)
    return good, bad


def test_expert_summarizer_on_sokoban() -> None:
    good, bad = sokoban_episodes()
    assert good.success and not bad.success
    summ = ExpertSummarizer()

    s = summ.summarize(good, task_key_of(good))
    assert s is not None
    assert (s.task_family, s.task_key) == ("sokoban", "distillgym/Sokoban-6x6-1-v0:train:2")
    assert s.success_analysis.startswith("Solved in")
    assert f"{good.num_steps} of {good.num_steps} actions matched" in s.success_analysis
    assert s.mistake_analysis.startswith("None")
    assert s.golden_workflow == compress_steps(good.privileged["expert_plan"])
    assert s.source_episodes and "expert" in s.source_episodes[0]

    f = summ.summarize(bad, task_key_of(bad))
    assert f is not None
    t, turn = next((t, tu) for t, tu in enumerate(bad.turns) if tu.action != tu.info["privileged"]["expert_action"])
    expert = turn.info["privileged"]["expert_action"]
    assert f"First deviation at turn {t + 1}: the agent did {turn.action!r}; the expert would do {expert!r}" in (
        f.mistake_analysis
    )
    assert f.success_analysis.startswith("Not solved after")
    assert f.golden_workflow == s.golden_workflow  # the expert's plan from the start
    assert "Workflow:\n1." in f.text()


def test_expert_summarizer_on_household() -> None:
    ep = collect(ExpertAgent(), "distillgym/Household-v0", [0], split="train", progress=False)[0]
    s = ExpertSummarizer().summarize(ep, task_key_of(ep))
    assert s is not None and s.task_family == "household"
    assert s.golden_workflow == ep.privileged["expert_plan"]  # no repeats to compress in this plan
    assert ep.turns[0].action in s.success_analysis


def test_expert_summarizer_without_expert_info() -> None:
    turns = [Turn("o", "Up", 0.0), Turn("o", "Up", 0.0), Turn("o", "bad", 0.0, invalid_action=True),
             Turn("o", "Left", 1.0, terminated=True)]
    ep = Episode("distillgym/Sokoban-v0", 0, 0, "train", "t", "o", turns=turns, success=True)
    s = ExpertSummarizer().summarize(ep, "k")
    assert s is not None and s.golden_workflow == ["Up x2", "Left"]  # own valid actions
    assert "1 invalid action(s), first at turn 3: 'bad'" in s.mistake_analysis
    ep.success = False
    assert ExpertSummarizer().summarize(ep, "k") is None  # nothing reliable to teach
    assert ExpertSummarizer().summarize(Episode("x", 0, 0, "train", "t", "o"), "k") is None


# ------------------------------------------------------------------------------------------------- LLM


def test_llm_summarizer_parses_and_rejects(tmp_path: Path) -> None:
    good, _ = sokoban_episodes()
    prompts: list[str] = []

    def fake(prompt: str) -> str:
        prompts.append(prompt)
        return f"```json\n{BODY}\n```"

    s = LLMSummarizer(fake).summarize(good, "k")
    assert s is not None and s.golden_workflow == ["x", "y"] and s.task_family == "sokoban"
    assert good.task.strip()[:50] in prompts[0] and "Reference solution" in prompts[0]

    garbage = LLMSummarizer(lambda p: '{"success_analysis": "half', max_chars=500)
    assert garbage.summarize(good, "k") is None and garbage.rejected == 1
    assert len(garbage.prompt(good)) < 2000
    with AsyncSummarizer(garbage, tmp_path / "s.db") as summ:
        for _ in range(3):
            summ.submit(good, "k")
        assert summ.flush(timeout=30) == 0
        assert summ.stats.rejected == 3 and summ.stats["written"] == 0
    with SkillStore(tmp_path / "s.db") as store:
        assert store.list() == []


class FakeTokenizer:
    chat_template = None

    def encode(self, text: str) -> list[int]:
        return [ord(c) % 256 for c in text[:20]]


class FakeBackend:
    tokenizer = FakeTokenizer()

    def __init__(self) -> None:
        self.calls: list[tuple[list[list[int]], SamplingParams]] = []

    def generate(self, prompts: list[list[int]], params: SamplingParams) -> list[Completion]:
        self.calls.append((prompts, params))
        return [Completion(ids=[1], logprobs=[0.0], text=BODY, finish_reason="stop") for _ in prompts]


def test_llm_summarizer_from_backend() -> None:
    good, _ = sokoban_episodes()
    backend = FakeBackend()
    s = LLMSummarizer.from_backend(backend).summarize(good, "k")
    assert s is not None and s.success_analysis == "a"
    (prompts, params) = backend.calls[0]
    assert len(prompts) == 1 and prompts[0] and params.temperature == 0.0


# ----------------------------------------------------------------------------------------------- async


class Blocking:
    """A slow summarizer: each call waits for `release`; `started` is set when the first call begins."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        self.calls = 0

    def summarize(self, episode: Episode, task_key: str) -> Skill | None:
        self.started.set()
        assert self.release.wait(30)
        self.calls += 1
        if task_key == "boom":
            raise RuntimeError("summarizer failure")
        return Skill("sokoban", task_key, f"lesson {task_key}", "none", [task_key])


def ep() -> Episode:
    return Episode("distillgym/Sokoban-v0", 0, 0, "train", "t", "o", turns=[Turn("o", "Up")])


def test_async_submit_never_blocks_and_flush_writes_all(tmp_path: Path) -> None:
    slow = Blocking()
    with AsyncSummarizer(slow, tmp_path / "s.db") as summ:
        for i in range(50):
            summ.submit(ep(), f"k:{i}")
        # every submit returned while the summarizer had not finished even the first episode
        assert slow.calls == 0 and summ.stats.submitted == 50 and summ.stats.written == 0
        assert summ.pending() == 50
        slow.release.set()
        assert summ.flush(timeout=60) == 50
        assert summ.stats.as_dict() == {"submitted": 50, "written": 50, "rejected": 0, "dropped": 0, "errors": 0}
        assert summ.flush() == 0  # nothing new since the last flush
    with SkillStore(tmp_path / "s.db") as store:
        assert [s.task_key for s in store.list()] == [f"k:{i}" for i in range(50)]  # in submission order


def test_async_drops_oldest_when_full_and_survives_errors(tmp_path: Path) -> None:
    slow = Blocking()
    summ = AsyncSummarizer(slow, tmp_path / "s.db", max_queue=3)
    summ.submit(ep(), "k:0")
    assert slow.started.wait(30)  # the worker holds k:0; the queue is empty
    for key in ("k:1", "boom", "k:3", "k:4", "k:5"):
        summ.submit(ep(), key)
    assert summ.stats.dropped == 2  # k:1 and boom went
    slow.release.set()
    assert summ.flush(timeout=60) == 4
    summ.submit(ep(), "boom")
    summ.flush(timeout=60)
    assert summ.stats.errors == 1 and summ.stats.written == 4
    summ.close()
    with pytest.raises(RuntimeError, match="closed"):
        summ.submit(ep(), "k:9")
    with SkillStore(tmp_path / "s.db") as store:
        assert [s.task_key for s in store.list()] == ["k:0", "k:3", "k:4", "k:5"]


class ChatTokenizer(FakeTokenizer):
    chat_template = "{{ messages }}"

    def apply_chat_template(self, messages: list[dict[str, str]], **kw: Any) -> dict[str, list[int]]:
        assert messages[0]["role"] == "user" and kw["add_generation_prompt"] and kw["tokenize"]
        return {"input_ids": [7, 8, 9]}  # newer transformers return a BatchEncoding


def test_llm_summarizer_from_backend_uses_the_chat_template() -> None:
    good, _ = sokoban_episodes()
    backend = FakeBackend()
    summ = LLMSummarizer.from_backend(backend, ChatTokenizer(), SamplingParams(temperature=0.7, max_tokens=99))
    assert summ.summarize(good, "k") is not None
    prompts, params = backend.calls[0]
    assert prompts == [[7, 8, 9]] and params.max_tokens == 99


def test_async_reports_a_store_it_cannot_open(tmp_path: Path) -> None:
    with pytest.raises(sqlite3.OperationalError):
        AsyncSummarizer(Blocking(), tmp_path)  # a directory, not a database file


def test_code_steps_keep_their_lines() -> None:
    code = "for x in items:\n    send(x)\n"
    assert compress_steps(["look", "look", code, code]) == ["look x2", code.rstrip(), code.rstrip()]
    s = Skill("apps", "apps:t", "ok", "none", ["open the app", code])
    assert s.text().endswith("Workflow:\n1. open the app\n2. for x in items:\n       send(x)")
