"""Evaluation: Wilson intervals, metrics, exports that round-trip, and the `distillgym eval` command."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

import pytest
from typer.testing import CliRunner

from distillgym.cli import app
from distillgym.eval.evaluate import (
    EvalResult,
    UnknownAgentError,
    UnknownEnvError,
    check_agent_spec,
    compute_metrics,
    evaluate,
    resolve_env_ids,
    wilson_interval,
)
from distillgym.eval.export import TURN_FIELDS, from_dataset, read_jsonl, save_dataset, to_dataset, write_jsonl
from distillgym.eval.report import load_result, markdown_table, write_report
from distillgym.types import Episode, Turn
from tests.conftest import ALL_IDS

runner = CliRunner()


def turn(reward: float, *, invalid: bool = False, ids: list[int] | None = None, done: bool = False) -> Turn:
    return Turn(
        observation="obs", action="Up", reward=reward, terminated=done, invalid_action=invalid,
        prompt_ids=[1, 2, 3] if ids is not None else None, completion_ids=ids,
        logprobs=[-0.5 - 0.25 * k for k in range(len(ids))] if ids is not None else None,
        info={"reply": "move up"} if ids is not None else {},
    )


def hand_episodes() -> list[Episode]:
    """Three episodes: returns 10, -2, 4; steps 2, 3, 1; invalid turns 0, 2, 0; tokens 5, 0, 3; one success."""

    def ep(i: int, turns: list[Turn], success: bool) -> Episode:
        return Episode(
            env_id="distillgym/Sokoban-6x6-1-v0", task_index=i, task_seed=2**31 + i, split="test", task="Push.",
            initial_observation="#P#", turns=turns, success=success, privileged={"solution": ["Up", "Left"]},
            agent="m", group_id=i, meta={"rollout_seed": 0},
        )

    return [
        ep(0, [turn(-1.0, ids=[7, 8]), turn(11.0, ids=[9, 10, 11], done=True)], True),
        ep(1, [turn(-1.0, invalid=True), turn(-1.0, invalid=True), turn(0.0)], False),
        ep(2, [turn(4.0, ids=[4, 5, 6])], False),
    ]


# ----------------------------------------------------------------------------------------------------- metrics


@pytest.mark.parametrize(
    ("k", "n", "low", "high"),
    [(0, 10, 0.0, 0.277532800), (10, 10, 0.722467200, 1.0), (7, 10, 0.396778147, 0.892208733),
     (1, 2, 0.094531206, 0.905468794)],
)
def test_wilson_interval_matches_hand_computed_values(k: int, n: int, low: float, high: float) -> None:
    # hand values: roots p of (k/n - p)^2 = z^2 p (1 - p) / n with z = 1.959963984540054
    lo, hi = wilson_interval(k, n)
    assert lo == pytest.approx(low, abs=1e-6) and hi == pytest.approx(high, abs=1e-6)


def test_wilson_interval_edges() -> None:
    assert wilson_interval(0, 0) == (0.0, 1.0)
    for n in (1, 7, 20, 100, 1000):  # the rate is inside its own interval, to the last bit
        assert wilson_interval(n, n)[1] == 1.0 and wilson_interval(0, n)[0] == 0.0
    with pytest.raises(ValueError, match="successes"):
        wilson_interval(3, 2)
    with pytest.raises(ValueError, match="successes"):
        wilson_interval(-1, 2)


def test_metrics_equal_hand_computed_values() -> None:
    m = compute_metrics(hand_episodes(), wall_s=2.0)
    assert (m.agent, m.env_id, m.episodes, m.successes) == ("m", "distillgym/Sokoban-6x6-1-v0", 3, 1)
    assert m.success_rate == pytest.approx(1 / 3)
    assert (m.ci_low, m.ci_high) == wilson_interval(1, 3)
    assert m.mean_return == pytest.approx(4.0)  # (10 - 2 + 4) / 3
    assert m.std_return == pytest.approx(6.0)  # sqrt(((10-4)^2 + (-2-4)^2 + 0) / 2)
    assert m.mean_steps == pytest.approx(2.0)  # (2 + 3 + 1) / 3
    assert m.mean_tokens == pytest.approx(8 / 3)  # (5 + 0 + 3) / 3
    assert m.invalid_action_rate == pytest.approx(2 / 6)
    assert (m.wall_s, m.episodes_per_s) == (2.0, 1.5)
    single = compute_metrics(hand_episodes()[:1], agent="x", env_id="y")
    assert (single.agent, single.env_id, single.std_return, single.episodes_per_s) == ("x", "y", 0.0, 0.0)
    with pytest.raises(ValueError, match="at least one episode"):
        compute_metrics([])


def test_env_names_resolve_with_or_without_prefix_and_all() -> None:
    assert resolve_env_ids(["Sokoban-6x6-1-v0", "distillgym/2048-3x3-v0", "Sokoban-6x6-1-v0"]) == [
        "distillgym/Sokoban-6x6-1-v0",
        "distillgym/2048-3x3-v0",
    ]
    assert resolve_env_ids(["all"]) == ALL_IDS
    with pytest.raises(UnknownEnvError, match=r"unknown environment 'Chess-v0'.*distillgym/Sokoban-v0"):
        resolve_env_ids(["Chess-v0"])


def test_bad_agent_specs_fail_fast_with_what_exists(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for spec in ("expert", "random", "tiny"):
        check_agent_spec(spec)
    with pytest.raises(UnknownAgentError, match=r"no config\.json"):
        check_agent_spec(str(tmp_path))
    with pytest.raises(UnknownAgentError, match="'expert', 'random', 'tiny'"):
        check_agent_spec("./no/such/model/")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UnknownAgentError, match="not in the local Hugging Face cache"):
        check_agent_spec("no-such-org/no-such-model-xyz")
    with pytest.raises(UnknownAgentError):
        evaluate(["expert", "no-such-org/no-such-model-xyz"], ["Sokoban-6x6-1-v0"], 1, progress=False)


def test_every_agent_plays_the_same_seeded_tasks() -> None:
    result = evaluate(["expert", "random"], ["Sokoban-6x6-1-v0"], 4, num_envs=2, progress=False)
    expert, rand = (result.episodes[(a, "distillgym/Sokoban-6x6-1-v0")] for a in ("expert", "random"))
    assert [(e.task_index, e.task_seed, e.task) for e in expert] == [(e.task_index, e.task_seed, e.task) for e in rand]
    assert [e.task_index for e in expert] == [0, 1, 2, 3] and {e.split for e in expert} == {"test"}
    assert result.get("expert", "Sokoban-6x6-1-v0").success_rate == 1.0
    again = evaluate(["random"], ["Sokoban-6x6-1-v0"], 4, num_envs=2, progress=False)  # same seed, same run
    assert [e.to_json() for e in again.episodes[("random", "distillgym/Sokoban-6x6-1-v0")]] == [
        e.to_json() for e in rand
    ]


# ------------------------------------------------------------------------------------------------------ exports


def test_jsonl_round_trip(tmp_path: Path) -> None:
    eps = hand_episodes()
    path = write_jsonl(eps, tmp_path / "sub" / "episodes.jsonl")
    assert len(path.read_text().splitlines()) == 3
    assert read_jsonl(path) == eps
    (tmp_path / "bad.jsonl").write_text(eps[0].to_json() + "\n\n{not json\n")
    with pytest.raises(ValueError, match=r"bad\.jsonl:3"):
        read_jsonl(tmp_path / "bad.jsonl")


def test_dataset_rows_columns_and_round_trip(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    eps = hand_episodes()
    ds = to_dataset(eps)
    assert ds.num_rows == 3
    assert set(ds.column_names) == {
        "env_id", "task_index", "task_seed", "split", "task", "initial_observation", "success", "agent", "group_id",
        "total_reward", "num_steps", "num_completion_tokens", "privileged", "meta", "turns",
    }
    assert ds["num_completion_tokens"] == [5, 0, 3] and ds["total_reward"] == [10.0, -2.0, 4.0]
    assert [t["completion_ids"] for t in ds[0]["turns"]] == [[7, 8], [9, 10, 11]]
    assert ds[1]["turns"][0]["completion_ids"] is None
    assert from_dataset(ds) == eps
    # every Episode and Turn field has a column: a new field in distillgym.types must be added to the layout
    assert {f.name for f in fields(Episode)} <= set(ds.column_names)
    assert {f.name for f in fields(Turn)} == set(TURN_FIELDS) == set(ds.features["turns"].feature)
    save_dataset(eps, tmp_path / "ds")
    assert from_dataset(datasets.load_from_disk(str(tmp_path / "ds"))) == eps


# ------------------------------------------------------------------------------------------------- command line


def test_cli_eval_writes_the_report_and_the_expert_solves_sokoban(tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["eval", "--agent", "expert", "--agent", "random", "--env", "Sokoban-6x6-1-v0", "--env",
            "distillgym/2048-3x3-v0", "--episodes", "3", "--out", str(out), "--no-progress", "-o", "max_steps=40",
            "--export-jsonl", "--export-dataset"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    for name in ("result.json", "results.md", "results.png", "episodes.jsonl"):
        assert (out / name).is_file(), name
    assert (out / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = [line for line in result.output.splitlines() if line.startswith("| ") and "agent" not in line]
    assert len(rows) == 4 and {r.split("|")[1].strip() for r in rows} == {"expert", "random"}
    doc = json.loads((out / "result.json").read_text())
    assert doc["command"].startswith("distillgym eval --agent expert --agent random")
    assert doc["versions"]["distillgym"] and doc["config"]["episodes"] == 3
    assert doc["config"]["env_kwargs"] == {"max_steps": 40}
    loaded = load_result(out / "result.json")
    assert loaded.get("expert", "Sokoban-6x6-1-v0").success_rate == 1.0
    assert markdown_table(loaded) in (out / "results.md").read_text()
    assert len(read_jsonl(out / "episodes.jsonl")) == 12
    assert (out / "dataset").is_dir()


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--agent", "expert", "--env", "Chess-v0"], "unknown environment"),
     (["--agent", "./no/such/model/", "--env", "Sokoban-v0"], "unknown agent"),
     (["--agent", "no-such-org/no-such-model-xyz", "--env", "Sokoban-v0"], "not in the local Hugging Face cache")],
)
def test_cli_eval_rejects_unknown_names_clearly(args: list[str], message: str, tmp_path: Path) -> None:
    result = runner.invoke(app, ["eval", *args, "--out", str(tmp_path)], env={"HF_HUB_OFFLINE": "1"})
    assert result.exit_code != 0
    assert message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "result.json").exists()


# ----------------------------------------------------------------------------------------------- a model agent


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("torch")
    from distillgym.agents.models import TinyConfig, build_tiny

    out = tmp_path_factory.mktemp("tiny")
    build_tiny(TinyConfig(vocab_size=600, episodes_per_env=2), out_dir=out)
    return out


@pytest.mark.slow
def test_a_model_agent_from_a_path_is_measured_and_exported(tiny_dir: Path, tmp_path: Path) -> None:
    result = evaluate(
        [str(tiny_dir), "expert"], ["Sokoban-6x6-1-v0", "2048-3x3-v0"], 2, env_kwargs={"max_steps": 2},
        max_tokens=6, num_envs=2, progress=False,
    )
    assert result.agents == [str(tiny_dir), "expert"]
    for env_id in ("distillgym/Sokoban-6x6-1-v0", "distillgym/2048-3x3-v0"):
        eps = result.episodes[(str(tiny_dir), env_id)]
        m = result.get(str(tiny_dir), env_id)
        assert m.episodes == 2 and all(e.agent == str(tiny_dir) for e in eps)
        assert m.mean_tokens == sum(e.num_completion_tokens for e in eps) / 2 > 0
        assert all(0 < len(t.completion_ids or []) <= 6 for e in eps for t in e.turns)
        assert from_dataset(to_dataset(eps)) == eps
    paths = write_report(result, tmp_path)
    assert EvalResult.from_dict(json.loads(paths["json"].read_text())).metrics == result.metrics


def test_learning_benchmark_configs_load() -> None:
    """Every (task, algorithm) run of the learning benchmark is a valid training config (a typo fails here, not an
    hour into a benchmark), and the apps task's tuned learning rate wins over the algorithm's."""
    pytest.importorskip("torch")
    from distillgym.eval.bench.learning import ALGOS, TASKS
    from distillgym.trainers.config import load_config

    for name, task in TASKS.items():
        load_config(None, [*task.shared, "algo=sft", "tasks_per_iter=16", *task.warm])
        for algo, overrides in ALGOS.items():
            cfg, _ = load_config(None, [*task.shared, *overrides, *task.tuned])
            assert cfg.algo == overrides[0].split("=")[1]
            if name == "apps" and algo != "sft":
                assert cfg.lr == 1e-4 and cfg.env == "Apps-v0" and cfg.env_kwargs["templates"] == "train"


def test_learning_benchmark_adopts_a_finished_warm_start(tmp_path: Path) -> None:
    """`--warm-from`: a finished SFT run is copied in as the shared warm start (model, config, metrics; not its
    checkpoints), never over one already there; a directory that is not a finished run is refused by name."""
    from distillgym.eval.bench.learning import adopt_warm_start

    src = tmp_path / "src"
    with pytest.raises(SystemExit, match="not a finished training run"):
        adopt_warm_start(src, tmp_path / "warm")
    (src / "model").mkdir(parents=True)
    (src / "checkpoints" / "ckpt-000001").mkdir(parents=True)
    (src / "model" / "config.json").write_text("{}")
    (src / "config.json").write_text('{"config": {}}')
    (src / "metrics.jsonl").write_text('{"iteration": 1, "eval/success": 0.5}\n')
    warm = tmp_path / "warm"
    adopt_warm_start(src, warm)
    assert (warm / "model" / "config.json").read_text() == "{}" and not (warm / "checkpoints").exists()
    assert (warm / "adopted_from").read_text().strip() == str(src.resolve())
    (src / "model" / "config.json").write_text('{"changed": true}')
    adopt_warm_start(src, warm)  # already there: kept as it is
    assert (warm / "model" / "config.json").read_text() == "{}"
    # a benchmark asking for more warm-start iterations than it was trained for does not retrain it (no checkpoints)
    from distillgym.eval.bench.learning import run_phase

    assert run_phase([f"model={src / 'model'}", f"out_dir={warm}", "algo=sft", "iterations=600"], False) == 0.0
    assert (warm / "metrics.jsonl").read_text() == '{"iteration": 1, "eval/success": 0.5}\n'


def test_teacher_view_scores_one_model_under_each_context(tiny_dir: Path, tmp_path: Path) -> None:
    """`contexts`: the same model on the same seeded tasks with the plain prompt, the env's privileged info, the
    expert's own skill and a retrieved skill, side by side; each context reaches the prompt it should, and only it."""
    from distillgym.agents.models import load
    from distillgym.skills import Skill, SkillStore

    store_path = tmp_path / "skills.sqlite"
    with SkillStore(store_path) as store:
        store.add(Skill("sokoban", "distillgym/Sokoban-6x6-1-v0:train:0", "push boxes onto targets",
                        "do not corner a box", ["zebra-workflow-step"], task_text="Sokoban room"))
    contexts = ["plain", "privileged", "expert-skill", f"skill:{store_path}"]
    result = evaluate([str(tiny_dir)], ["Sokoban-6x6-1-v0"], 3, env_kwargs={"max_steps": 2}, max_tokens=4,
                      num_envs=2, progress=False, contexts=contexts)
    name = str(tiny_dir)
    labels = [name, f"{name} [privileged]", f"{name} [expert-skill]", f"{name} [skill]"]
    assert result.agents == labels and result.config["contexts"] == contexts
    _, tokenizer = load(str(tiny_dir))

    def first_prompt(label: str) -> list[str]:
        eps = result.episodes[(label, "distillgym/Sokoban-6x6-1-v0")]
        assert [e.task_index for e in eps] == [0, 1, 2]  # the same tasks in every context
        return [tokenizer.decode(e.turns[0].prompt_ids) for e in eps]

    plain, privileged = first_prompt(labels[0]), first_prompt(labels[1])
    expert_skill, stored = first_prompt(labels[2]), first_prompt(labels[3])
    solutions = [e.privileged["solution"] for e in result.episodes[(labels[0], "distillgym/Sokoban-6x6-1-v0")]]
    assert all(len(p) > len(q) for p, q in zip(privileged, plain, strict=True))
    assert all("Skill" in p and "Skill" not in q for p, q in zip(expert_skill, plain, strict=True))
    assert all("zebra-workflow-step" in p for p in stored) and not any("zebra" in p for p in plain + expert_skill)
    assert solutions and all(solutions)
    m = result.get(labels[1], "Sokoban-6x6-1-v0")
    assert m.episodes == 3 and 0 <= m.ci_low <= m.success_rate <= m.ci_high <= 1
    with pytest.raises(ValueError, match="unknown context"):
        evaluate([str(tiny_dir)], ["Sokoban-6x6-1-v0"], 1, contexts=["oracle"], progress=False)
    runner = CliRunner()
    done = runner.invoke(app, ["eval", "-a", "expert", "-e", "Sokoban-6x6-1-v0", "--episodes", "1", "-c", "nope",
                               "--out", str(tmp_path / "x")])
    assert done.exit_code != 0 and "unknown context" in done.output
    # a model trained with its privileged block in the system message is scored with it there
    sys_view = evaluate([str(tiny_dir)], ["Sokoban-6x6-1-v0"], 1, env_kwargs={"max_steps": 1}, max_tokens=2,
                        num_envs=1, progress=False, contexts=["privileged"], privileged_at="system")
    prompt = tokenizer.decode(sys_view.episodes[(labels[1], "distillgym/Sokoban-6x6-1-v0")][0].turns[0].prompt_ids)
    system, _, rest = prompt.partition("<|im_end|>")
    assert "Privileged information" in system and "Privileged" not in rest
    assert sys_view.config["privileged_at"] == "system"
    with pytest.raises(ValueError, match="privileged_at"):
        evaluate([str(tiny_dir)], ["Sokoban-6x6-1-v0"], 1, privileged_at="middle", progress=False)
    done = runner.invoke(app, ["eval", "-a", "expert", "-e", "Sokoban-6x6-1-v0", "--episodes", "1",
                               "--privileged-at", "middle", "--out", str(tmp_path / "y")])
    assert done.exit_code != 0 and "--privileged-at" in done.output


