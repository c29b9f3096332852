"""The training loop end to end: every algorithm on every env family, config errors, exact resume after SIGKILL,
and privileged context reaching the teacher only."""

from __future__ import annotations

import dataclasses
import itertools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from distillgym.trainers import ALGORITHMS  # noqa: E402
from distillgym.trainers.config import load_config  # noqa: E402
from distillgym.trainers.loop import read_metrics, train  # noqa: E402


def quick(tiny_dir: str, out: Path, *extra: str) -> list[str]:
    return [f"model={tiny_dir}", f"out_dir={out}", "iterations=2", "tasks_per_iter=2", "group_size=2", "num_envs=4",
            "max_tokens=6", "eval_episodes=2", "eval_every=0", "env_kwargs.max_steps=3", "progress=false",
            "tensorboard=false", "threads=1", *extra]


ALGO_ARGS = {
    "sft": ["sft.successful_only=false"],  # 3-step episodes rarely succeed
    "grpo": ["grpo.drop_zero_advantage=false", "grpo.advantage=gigpo"],
    "opd": ["opd.teacher=frozen", "opd.teacher_privileged=true", "opd.lmbda=0.5"],
    "opsd": ["opsd.variant=jsd"],
    "pi_distill": [
        "pi_distill.drop_zero_advantage=false",
        "pi_distill.alpha_start=0",
        "pi_distill.alpha_anneal_iters=2",
    ],
    "skill_sd": ["skill_sd.lmbda=0.5"],
    "mc_grpo": ["mc_grpo.mc_rollouts=16", "mc_grpo.mc_horizon=5", "mc_grpo.states_per_iter=2",
                "mc_grpo.samples_per_state=2"],
    "mc_ppo": ["mc_ppo.mc_rollouts=16", "mc_ppo.mc_horizon=5"],
}


@pytest.mark.parametrize("env", ["Sokoban-6x6-1-v0", "2048-3x3-v0"])
@pytest.mark.parametrize("algo", sorted(ALGO_ARGS))
def test_every_algorithm_runs_on_every_family(algo: str, env: str, tiny_dir: str, tmp_path: Path) -> None:
    cfg, acfg = load_config(None, quick(tiny_dir, tmp_path, f"algo={algo}", f"env={env}", *ALGO_ARGS[algo]))
    before = {k: v.clone() for k, v in cfg_model_state(tiny_dir).items()}
    run = train(cfg, acfg)
    metrics = read_metrics(tmp_path)
    assert [m["iteration"] for m in metrics] == [0, 1, 2]
    if algo == "mc_grpo":  # an untrained model names no move: every reply gets the same invalid reward, no update
        assert all(m["states"] == 2 and m["samples"] == 0 for m in metrics[1:]), metrics
    else:
        assert all("loss" in m for m in metrics[1:]), metrics
    assert "eval/success" in metrics[0] and "eval/success" in metrics[-1]
    if algo in ("opsd", "pi_distill", "skill_sd"):  # self-teachers: the teacher's view beside the student's
        for m in (metrics[0], metrics[-1]):
            assert m["eval/teacher_gap"] == pytest.approx(m["eval/teacher_success"] - m["eval/success"])
    else:
        assert "eval/teacher_gap" not in metrics[0]
    after = run.model.state_dict()
    # an untrained model fails every episode alike: GRPO's (and MC-GRPO's) advantages are 0
    if algo not in ("grpo", "skill_sd", "mc_grpo"):
        # (Skill-SD's distillation term needs skills, which the first iteration's summaries only start to write)
        assert any(not torch.equal(before[k], after[k]) for k in before), "training changed no weight"
    assert (tmp_path / "model" / "config.json").is_file() and (tmp_path / "learning_curve.png").is_file()


def cfg_model_state(path: str) -> dict:
    from distillgym.agents.models import load

    return load(path)[0].state_dict()


def test_opsd_rl_variants_and_grpo_kl(tiny_dir: str, tmp_path: Path) -> None:
    for i, extra in enumerate([["algo=opsd", "opsd.variant=rl", "opsd.kl_mode=reward"],
                               ["algo=opsd", "opsd.variant=rl", "opsd.kl_mode=loss", "opsd.teacher=ema"],
                               ["algo=grpo", "grpo.kl_coef=0.1", "grpo.drop_zero_advantage=false",
                                "grpo.chain=true", "history=null"]]):
        cfg, acfg = load_config(None, quick(tiny_dir, tmp_path / str(i), *extra))
        train(cfg, acfg)
        assert all("loss" in m for m in read_metrics(tmp_path / str(i))[1:])


