"""The in-context cascade: the student acts when its N samples agree, the teacher otherwise; demonstrations in the
student's prompt; every step's tokens and cost; break-even; calibration; specs that name their bad field."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")

from distillgym.agents.cascade import (
    CascadeAgent,
    CascadeConfig,
    CascadeSpec,
    Price,
    break_even,
    calibrate,
    cascade_costs,
    config_from,
    demo_cost,
)
from distillgym.agents.generation import Completion, SamplingParams, TransformersBackend
from distillgym.agents.policies import ExpertAgent, ModelAgent
from distillgym.agents.rollout import collect
from distillgym.skills.demos import DemoStore


class Scripted:
    """A generation backend that writes a scripted reply for each sample (the j-th sample of a prompt gets
    `replies(prompt_text, j)`), with the tiny tokenizer's ids: the cascade's decisions made exact."""

    def __init__(self, tokenizer: Any, replies: Any) -> None:
        self.tokenizer, self.replies = tokenizer, replies
        self.calls: list[int] = []
        self.prompts: list[list[int]] = []

    def generate(self, prompts: Sequence[Sequence[int]], params: SamplingParams) -> list[Completion]:
        self.calls.append(len(prompts))
        self.prompts += [list(p) for p in prompts]
        out, seen = [], {}
        for p in prompts:
            key = tuple(p)
            j = seen[key] = seen.get(key, -1) + 1
            text = self.replies(self.tokenizer.decode(list(p)), j)
            ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
            out.append(Completion(ids, [0.0] * len(ids), text, "stop"))
        return out


class CountingExpert(ExpertAgent):
    def __init__(self) -> None:
        self.steps = 0

    def act(self, requests: Any, seed: int) -> Any:
        self.steps += len(requests)
        return super().act(requests, seed)


@pytest.fixture(scope="module")
def store(household_demos: DemoStore) -> DemoStore:
    return household_demos




def test_agreement_lets_the_student_act(tiny_model: tuple, store: DemoStore) -> None:
    _, tok = tiny_model
    backend = Scripted(tok, lambda text, j: " <action>LOOK </action>" if j else "<action>look</action>")
    teacher = CountingExpert()
    agent = CascadeAgent(ModelAgent(backend), teacher, store, CascadeConfig(k=2, n=3))
    eps = collect(agent, "Household-v0", 2, num_envs=2, progress=False, env_kwargs={"max_steps": 3})
    assert teacher.steps == 0  # the three samples agree after normalization: the student acted every step
    for turn in (t for e in eps for t in e.turns):
        acc = turn.info["cascade"]
        assert acc["acted"] == "student" and acc["agree"] and turn.action == "look"
        assert acc["tokens"]["teacher"] == [0, 0]
    assert backend.calls == [6, 6, 6]  # one generation call per step: 2 envs x 3 samples


def test_disagreement_hands_the_step_to_the_teacher(tiny_model: tuple, store: DemoStore) -> None:
    _, tok = tiny_model
    backend = Scripted(tok, lambda text, j: ["<action>look</action>", "<action>inventory</action>", "hmm"][j])
    teacher = CountingExpert()
    agent = CascadeAgent(ModelAgent(backend), teacher, store, CascadeConfig(k=1, n=3))
    eps = collect(agent, "Household-v0", 2, num_envs=2, progress=False)
    expert = collect(ExpertAgent(), "Household-v0", 2, num_envs=2, progress=False)
    assert [t.action for e in eps for t in e.turns] == [t.action for e in expert for t in e.turns]
    assert all(e.success for e in eps)
    assert teacher.steps == sum(e.num_steps for e in eps)
    acc = eps[0].turns[0].info["cascade"]
    assert acc["acted"] == "teacher" and not acc["agree"]
    assert acc["samples"] == ["look", "inventory", "hmm"]  # parsed where a reply names an action
    assert acc["tokens"]["student"][1] > 0 and acc["tokens"]["teacher"][0] > 0


def test_invalid_replies_never_count_as_agreement(tiny_model: tuple) -> None:
    _, tok = tiny_model
    agent = CascadeAgent(ModelAgent(Scripted(tok, lambda text, j: "   ")), CountingExpert(), None,
                         CascadeConfig(k=0, n=2))
    ep = collect(agent, "Household-v0", 1, progress=False, env_kwargs={"max_steps": 2})[0]
    assert all(t.info["cascade"]["acted"] == "teacher" for t in ep.turns)


def test_demonstrations_reach_the_student_not_the_priced_teacher(tiny_model: tuple, store: DemoStore) -> None:
    _, tok = tiny_model
    backend = Scripted(tok, lambda text, j: f"<action>{j}</action>")  # never agree: the teacher is priced too
    agent = CascadeAgent(ModelAgent(backend), ExpertAgent(), store, CascadeConfig(k=2, n=2, history=4))
    ep = collect(agent, "Household-v0", 1, progress=False, env_kwargs={"max_steps": 2})[0]
    shown = tok.decode(backend.prompts[0])
    assert "Examples of steps from solved tasks" in shown and "Example 2. Task:" in shown
    plain = ModelAgent(backend, history=4)
    acc = ep.turns[0].info["cascade"]
    # hand count: the student's prompt once (its N samples share it), both samples' outputs
    assert acc["tokens"]["student"] == [len(backend.prompts[0]), 2 * len(tok("<action>0</action>",
                                                                             add_special_tokens=False)["input_ids"])]
    import gymnasium as gym

    from distillgym.agents.policies import ActRequest

    env = gym.make("distillgym/Household-v0")
    obs, info = env.reset(options={"split": "test", "task_index": 0})
    req = ActRequest(env=env.unwrapped, family="household", task=info["task"], observation=obs, info=info,
                     protocol=env.unwrapped.agent_protocol)
    assert "Examples of steps" not in tok.decode(plain.prompt_ids(req))
    reply = f"<action>{ep.turns[0].action}</action>"
    assert acc["tokens"]["teacher"] == [len(plain.prompt_ids(req)),
                                        len(tok(reply, add_special_tokens=False)["input_ids"]) + 1]
    price_s, price_t = CascadeConfig().student_price, CascadeConfig().teacher_price
    s, t = acc["tokens"]["student"], acc["tokens"]["teacher"]
    assert acc["cost"] == pytest.approx((s[0] * price_s.input + s[1] * price_s.output
                                         + t[0] * price_t.input + t[1] * price_t.output) / 1e6)
    env.close()


def test_costs_break_even_and_demo_cost(tiny_model: tuple, store: DemoStore) -> None:
    model, tok = tiny_model
    backend = TransformersBackend(model, tok)
    cfg = CascadeConfig(k=1, n=2, max_tokens=8)
    teacher_eps = collect(CascadeAgent(ModelAgent(backend), ExpertAgent(), store,
                                       CascadeConfig(mode="teacher")), "Household-v0", 2, progress=False)
    student_eps = collect(CascadeAgent(ModelAgent(backend), ExpertAgent(), store,
                                       CascadeConfig(mode="student", k=1, max_tokens=8)), "Household-v0", 2,
                          progress=False, env_kwargs={"max_steps": 3})
    t, s = cascade_costs(teacher_eps), cascade_costs(student_eps)
    assert t["teacher_step_frac"] == 1.0 and s["teacher_step_frac"] == 0.0 and t["success"] == 1.0
    assert s["student_input_tokens"] > 0 and s["teacher_input_tokens"] == 0
    assert t["cost_per_episode"] == pytest.approx(
        sum(x.info["cascade"]["cost"] for e in teacher_eps for x in e.turns) / 2)
    assert break_even(10.0, 0.05, 0.01) == pytest.approx(250.0)
    assert break_even(10.0, 0.01, 0.02) == float("inf")
    store_cost = demo_cost(store, cfg, "household")
    assert store_cost["usd"] == pytest.approx(cfg.teacher_price.cost(store_cost["input_tokens"],
                                                                     store_cost["output_tokens"]))
    with pytest.raises(ValueError, match="without cascade accounting"):
        cascade_costs(collect(ExpertAgent(), "Household-v0", 1, progress=False))


def test_calibration_picks_the_cheapest_point_that_matches_the_teacher(tiny_model: tuple, store: DemoStore) -> None:
    _, tok = tiny_model
    # n = 1 always "agrees" and acts "look" (fails); n = 2 never agrees, so the teacher plays (wins)
    backend = Scripted(tok, lambda text, j: f"<action>{'look' if j == 0 else 'inventory'}</action>")
    out = calibrate(ModelAgent(backend), ExpertAgent(), store, "Household-v0", [20, 21], ks=(1,), ns=(1, 2),
                    temperatures=(0.5,), base=CascadeConfig(max_tokens=8), num_envs=2)
    rows = {r["n"]: r for r in out["rows"]}
    assert rows[1]["success"] == 0.0 and rows[2]["success"] == 1.0 == out["teacher"]["success"]
    assert rows[1]["cost_per_episode"] < rows[2]["cost_per_episode"]
    assert out["chosen"]["n"] == 2 and out["met_teacher"]


def test_config_and_spec_errors_name_the_field(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"cascade\.n"):
        CascadeConfig(n=0)
    with pytest.raises(ValueError, match=r"cascade\.mode"):
        CascadeConfig(mode="both")
    with pytest.raises(ValueError, match=r"unknown cascade config field\(s\) \['samples'\]"):
        config_from({"samples": 3})
    assert config_from({"teacher_price": {"input": 1, "output": 2}}).teacher_price == Price(1.0, 2.0)
    with pytest.raises(ValueError, match="needs 'student'"):
        CascadeSpec.from_dict({"teacher": "expert"})
    bad = tmp_path / "c.json"
    bad.write_text("{nope")
    with pytest.raises(ValueError, match="not valid JSON"):
        CascadeSpec.load(bad)
    bad.write_text(json.dumps({"student": "tiny", "cascade": {"k": -1}}))
    with pytest.raises(ValueError, match=r"cascade\.k"):
        CascadeSpec.load(bad)
    with pytest.raises(ValueError, match="demonstration store"):
        CascadeAgent(ModelAgent(Scripted(None, None)), ExpertAgent(), None, CascadeConfig(k=2))


def test_cli_builds_demonstrations_and_evaluates_a_cascade(tmp_path: Path, tiny_model: tuple) -> None:
    from typer.testing import CliRunner

    from distillgym.cli import app

    model, tok = tiny_model
    model.save_pretrained(tmp_path / "student")
    tok.save_pretrained(tmp_path / "student")
    db = tmp_path / "demos.db"
    runner = CliRunner()
    built = runner.invoke(app, ["demos", "build", "Household-v0", "--episodes", "3", "--out", str(db),
                                "--student", str(tmp_path / "student"), "--num-envs", "3"])
    assert built.exit_code == 0, built.output
    assert "3/3 episodes solved" in built.output
    with DemoStore(db) as store:
        cost = store.cost("household")
    assert cost["episodes"] == 3 and cost["input_tokens"] > 0 and cost["output_tokens"] > 0
    shown = runner.invoke(app, ["demos", "show", str(db)])
    assert shown.exit_code == 0 and "household: 3 episodes" in shown.output
    spec = tmp_path / "cascade.json"
    spec.write_text(json.dumps({"student": str(tmp_path / "student"), "teacher": "expert", "demos": str(db),
                                "cascade": {"k": 1, "n": 2, "max_tokens": 8}}))
    out = runner.invoke(app, ["eval", "-a", f"cascade:{spec}", "-e", "Household-v0", "--episodes", "2",
                              "--out", str(tmp_path / "eval"), "--no-progress", "--export-jsonl"])
    assert out.exit_code == 0, out.output
    turns = [json.loads(line)["turns"] for line in (tmp_path / "eval" / "episodes.jsonl").read_text().splitlines()]
    assert all("cascade" in t["info"] for ep in turns for t in ep)
    spec.write_text(json.dumps({"student": str(tmp_path / "student"), "cascade": {"samples": 2}}))
    bad = runner.invoke(app, ["eval", "-a", f"cascade:{spec}", "-e", "Household-v0", "--episodes", "1",
                              "--out", str(tmp_path / "bad")])
    assert bad.exit_code != 0 and "samples" in bad.output