def test_expert_agreement_is_one_for_the_expert_and_lower_for_a_random_player() -> None:
    from distillgym.eval.bench.teacher_view import expert_agreement

    result = evaluate(["expert", "random"], ["Sokoban-6x6-1-v0"], 4, num_envs=2, progress=False)
    expert = expert_agreement(result.episodes[("expert", "distillgym/Sokoban-6x6-1-v0")])
    rand = expert_agreement(result.episodes[("random", "distillgym/Sokoban-6x6-1-v0")])
    assert expert == 1.0
    assert rand is not None and rand < 0.6


def test_proact_and_cascade_benchmark_configs_load() -> None:
    """The ProAct benchmark's stages are valid training configs for every task (2048's SFT imitates every game), and
    the cascade benchmark's families make their envs with the kwargs it plays them with."""
    pytest.importorskip("torch")
    import gymnasium as gym

    from distillgym.eval.bench.cascade import FAMILIES
    from distillgym.eval.bench.proact import RL, TASKS
    from distillgym.trainers.config import load_config

    for task in TASKS.values():
        _, sft = load_config(None, [*task.shared, "algo=sft", *task.sft])
        assert sft.successful_only == (not task.score)
        for rl, overrides in RL.items():
            cfg, _ = load_config(None, [*task.shared, *overrides, *(task.mc if rl == "mc_grpo" else [])])
            assert cfg.algo == rl and cfg.eval_episodes == 256
    for spec in FAMILIES.values():
        env = gym.make(f"distillgym/{spec['env']}", **spec["kwargs"])
        assert env.unwrapped.max_steps == spec["kwargs"]["max_steps"]
        env.close()