def test_config_errors_name_the_field(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"unknown config field 'lrr'.*Did you mean 'lr'"):
        load_config(None, ["lrr=0.1"])
    with pytest.raises(ValueError, match=r"unknown config field 'grpo\.clip_hi'.*'grpo\.clip_high'"):
        load_config(None, ["algo=grpo", "grpo.clip_hi=0.3"])
    with pytest.raises(ValueError, match=r"unknown algo 'gpro'.*'grpo'"):
        load_config(None, ["algo=gpro"])
    with pytest.raises(ValueError, match="iterations must be int"):
        load_config(None, ["iterations=many"])
    # a choice field (a Literal) is checked the same way everywhere, in the file, the overrides and the Python API
    with pytest.raises(ValueError, match=r"config field opsd\.variant must be one of jsd, rl; got 'jds'"):
        load_config(None, ["algo=opsd", "opsd.variant=jds"])
    with pytest.raises(ValueError, match=r"config field schedule must be one of constant, linear, cosine"):
        load_config(None, ["schedule=step"])
    with pytest.raises(ValueError, match=r"config field grpo\.loss_agg must be one of grpo, bnpo, dr_grpo, dapo"):
        load_config(None, ["algo=grpo", "grpo.loss_agg=mean"])
    cfg, acfg = load_config(None, ["generation=vllm_server", f"out_dir={tmp_path / 'fleet'}"])
    with pytest.raises(ValueError, match=r"config field generation_urls: .*needs at least one server URL"):
        train(cfg, acfg)
    cfg, acfg = load_config(None, ["algo=skill_sd"])
    with pytest.raises(ValueError, match=r"skill_sd\.retriever must be one of bm25, embed"):
        train(cfg, dataclasses.replace(acfg, retriever="tfidf"))
    # an algorithm that needs what the env does not give is refused before it starts, naming both
    for args, missing in ((["algo=opsd", "env_kwargs.privileged=false"], "privileged information"),
                          (["algo=pi_distill", "env_kwargs.privileged=false"], "privileged information"),
                          (["algo=opd", "opd.teacher_privileged=true", "env_kwargs.privileged=false"],
                           "privileged information")):
        cfg, acfg = load_config(None, [*args, "env=Sokoban-6x6-1-v0", f"out_dir={tmp_path / 'refused'}"])
        with pytest.raises(ValueError, match=rf"config field algo: {cfg.algo} .*needs {missing}.*Sokoban-6x6-1"):
            train(cfg, acfg)
        assert not (tmp_path / "refused").exists()  # nothing was started
    path = tmp_path / "c.yaml"
    path.write_text("algo: sft\nlr: 3e-3\nsft:\n  successful_only: false\n")
    cfg, acfg = load_config(path, ["iterations=4"])
    assert (cfg.algo, cfg.lr, cfg.iterations, acfg.successful_only) == ("sft", 0.003, 4, False)
    assert set(ALGORITHMS) == {"sft", "grpo", "opd", "opsd", "pi_distill", "skill_sd", "mc_grpo", "mc_ppo"}


