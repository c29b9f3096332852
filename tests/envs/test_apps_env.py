"""Apps-v0 end to end: the contract, the expert through the sandbox, both action formats, restore, bad input."""

from __future__ import annotations

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env

import distillgym  # noqa: F401
from distillgym.envs.apps import AppsEnv
from distillgym.envs.apps.actions import extract_code, tool_call_to_code
from distillgym.envs.apps.tasks import TEMPLATES


@pytest.fixture(scope="module")
def env() -> AppsEnv:
    e = AppsEnv(templates="all")
    yield e
    e.close()


def test_check_env() -> None:
    e = gym.make("distillgym/Apps-v0")
    check_env(e.unwrapped, skip_render_check=True)
    obs, info = e.reset(seed=0)
    assert obs.startswith("Task: ") and info["task"].startswith("You are an AI assistant")
    assert info["admissible_actions"] is None and "apis." in info["privileged"]["solution"]
    e.close()


@pytest.mark.parametrize("level", [1, 2, 3])
def test_expert_solves_through_the_sandbox(env: AppsEnv, level: int) -> None:
    """The ground-truth program, sent as the agent's action, succeeds in the real env (sandboxed worker)."""
    names = sorted(n for n, t in TEMPLATES.items() if t.difficulty == level)
    for k, name in enumerate(names):
        obs, info = env.reset(seed=k, options={"template": name})
        action = info["privileged"]["expert_action"]
        obs, reward, terminated, truncated, info = env.step(action)
        assert terminated and info["success"] and reward == 1.0, (name, obs, info["apps"].get("failures"))
        assert "Task marked complete." in obs


def test_wrong_work_fails_and_says_nothing_of_why(env: AppsEnv) -> None:
    obs, info = env.reset(seed=1, options={"template": "send_money"})
    obs, reward, terminated, _, info = env.step("apis.supervisor.complete_task()")
    assert terminated and not info["success"] and reward == 0.0
    assert any(f.startswith("missing") for f in info["apps"]["failures"])
    assert "missing" not in obs  # the grade is for the trainer, not a hint to the agent


def test_multi_cell_episode_keeps_variables_and_state(env: AppsEnv) -> None:
    env.reset(seed=2, options={"template": "create_note"})
    obs, *_ = env.step("n = apis.notes.create_note(title='scratch', content='a')\nprint(n['note_id'] > 0)")
    assert obs.strip() == "True"
    obs, *_ = env.step("print(apis.notes.show_note(note_id=n['note_id'])['content'])")
    assert obs.strip() == "a"
    assert any(x["title"] == "scratch" for x in env.world["notes"]["notes"])
    assert env.expert_action() is None  # the world changed: the program from the start no longer applies


def test_snapshot_restore_rebuilds_variables(env: AppsEnv) -> None:
    env.reset(seed=3, options={"template": "count_unread"})
    env.step("x = 41")
    snap = env.snapshot()
    first = env.step("x = x + 1\nprint(x)")
    env.step("x = 100")
    env.restore(snap)
    second = env.step("x = x + 1\nprint(x)")
    assert first[0] == second[0] == "42"


def test_json_tool_calls() -> None:
    e = AppsEnv(action_format="json", templates="all")
    obs, info = e.reset(seed=0, options={"template": "wallet_balance"})
    obs, _, _, _, info = e.step('<tool_call>{"name": "payments.show_balance", "arguments": {}}</tool_call>')
    assert "balance" in obs and not info["invalid_action"]
    balance = e.world["payments"]["accounts"]
    assert balance
    obs, _, _, _, info = e.step('{"name": "payments.show_balance", "arguments": "{\\"nope\\": 1}"}')
    assert "nope" in obs  # the api names the bad argument
    obs, _, _, _, info = e.step("not json at all")
    assert info["invalid_action"] and obs.startswith("Invalid tool call")
    e.close()


@pytest.mark.parametrize(
    "text",
    ['{"name": "os.system", "arguments": {"command": "ls"}}', '{"name": "mail.__class__", "arguments": {}}',
     '{"name": "mail.x", "arguments": {"__import__": 1}}', '{"name": "mail", "arguments": {}}', "[1, 2]", "{"],
)
def test_tool_calls_cannot_smuggle_code(text: str) -> None:
    code = tool_call_to_code(text)
    assert code is None or code.startswith("print(apis.os.system(")  # a name is only ever an attribute lookup


def test_code_extraction() -> None:
    assert extract_code("<action>print(1)</action>") == "print(1)"
    assert extract_code("Let me look.\n```python\nx = 1\nprint(x)\n```\nDone.") == "x = 1\nprint(x)"
    assert extract_code("<action>```python\n  print(2)\n```</action>") == "print(2)"
    assert extract_code("   ") is None and extract_code(None) is None and extract_code("x" * 100_000) is None


def test_agent_code_errors_and_attacks_keep_the_episode_going(env: AppsEnv) -> None:
    env.reset(seed=4, options={"template": "count_files"})
    obs, reward, terminated, truncated, info = env.step("import os\nprint(os.listdir('/'))")
    assert "not allowed" in obs and not terminated and not info["invalid_action"]
    obs, *_ = env.step("apis.contacts.show_contact(contact_id=10**6)")
    assert "No contact with id" in obs
    obs, *_ = env.step("while True:\n    pass")
    assert "stopped" in obs.lower() or "time" in obs.lower()
    obs, reward, terminated, truncated, info = env.step(info["privileged"]["solution"])
    assert terminated and info["success"]


def test_bad_options_name_the_field() -> None:
    with pytest.raises(ValueError, match="difficulty"):
        AppsEnv(difficulty=4)
    with pytest.raises(ValueError, match="action_format"):
        AppsEnv(action_format="yaml")
    with pytest.raises(ValueError, match="templates"):
        AppsEnv(templates="validation")
    with pytest.raises(ValueError, match="unknown task template"):
        AppsEnv(templates=["no_such_task"])
    with pytest.raises(ValueError, match="sandbox limit"):
        AppsEnv(limits={"cpu_seconds": 1})


def test_splits_use_disjoint_templates() -> None:
    train, test = AppsEnv(split="train"), AppsEnv(split="test")
    assert not set(train.template_names()) & set(test.template_names())
    for seed in range(10):
        train.reset(seed=seed)
        test.reset(seed=seed)
        assert TEMPLATES[train.task.template].pool == "train" and TEMPLATES[test.task.template].pool == "test"
    train.close()
    test.close()
