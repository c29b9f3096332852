"""Prompts and action parsing: formats accepted, privileged text for teachers only, exact token splicing."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import pytest

from distillgym.agents.prompts import PRIVILEGED_HEADER, PastTurn, PromptBuilder, canonical_privileged, privileged_text
from distillgym.envs.core.protocol import DEFAULT_PROTOCOL, extract_action_text, protocol_of
from distillgym.envs.game2048 import Game2048Env
from distillgym.envs.household.env import ALFRED_PROTOCOL, HouseholdEnv
from distillgym.envs.sokoban import SokobanEnv

SOKOBAN = SokobanEnv.agent_protocol
G2048 = Game2048Env.agent_protocol


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("<action>Left</action>", "Left"),
        ("I think up is bad. <action>up</action> wait <action>Down</action>", "Down"),
        ("thought: the box is right of me\nmove: Right", "Right"),
        ("Thought: go around. Action: [down]", "Down"),
        ("Up", "Up"),
        ("  left.  ", "Left"),
        ("<action>Right", "Right"),  # generation stopped before the closing tag
        ("thought: Up: -0.\n<action> -0. Then Up.\n<action>Down</action>", "Down"),  # a tag opened twice
        ("banana", None),
        ("<action>sideways</action>", None),
    ],
)
def test_directional_parser_accepts_natural_formats(reply: str, expected: str | None) -> None:
    assert SokobanEnv.agent_protocol.parse(reply) == expected
    assert Game2048Env.agent_protocol.parse(reply) == expected


def test_command_parser_for_text_families() -> None:
    parse = HouseholdEnv.agent_protocol.parse
    assert parse("thought: I need the apple\naction: take apple from table 1") == "take apple from table 1"
    assert parse("<action>go to sink 1</action>") == "go to sink 1"
    assert parse("<action>go to sink 1\n<action>open fridge 1</action>") == "open fridge 1"
    assert parse("open fridge 1") == "open fridge 1"
    assert parse("   ") is None
    # cut by the token limit inside the closing tag: the partial tag is not part of the command
    assert parse("<action>take soapbar 1 from shelf 1<") == "take soapbar 1 from shelf 1"
    assert parse("<action>go to shelf 1</act") == "go to shelf 1"
    assert parse("<action>x < y") == "x < y"
    assert extract_action_text("x" * 100000)  # long input is bounded, never an error


def test_each_family_declares_its_protocol_and_any_env_gets_the_default() -> None:
    """The protocol is the env class's (read through gymnasium's wrappers); ALFWorld-v0 speaks Household-v0's
    ALFRED grammar; an env that declares none gets the documented default."""
    assert protocol_of(gym.make("distillgym/Sokoban-v0")) is SOKOBAN and SOKOBAN.actions == ("Up", "Down", "Left",
                                                                                               "Right")
    assert protocol_of(gym.make("distillgym/Household-v0")) is ALFRED_PROTOCOL
    from distillgym.envs.alfworld.env import ALFWorldEnv

    assert ALFWorldEnv.agent_protocol is ALFRED_PROTOCOL
    assert protocol_of(gym.make("distillgym/Apps-v0")).parse("<action>print(1)</action>") == "print(1)"
    assert protocol_of(object()) is DEFAULT_PROTOCOL and DEFAULT_PROTOCOL.parse("<action>look</action>") == "look"


@pytest.fixture(scope="module")
def tokenizer(tiny_model: tuple) -> Any:
    return tiny_model[1]


def test_teacher_prompt_has_privileged_text_and_student_never(tokenizer: Any) -> None:
    env = gym.make("distillgym/Sokoban-6x6-2-v0")
    obs, info = env.reset(seed=3)
    plan = info["privileged"]["expert_plan"]
    builder = PromptBuilder(tokenizer, SOKOBAN)
    past = [PastTurn(obs, "<action>Up</action>", None)]
    student = tokenizer.decode(builder.prompt_ids(info["task"], past, obs))
    teacher = tokenizer.decode(builder.prompt_ids(info["task"], past, obs, privileged=info["privileged"]))
    plan_text = "The expert's plan from here: " + ", ".join(plan)
    block = canonical_privileged(info["privileged"])
    assert block.startswith(f"The expert's next action: {plan[0]}") and "solution" not in block.lower()
    assert (plan_text in block) == (len(plan) > 1)
    assert f"{PRIVILEGED_HEADER}\n{block}" in teacher and "Privileged" not in student
    # the block is the last thing before the reply: the teacher's prompt is the student's with it inserted there
    head, _, tail = teacher.partition(f"\n\n{PRIVILEGED_HEADER}\n{block}")
    assert head + tail == student and len(tail) < 40
    custom = tokenizer.decode(builder.prompt_ids(info["task"], [], obs, privileged="Skill: push boxes off walls."))
    assert "Skill: push boxes off walls." in custom
    text_msgs = builder.messages(info["task"], past, obs)
    assert all("Privileged" not in m["content"] for m in text_msgs)
    assert builder.messages(info["task"], past, obs, info["privileged"])[-1]["content"].endswith(block)
    # the placement before issue 16, kept as an option: every field, labelled, in the system message
    old = PromptBuilder(tokenizer, SOKOBAN, privileged_at="system")
    teacher = tokenizer.decode(old.prompt_ids(info["task"], past, obs, privileged=info["privileged"]))
    assert privileged_text(info["privileged"]) in teacher and "Privileged information" in teacher
    assert teacher.split("<|im_end|>", 1)[1] == student.split("<|im_end|>", 1)[1]
    # "action": the next action alone, as the reply writes it; a skill (no next action) as "end" places it
    act = PromptBuilder(tokenizer, SOKOBAN, privileged_at="action")
    hint = {"expert_action": "Left", "expert_plan": ["Left", "Up"], "solution": "Left, Up"}
    expected_hint = "The expert's next action: <action>Left</action>"
    assert act.last_user_text("obs", hint) == f"obs\n\n{PRIVILEGED_HEADER}\n{expected_hint}"
    assert act.last_user_text("obs", "Skill: x") == builder.last_user_text("obs", "Skill: x")
    assert act.last_user_text("obs", None) == "obs"
    with pytest.raises(ValueError, match="privileged_at"):
        PromptBuilder(tokenizer, SOKOBAN, privileged_at="middle")
    expected = "The expert's plan from here: Up, Left"
    assert privileged_text({"expert_plan": ["Up", "Left"], "expert_depth": 3}) == expected


def test_past_replies_are_spliced_as_exact_ids(tokenizer: Any) -> None:
    builder = PromptBuilder(tokenizer, SOKOBAN, history=None)
    # a reply tokenized character by character: re-tokenizing its text would merge these tokens
    reply_text = "<action>Left</action>"
    reply_ids = [tokenizer.convert_tokens_to_ids(tokenizer.tokenize(ch)[0]) for ch in reply_text]
    assert tokenizer(reply_text, add_special_tokens=False)["input_ids"] != reply_ids
    p1 = builder.prompt_ids("Task.", [], "obs one")
    p2 = builder.prompt_ids("Task.", [PastTurn("obs one", reply_text, reply_ids)], "obs two")
    assert p2[: len(p1) + len(reply_ids)] == p1 + reply_ids  # prompt_2 extends prompt_1 + completion_1 exactly
    env_part = tokenizer.decode(p2[len(p1) + len(reply_ids) :])
    assert env_part == "<|im_end|>\n<|im_start|>user\nobs two<|im_end|>\n<|im_start|>assistant\n"
    # a reply that ended with the end-of-turn token is not closed twice
    ended = [*reply_ids, tokenizer.eos_token_id]
    p3 = builder.prompt_ids("Task.", [PastTurn("obs one", reply_text, ended)], "obs two")
    assert tokenizer.decode(p3[len(p1) + len(ended) :]).startswith("\n<|im_start|>user\nobs two")


def test_history_window_bounds_the_prompt(tokenizer: Any) -> None:
    past = [PastTurn(f"board {k}", f"<action>Up</action>{k}", None) for k in range(6)]
    text = tokenizer.decode(PromptBuilder(tokenizer, G2048, history=2).prompt_ids("T", past, "now"))
    assert "board 4" in text and "board 5" in text and "board 3" not in text
    none = tokenizer.decode(PromptBuilder(tokenizer, G2048, history=0).prompt_ids("T", past, "now"))
    assert "board" not in none and none.endswith("now<|im_end|>\n<|im_start|>assistant\n")
    with pytest.raises(ValueError, match="history"):
        PromptBuilder(tokenizer, G2048, history=-1)