def test_killed_run_resumes_exactly(tiny_dir: str, tmp_path: Path) -> None:
    args = quick(tiny_dir, tmp_path / "whole", "algo=grpo", "iterations=4", "grpo.drop_zero_advantage=false")
    cfg, acfg = load_config(None, args)
    whole = train(cfg, acfg).model.state_dict()

    killed = tmp_path / "killed"
    argv = [a.replace(str(tmp_path / "whole"), str(killed)) for a in args]
    proc = subprocess.Popen([sys.executable, "-m", "distillgym.cli", "train", *argv],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not (killed / "checkpoints" / "ckpt-000002" / "meta.json").exists():
        assert proc.poll() is None, "the run ended before it could be killed"
        assert time.time() < deadline
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (killed / "model").exists()  # it really died before finishing
    cfg2, acfg2 = load_config(None, argv)
    with pytest.raises(ValueError, match="--resume"):
        train(cfg2, acfg2)
    resumed = train(cfg2, acfg2, resume=True).model.state_dict()
    assert all(torch.equal(whole[k], resumed[k]) for k in whole)
    its = [m["iteration"] for m in read_metrics(killed)]
    assert its == sorted(set(its)) and its[-1] == 4  # no duplicated iterations in the log
    # the budgets a learning curve is drawn against survive the kill: env steps and generated tokens, cumulative
    for key in ("env_steps", "gen_tokens"):
        assert [m[key] for m in read_metrics(killed)] == [m[key] for m in read_metrics(tmp_path / "whole")]
    grown = [m["gen_tokens"] for m in read_metrics(killed)]
    assert grown[0] == 0 and all(b > a for a, b in itertools.pairwise(grown))


def test_a_finished_run_extends_and_refuses_a_changed_setting(tiny_dir: str, tmp_path: Path) -> None:
    """Resuming a finished run with more iterations (and another way of reporting) continues it from its last
    checkpoint; a setting that changes the training itself is refused by name."""
    args = quick(tiny_dir, tmp_path / "run", "algo=grpo", "grpo.drop_zero_advantage=false")
    train(*load_config(None, args))
    cfg, acfg = load_config(None, [*args, "iterations=3", "eval_teacher=false", "eval_every=3"])
    train(cfg, acfg, resume=True)
    logged = read_metrics(tmp_path / "run")
    assert [m["iteration"] for m in logged] == [0, 1, 2, 3] and "eval/success" in logged[-1]
    cfg, acfg = load_config(None, [*args, "iterations=4", "lr=0.5"])
    with pytest.raises(ValueError, match="config fields differ from the checkpoint's: lr"):
        train(cfg, acfg, resume=True)


def test_checkpoints_hold_what_resume_needs_and_an_ema_teacher_resumes_exactly(tiny_dir: str, tmp_path: Path) -> None:
    """A frozen teacher is rebuilt from the initial model at setup, so its checkpoint holds no teacher; an EMA
    teacher's weights are saved, and a run resumed after iteration 1 ends with the same student and teacher."""
    args = ["algo=opsd", "iterations=2", "opsd.teacher=ema", "opsd.ema_decay=0.5"]
    whole = train(*load_config(None, quick(tiny_dir, tmp_path / "whole", *args)))
    first = load_config(None, quick(tiny_dir, tmp_path / "split", *args[:-2], "iterations=1", *args[2:]))
    train(*first)
    resumed = train(*load_config(None, quick(tiny_dir, tmp_path / "split", *args)), resume=True)
    for a, b in ((whole.model, resumed.model), (whole.state.teacher, resumed.state.teacher)):
        sa, sb = a.state_dict(), b.state_dict()
        assert all(torch.equal(sa[k], sb[k]) for k in sa)
    saved = torch.load(tmp_path / "split" / "checkpoints" / "ckpt-000002" / "state.pt", weights_only=False)
    assert set(saved["algo_state"]) == {"teacher"}
    train(*load_config(None, quick(tiny_dir, tmp_path / "frozen", "algo=opsd", "iterations=1")))
    saved = torch.load(tmp_path / "frozen" / "checkpoints" / "ckpt-000001" / "state.pt", weights_only=False)
    assert saved["algo_state"] == {}


def test_privileged_context_reaches_the_teacher_only(tiny_dir: str, tmp_path: Path) -> None:
    from distillgym.agents.rollout import collect
    from distillgym.trainers import core
    from distillgym.trainers.loop import setup

    cfg, _ = load_config(None, quick(tiny_dir, tmp_path, "env=Sokoban-6x6-2-v0"))
    run = setup(cfg)
    episodes = collect(core.model_agent(run), cfg.env, 2, split="train", env_kwargs=cfg.env_kwargs, progress=False)
    samples, teacher, _ = core.distill_inputs(run, episodes, teacher_privileged=True)
    tok = run.tokenizer
    for s, t in zip(samples, teacher, strict=True):
        assert "Privileged hint" in tok.decode(t) and "expert's next action" in tok.decode(t)
        assert "Privileged" not in tok.decode(s.prompt_ids)
    # the student's rollouts never saw it either
    assert all("Privileged" not in tok.decode(turn.prompt_ids) for e in episodes for turn in e.turns)


def test_grpo_step_favors_the_better_completion(tiny_dir: str, tmp_path: Path) -> None:
    from distillgym.trainers import core, grpo
    from distillgym.trainers.loop import setup
    from distillgym.types import Sample

    # lr 1e-3: at 1e-2 Adam's first steps overshoot on this 0.7 M model and the sign of the change depends on the
    # initialization (measured: -0.5 nats after 3 steps with one tokenizer, +0.8 after 5; +3.7 after 3 at 1e-3)
    cfg, _ = load_config(None, quick(tiny_dir, tmp_path, "lr=0.001"))
    run = setup(cfg)
    prompt = run.tokenizer("Push the box.", add_special_tokens=False)["input_ids"]
    good = run.tokenizer("<action>Up</action>", add_special_tokens=False)["input_ids"]
    bad = run.tokenizer("<action>Down</action>", add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        old = [core.logprobs(run.model, [Sample(prompt, c, [1] * len(c), [0.0] * len(c))], run.pad_id)[0][0].tolist()
               for c in (good, bad)]
    samples = [Sample(prompt, c, [1] * len(c), o) for c, o in zip((good, bad), old, strict=True)]
    before = [sum(o) for o in old]
    for _ in range(3):
        grpo.policy_gradient_step(run, samples, [[1.0] * len(good), [-1.0] * len(bad)], grpo.Config())
    with torch.no_grad():
        after = [core.logprobs(run.model, [s], run.pad_id)[0].sum().item() for s in samples]
    # the rewarded completion gains probability relative to the punished one (shared tokens cancel)
    assert after[0] - after[1] > before[0] - before[1] + 0.5


@pytest.mark.parametrize("algo", ["sft", "opsd"])
def test_updates_per_iter_is_honored_by_every_algorithm(algo: str, tiny_dir: str, tmp_path: Path) -> None:
    """updates_per_iter optimizer steps per iteration, not one: AdamW's step counter counts them."""
    cfg, acfg = load_config(None, quick(tiny_dir, tmp_path, f"algo={algo}", "updates_per_iter=3", *ALGO_ARGS[algo]))
    run = train(cfg, acfg)
    steps = {int(s["step"]) for s in run.optimizer.state_dict()["state"].values()}
    assert steps == {2 * 3}
    assert run.scheduler.last_epoch == 2 * 3


def test_sft_teacher_prompt_copies(tiny_dir: str, tmp_path: Path) -> None:
    """With teacher_prompt_copies, every demonstration is also imitated under the teacher's prompt (privileged
    info in context): twice the samples, half of them with the expert's plan in the prompt."""
    from distillgym.agents.policies import ExpertAgent
    from distillgym.trainers import core, sft
    from distillgym.trainers.loop import setup

    counts = {}
    for flag in (False, True):
        cfg, acfg = load_config(None, quick(tiny_dir, tmp_path / str(flag), "algo=sft", "sft.successful_only=false",
                                            f"sft.teacher_prompt_copies={str(flag).lower()}"))
        run = setup(cfg)
        counts[flag] = sft.iteration(run, acfg, sft.setup(run, acfg))["samples"]
    assert counts[True] == 2 * counts[False] > 0
    episodes = core.rollout(run, ExpertAgent(), [0], 1)
    taught = core.tokenize_demonstrations(run, episodes, privileged=core.step_privileged)
    plain = core.tokenize_demonstrations(run, episodes)
    for t, p in zip(taught[0].turns, plain[0].turns, strict=True):
        assert "expert's next action" in run.tokenizer.decode(t.prompt_ids)
        assert "Privileged" not in run.tokenizer.decode(p.prompt_ids)
        assert t.completion_ids == p.completion_ids  # the same reply, under another prompt


def test_seed_varies_the_training_task_stream() -> None:
    from distillgym.trainers.core import train_tasks

    def stream(seed: int, *extra: str) -> list[list[int]]:
        cfg, _ = load_config(None, [f"seed={seed}", "tasks_per_iter=4", *extra])
        return [train_tasks(cfg, it) for it in range(3)]

    assert stream(0)[0] == [0, 1, 2, 3] and stream(0)[1] == [4, 5, 6, 7]  # seed 0: the stream it always was
    assert stream(1) == stream(1) and stream(2) == stream(2)
    tasks = {seed: {t for it in stream(seed) for t in it} for seed in (0, 1, 2)}
    assert not tasks[0] & tasks[1] and not tasks[0] & tasks[2] and not tasks[1] & tasks[2]
    pooled = [stream(s, "train_pool=16") for s in (0, 1)]
    assert pooled[0] != pooled[1] and all(0 <= t < 16 for p in pooled for tasks in p for t in tasks)


def _sandbox_workers_of(parent: int) -> list[int]:
    """Apps sandbox workers (jailed by bubblewrap, a child of `parent`) running now."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if b"/sandbox/worker" not in (entry / "cmdline").read_bytes():
                continue
            bwrap = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if int((Path("/proc") / str(bwrap) / "stat").read_text().rsplit(")", 1)[1].split()[1]) == parent:
                found.append(int(entry.name))
        except (OSError, ValueError, IndexError):
            continue
    return found


def test_training_survives_killed_sandbox_workers(tiny_dir: str, tmp_path: Path) -> None:
    """Apps-v0 workers killed over and over during a training run (as an OOM killer or an operator might): the run
    ends normally; a cell that lost its worker is a crash the agent is told about, not the end of the run."""
    import threading

    stop, killed = threading.Event(), []

    def killer() -> None:
        while not stop.is_set():
            for pid in _sandbox_workers_of(os.getpid()):
                try:
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                except ProcessLookupError:
                    pass
            time.sleep(0.02)

    from distillgym.envs.apps.sandbox import Sandbox

    with Sandbox() as box:  # a worker starts in this process: from then on a failed start is transient
        box.start()
    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    try:
        cfg, acfg = load_config(None, quick(tiny_dir, tmp_path, "algo=grpo", "env=Apps-v0",
                                            "grpo.drop_zero_advantage=false"))
        train(cfg, acfg)
    finally:
        stop.set()
        thread.join()
    assert [m["iteration"] for m in read_metrics(tmp_path)] == [0, 1, 2]
    assert killed  # workers live for whole episodes: the killer found some


def test_sft_copy_rows_rehearse_copying_reproducibly(tiny_dir: str, tmp_path: Path) -> None:
    """sft.copy_rows adds that many copy-task rows to a step, drawn from the step's own tokens, the same ones for the
    same seed and iteration (a resumed run) and other ones for another iteration; bad values name the field."""
    from distillgym.agents.policies import ExpertAgent
    from distillgym.trainers import core, sft
    from distillgym.trainers.loop import setup

    cfg, acfg = load_config(None, quick(tiny_dir, tmp_path / "c", "algo=sft", "sft.successful_only=false",
                                        "sft.copy_rows=5", "sft.copy_gap=30", "sft.copy_span=8"))
    run = setup(cfg)
    episodes = core.rollout(run, ExpertAgent(), [0, 1], 1)
    samples = [s for ep in core.tokenize_demonstrations(run, episodes) for s in ep.samples(chain=False)]
    rows = sft.copy_samples(samples, acfg, seed=0, iteration=3)
    text = {t for s in samples for t in (*s.prompt_ids, *s.completion_ids)}
    assert len(rows) == 5
    for r in rows:
        n = len(r.completion_ids)
        assert 4 <= n <= 8 and r.prompt_ids[:n] == r.completion_ids and len(r.prompt_ids) - n <= 30
        assert set(r.prompt_ids) <= text and r.loss_mask == [0] + [1] * (n - 1)
    again = sft.copy_samples(samples, acfg, seed=0, iteration=3)
    assert [(r.prompt_ids, r.completion_ids) for r in again] == [(r.prompt_ids, r.completion_ids) for r in rows]
    other = sft.copy_samples(samples, acfg, seed=0, iteration=4)
    assert [r.completion_ids for r in other] != [r.completion_ids for r in rows]
    base = sft.iteration(run, dataclasses.replace(acfg, copy_rows=0), sft.setup(run, acfg))["samples"]
    assert sft.iteration(run, acfg, sft.setup(run, acfg))["samples"] == base + 5
    for bad, field_name in (("copy_span=2", "copy_span"), ("copy_rows=-1", "copy_rows")):
        cfg, acfg = load_config(None, ["algo=sft", f"sft.{bad}"])
        with pytest.raises(ValueError, match=rf"config field sft\.{field_name} must be"):
            sft.setup(run, acfg)


def test_sft_skill_prompt_copies(tiny_dir: str, tmp_path: Path) -> None:
    """With skill_prompt_copies, every demonstration is also imitated with its own skill (the expert summarizer's
    summary of it) after the last observation, the reply unchanged."""
    from distillgym.agents.policies import ExpertAgent
    from distillgym.agents.prompts import PRIVILEGED_HEADER
    from distillgym.trainers import core, sft
    from distillgym.trainers.loop import setup

    counts = {}
    for flag in (False, True):
        cfg, acfg = load_config(None, quick(tiny_dir, tmp_path / str(flag), "algo=sft", "sft.successful_only=false",
                                            "sft.teacher_prompt_copies=false",
                                            f"sft.skill_prompt_copies={str(flag).lower()}"))
        run = setup(cfg)
        counts[flag] = sft.iteration(run, acfg, sft.setup(run, acfg))["samples"]
    assert counts[True] == 2 * counts[False] > 0
    episodes = core.rollout(run, ExpertAgent(), [0], 1)
    (text,) = sft._own_skills(episodes)
    assert text is not None and text.startswith("Skill") and episodes[0].turns[0].action in text
    taught = core.tokenize_demonstrations(run, episodes, privileged=lambda ep, k: text)
    plain = core.tokenize_demonstrations(run, episodes)
    for t, p in zip(taught[0].turns, plain[0].turns, strict=True):
        assert f"{PRIVILEGED_HEADER}\n{text}" in run.tokenizer.decode(t.prompt_ids)
        assert t.completion_ids == p.completion_ids


def test_distillation_can_skip_steps_where_the_teacher_has_no_hint(tiny_dir: str, tmp_path: Path) -> None:
    """`skip_uninformed` (OPSD, OPD with a privileged teacher, pi-Distill): a step whose privileged info names no next
    action (the expert has no plan from an unsolvable room) is not distilled; steps with one, and envs without the
    field, are."""
    from distillgym.trainers import core
    from distillgym.trainers.core import informed_turns
    from distillgym.trainers.loop import setup
    from distillgym.types import Episode, Turn

    def turn(privileged: dict | None, ids: bool = True) -> Turn:
        return Turn("obs", "Up", prompt_ids=[1] if ids else None, completion_ids=[2] if ids else None,
                    info={"privileged": privileged} if privileged is not None else {})

    ep = Episode("distillgym/Sokoban-6x6-1-v0", 0, 0, "train", "task", "obs", privileged={"expert_action": "Up"},
                 turns=[turn({"expert_action": "Left"}), turn({"expert_action": None, "solution": ["Up"]}), turn(None),
                        turn({"expert_action": None}, ids=False), turn({"ground_truth": "42"})])
    # turn 3 is the reset's (Up) by fallback; turn 4 wrote no tokens (no sample); turn 5 has no expert at all
    assert informed_turns([ep]) == [True, False, True, True]
    cfg, _ = load_config(None, quick(tiny_dir, tmp_path / "inputs"))
    run = setup(cfg)
    every, prompts, info = core.distill_inputs(run, [ep], teacher_privileged=True)
    kept, kept_prompts, info_skip = core.distill_inputs(run, [ep], teacher_privileged=True, skip_uninformed=True)
    assert info == {} and info_skip == {"uninformed_frac": 0.25}
    assert [s.prompt_ids for s in kept] == [every[i].prompt_ids for i in (0, 2, 3)]
    assert kept_prompts == [prompts[i] for i in (0, 2, 3)]
    for algo, flags in [("opsd", ["opsd.skip_uninformed=true"]),
                        ("opd", ["opd.teacher=frozen", "opd.teacher_privileged=true", "opd.skip_uninformed=true"]),
                        ("pi_distill", ["pi_distill.skip_uninformed=true", "pi_distill.drop_zero_advantage=false"])]:
        cfg, acfg = load_config(None, quick(tiny_dir, tmp_path / algo, f"algo={algo}", *flags))
        train(cfg, acfg)
        logged = read_metrics(tmp_path / algo)[1:]
        assert all(0.0 <= m["uninformed_frac"] <= 1.0 for m in logged), algo
