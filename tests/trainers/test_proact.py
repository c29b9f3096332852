"""ProAct's two stages through the trainers: SFT on GLAD chains; MC-GRPO's rewards and fallback advantage; MC-PPO's
blended TD(0) advantages."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from distillgym.agents.glad import GladConfig, glad_episodes  # noqa: E402
from distillgym.eval.export import write_jsonl  # noqa: E402
from distillgym.trainers import core  # noqa: E402
from distillgym.trainers.config import load_config  # noqa: E402
from distillgym.trainers.loop import read_metrics, setup, train  # noqa: E402


def test_sft_imitates_the_chains(tiny_dir: str, tmp_path: Path) -> None:
    episodes = glad_episodes("Sokoban-6x6-1-v0", [0, 1], cfg=GladConfig(simulations=30), progress=False)
    data = write_jsonl(episodes, tmp_path / "glad.jsonl")
    args = [f"model={tiny_dir}", f"out_dir={tmp_path / 'run'}", "algo=sft", f"sft.data={data}", "iterations=2",
            "tasks_per_iter=2", "max_tokens=8", "eval_episodes=2", "eval_every=0", "env_kwargs.max_steps=3",
            "progress=false", "tensorboard=false", "threads=1", "sft.teacher_prompt_copies=false"]
    cfg, acfg = load_config(None, args)
    run = setup(cfg)
    taught = core.tokenize_demonstrations(run, episodes)
    for turn in taught[0].turns:
        ids = turn.completion_ids
        assert ids is not None and ids[-1] == run.tokenizer.eos_token_id
        assert run.tokenizer.decode(ids[:-1]) == turn.info["reply"]  # the chain, not just the move
    train(cfg, acfg)
    metrics = read_metrics(tmp_path / "run")
    assert metrics[1]["samples"] == sum(e.num_steps for e in episodes) and metrics[-1]["loss"] > 0


# ------------------------------------------------------------------------------------------ the Monte-Carlo critic
from distillgym.envs.sokoban.env import SokobanEnv  # noqa: E402
from distillgym.trainers import mc_critic, mc_grpo, mc_ppo  # noqa: E402
from tests.conftest import ONE_PUSH, sokoban_at  # noqa: E402


def _exact_q(env: SokobanEnv, action: str, horizon: int, gamma: float, legal_only: bool = False) -> float:
    """E[r_0 + gamma r_1 + ...] over every uniformly random continuation (over the 4 moves, or the legal ones), by
    enumeration (the env is deterministic)."""
    snap = env.snapshot()

    def value(depth: int) -> float:
        if depth == horizon:
            return 0.0
        total = 0.0
        moves = env.admissible_actions() if legal_only else ["Up", "Down", "Left", "Right"]
        for a in moves:
            inner = env.snapshot()
            _, r, term, trunc, _ = env.step(a)
            total += r + (0.0 if term or trunc else gamma * value(depth + 1))
            env.restore(inner)
        return total / len(moves)

    _, r, term, trunc, _ = env.step(action)
    out = r + (0.0 if term or trunc else gamma * value(1))
    env.restore(snap)
    return out


def test_q_mc_converges_to_the_exact_value_of_a_small_position() -> None:
    env = sokoban_at(ONE_PUSH, privileged=False)
    exact = _exact_q(env, "Down", horizon=4, gamma=0.9)
    errors = []
    for m in (50, 20000):
        cfg = mc_critic.MCCritic(mc_rollouts=m, mc_horizon=4, mc_gamma=0.9)
        errors.append(abs(mc_critic.StateCritic(env, cfg, seed=1).q("Down") - exact))
    assert errors[1] < 0.03 and errors[1] < errors[0]
    # through env snapshots, with the expert's policy made fully random (noise 1: uniform over the legal moves)
    cfg = mc_critic.MCCritic(mc_rollouts=3000, mc_horizon=4, mc_gamma=0.9, mc_policy="expert", mc_noise=1.0)
    through = mc_critic.StateCritic(env, cfg, seed=1)
    legal_exact = _exact_q(env, "Down", horizon=4, gamma=0.9, legal_only=True)
    assert not through.batched and abs(through.q("Down") - legal_exact) < 0.1
    assert env.steps == 0  # the critic leaves the env where it was


def test_mc_grpo_rewards_replies_by_q_and_falls_back_exactly_when_all_agree() -> None:
    env = sokoban_at(ONE_PUSH, privileged=False)
    cfg = mc_grpo.Config(mc_rollouts=200, mc_horizon=10, mc_gamma=0.95)
    critic = mc_critic.StateCritic(env, cfg, seed=0)
    q_right, q_down = critic.q("Right"), critic.q("Down")
    assert q_right == pytest.approx(10.9) and q_down < q_right  # Right pushes the box home at once
    assert critic.q("dance") == env.invalid_action_penalty
    assert critic.cache.keys() == {"Right", "Down"}  # cached per action, invalid replies never rolled out
    legal = critic.legal_q()
    assert set(legal) == set(env.admissible_actions()) == {"Right", "Down"}
    mean, std = (q_right + q_down) / 2, abs(q_right - q_down) / 2
    same = mc_grpo.state_advantages([q_right] * 4, ["Right"] * 4, cfg, critic)
    assert same == pytest.approx([(q_right - mean) / std] * 4, rel=1e-5)  # the fallback: Right's standing
    mixed = mc_grpo.state_advantages([q_right, q_down, q_right, -1.0], ["Right", "Down", "Right", None], cfg, critic)
    r = np.asarray([q_right, q_down, q_right, -1.0])
    assert mixed == pytest.approx(((r - r.mean()) / (r.std() + cfg.eps)).tolist())
    invalid = mc_grpo.state_advantages([-1.0] * 4, [None] * 4, cfg, critic)
    assert invalid == [0.0] * 4  # all unparseable: nothing to prefer, no fallback
    step = mc_grpo.Config(variant="step")
    assert mc_grpo.state_advantages([0.9] * 4, ["Right"] * 4, step, critic) == [0.0] * 4  # Step-GRPO masks it
    off = mc_grpo.Config(fallback=False)
    assert mc_grpo.state_advantages([q_right] * 4, ["Right"] * 4, off, critic) == [0.0] * 4


def test_mc_ppo_advantages_match_hand_computed_td0_on_a_three_turn_episode() -> None:
    rewards, values = [1.0, 0.0, 2.0], [0.5, 1.0, 1.5]
    adv, ret = mc_ppo.td_advantages(rewards, values, last_value=2.0, terminated=True, gamma=0.9)
    # delta_2 = 2 - 1.5 (terminal); delta_1 = 0 + 0.9 * 1.5 - 1; delta_0 = 1 + 0.9 * 1 - 0.5
    assert adv == pytest.approx([1.4, 0.35, 0.5]) and ret == pytest.approx([1.9, 1.35, 2.0])
    cut, _ = mc_ppo.td_advantages(rewards, values, last_value=2.0, terminated=False, gamma=0.9)
    assert cut == pytest.approx([1.4, 0.35, 2.0 + 0.9 * 2.0 - 1.5])  # a truncated episode bootstraps V(s_T)
    gae, _ = mc_ppo.td_advantages(rewards, values, last_value=2.0, terminated=True, gamma=0.9, lam=0.5)
    assert gae == pytest.approx([1.4 + 0.45 * (0.35 + 0.45 * 0.5), 0.35 + 0.45 * 0.5, 0.5])


def test_mc_ppo_blends_the_head_with_v_mc_and_checkpoints_the_head(tiny_dir: str, tmp_path: Path) -> None:
    args = [f"model={tiny_dir}", f"out_dir={tmp_path}", "algo=mc_ppo", "iterations=2", "tasks_per_iter=2",
            "group_size=1", "num_envs=2", "max_tokens=4", "eval_episodes=2", "eval_every=0", "env_kwargs.max_steps=3",
            "progress=false", "tensorboard=false", "threads=1", "mc_ppo.mc_rollouts=32", "mc_ppo.mc_horizon=5",
            "mc_ppo.mc_weight=1.0"]
    cfg, acfg = load_config(None, args)
    run = train(cfg, acfg)
    metrics = read_metrics(tmp_path)
    assert metrics[1]["v_blend"] == pytest.approx(metrics[1]["v_mc"])  # w = 1: the Monte-Carlo value alone
    assert metrics[1]["v_head"] == 0.0 and metrics[2]["v_head"] != 0.0  # the head starts at 0, then learns
    assert metrics[1]["mc/sim_steps"] > 0 and metrics[1]["samples"] == 2 * 3
    saved = torch.load(sorted((tmp_path / "checkpoints").glob("ckpt-*"))[-1] / "state.pt", weights_only=False)
    assert torch.equal(saved["algo_state"]["head"]["weight"], run.state.head.weight.detach().cpu())
    assert "head_optimizer" in saved["algo_state"]


def test_sft_file_batches_visit_every_demonstration_once_per_epoch_in_a_seeded_order() -> None:
    from distillgym.trainers.sft import file_batch
    from distillgym.types import Episode

    pool = [Episode("e", i, i, "train", "", "") for i in range(10)]
    seen = [e.task_index for it in range(5) for e in file_batch(pool, 4, seed=0, iteration=it)]
    assert sorted(seen[:10]) == list(range(10)) and sorted(seen[10:20]) == list(range(10))  # epochs
    other = [e.task_index for it in range(5) for e in file_batch(pool, 4, seed=1, iteration=it)]
    assert other != seen and seen == [e.task_index for it in range(5) for e in file_batch(pool, 4, 0, it)]
    with pytest.raises(ValueError, match="no episodes"):
        file_batch([], 4, 0, 0)


@pytest.mark.parametrize("env", ["Household-v0", "Apps-v0"])
@pytest.mark.parametrize("algo", ["mc_grpo", "mc_ppo"])
def test_mc_critic_trainers_run_on_families_without_a_simulator(algo: str, env: str, tiny_dir: str,
                                                                 tmp_path: Path) -> None:
    """Household and Apps have no batch simulator: the critic rolls out the expert (with noise) through snapshots."""
    args = [f"model={tiny_dir}", f"out_dir={tmp_path}", f"algo={algo}", f"env={env}", "iterations=1",
            "tasks_per_iter=2", "group_size=1", "num_envs=2", "max_tokens=6", "eval_episodes=2", "eval_every=0",
            "env_kwargs.max_steps=2", "progress=false", "tensorboard=false", "threads=1", "eval_at_start=false",
            f"{algo}.mc_policy=expert", f"{algo}.mc_rollouts=2", f"{algo}.mc_horizon=3"]
    if algo == "mc_grpo":
        args += ["mc_grpo.states_per_iter=2", "mc_grpo.samples_per_state=2"]
    cfg, acfg = load_config(None, args)
    train(cfg, acfg)
    metrics = read_metrics(tmp_path)
    assert [m["iteration"] for m in metrics] == [1] and "eval/success" in metrics[0]
    if algo == "mc_ppo":  # V_MC at every visited state (2 episodes of 2 steps, plus their last states)
        assert metrics[0]["mc/sim_steps"] > 0 and metrics[0]["samples"] == 4
    else:
        assert metrics[0]["states"] == 2


def test_states_are_replayed_from_episodes_and_a_mismatch_is_an_error() -> None:
    import dataclasses

    import gymnasium as gym

    from distillgym.agents.policies import ExpertAgent
    from distillgym.agents.rollout import collect

    ep = collect(ExpertAgent(), "Sokoban-6x6-2-v0", [5], split="train", progress=False)[0]
    env = gym.make("distillgym/Sokoban-6x6-2-v0")
    seen = []
    for t in mc_critic.walk(env, ep):
        seen.append(t)
        if t < ep.num_steps:
            assert env.unwrapped.last_observation == ep.turns[t].observation
    assert seen == list(range(ep.num_steps + 1)) and env.unwrapped.is_success()
    mc_critic.goto(env, ep, 1)
    assert env.unwrapped.steps == 1
    wrong = dataclasses.replace(ep, turns=[dataclasses.replace(ep.turns[0], observation="another room"),
                                           *ep.turns[1:]])
    with pytest.raises(RuntimeError, match="not deterministic"):
        mc_critic.goto(env, wrong, 1)
