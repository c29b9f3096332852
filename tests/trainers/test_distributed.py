"""The learner under torchrun on CPU (gloo): two ranks (DDP or FSDP2) take the step one process takes, and
checkpoints resume across world sizes and schemes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from distillgym.agents.http_backend import free_port

torch = pytest.importorskip("torch")

from distillgym.trainers.config import load_config  # noqa: E402
from distillgym.trainers.loop import read_metrics, train  # noqa: E402


def args(tiny_dir: str, out: Path, *extra: str, algo: str = "sft") -> list[str]:
    # SFT on the expert's moves: the data does not depend on how the tasks are shared, so the runs must agree
    first = ["algo=sft", "sft.successful_only=false"] if algo == "sft" else [f"algo={algo}"]
    return [f"model={tiny_dir}", f"out_dir={out}", *first, "iterations=2",
            "tasks_per_iter=3", "num_envs=4", "max_tokens=6", "eval_episodes=2", "eval_every=0",
            "env_kwargs.max_steps=4", "micro_batch_size=6", "progress=false", "tensorboard=false", "threads=1",
            *extra]


def torchrun(cli_args: list[str], nproc: int = 2) -> None:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(nproc), "--master-addr",
           "127.0.0.1", "--master-port", str(free_port()), "-m", "distillgym.cli", "train", *cli_args]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert res.returncode == 0, res.stderr[-4000:]


def weights(out: Path) -> dict:
    from distillgym.agents.models import load

    return load(out / "model")[0].state_dict()


def assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    # AdamW's first steps divide by |gradient|: where a gradient nearly cancels, another summation order moves that
    # weight by a small fraction of the step (lr 1e-3); a missing or doubled gradient share moves nearly every weight
    # by about the step
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-4, msg=k)


@pytest.fixture(scope="module")
def one(tiny_dir: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The one-process run the two-rank runs must match (its final weights under out/model)."""
    out = tmp_path_factory.mktemp("one") / "run"
    train(*load_config(None, args(tiny_dir, out)))
    return out


def test_two_ranks_take_one_process_step_and_resume_in_one_process(tiny_dir: str, one: Path, tmp_path: Path) -> None:
    torchrun(args(tiny_dir, tmp_path / "two"))
    metrics = read_metrics(tmp_path / "two")
    assert [m["iteration"] for m in metrics] == [0, 1, 2]  # rank 0 alone logged
    # the whole batch on every rank: the same episodes (the tasks were shared 2 + 1) and steps as one process
    assert metrics[-1]["env_steps"] == read_metrics(one)[-1]["env_steps"] > 0
    assert metrics[1]["samples"] == read_metrics(one)[1]["samples"]
    assert metrics[1]["loss"] == pytest.approx(read_metrics(one)[1]["loss"], rel=1e-5)
    assert_same(weights(one), weights(tmp_path / "two"))
    # a two-rank run stopped after iteration 1 resumes in one process and ends where the one-process run ended
    torchrun(args(tiny_dir, tmp_path / "split", "iterations=1"))
    resumed = train(*load_config(None, args(tiny_dir, tmp_path / "split")), resume=True)
    assert_same(weights(one), resumed.model.state_dict())


def test_fsdp_shards_the_update_and_resumes_across_schemes(tiny_dir: str, one: Path, tmp_path: Path) -> None:
    # FSDP2 on two ranks: each holds half of the trained weights. The iterations' 6 and 16 samples make 1 and 3
    # micro-batches of 6: a rank with none, or one fewer, backpropagates a zeroed one to keep the collectives in step
    torchrun(args(tiny_dir, tmp_path / "fsdp", "parallel=fsdp"))
    metrics, ref = read_metrics(tmp_path / "fsdp")[1:], read_metrics(one)[1:]
    assert [m["fsdp/local_fraction"] for m in metrics] == [0.5, 0.5]
    assert [m["samples"] for m in metrics] == [m["samples"] for m in ref] == [6, 16]
    assert [m["loss"] for m in metrics] == pytest.approx([m["loss"] for m in ref], rel=1e-5)
    # the gradient itself, before clipping (clipping and AdamW would hide a gradient off by a factor)
    assert [m["grad_norm"] for m in metrics] == pytest.approx([m["grad_norm"] for m in ref], rel=1e-4)
    # the update's state per rank: half the weights, gradients and AdamW moments, plus the whole copy for
    # generation: 0.5 x 4 + 1 = 3 weights' worth against one process's 4
    assert metrics[-1]["memory/train_state_mb"] == pytest.approx(0.75 * ref[-1]["memory/train_state_mb"], rel=1e-3)
    assert_same(weights(one), weights(tmp_path / "fsdp"))
    # its checkpoint (the optimizer's moments gathered whole) resumes in one process, and a one-process checkpoint
    # resumes under FSDP (the moments cut into shards): both end where the one-process run ended
    torchrun(args(tiny_dir, tmp_path / "from_fsdp", "parallel=fsdp", "iterations=1"))
    resumed = train(*load_config(None, args(tiny_dir, tmp_path / "from_fsdp")), resume=True)
    assert_same(weights(one), resumed.model.state_dict())
    train(*load_config(None, args(tiny_dir, tmp_path / "to_fsdp", "iterations=1")))
    torchrun([*args(tiny_dir, tmp_path / "to_fsdp", "parallel=fsdp"), "--resume"])
    assert_same(weights(one), weights(tmp_path / "to_fsdp"))


def test_grpo_runs_on_two_ranks(tiny_dir: str, tmp_path: Path) -> None:
    torchrun(args(tiny_dir, tmp_path / "grpo", "group_size=2", "iterations=1", "grpo.drop_zero_advantage=false",
                  algo="grpo"))
    metrics = read_metrics(tmp_path / "grpo")
    assert metrics[-1]["env_steps"] > 0 and "loss" in metrics[-1]
    assert (tmp_path / "grpo" / "model" / "config.json").is_file()


@pytest.mark.parametrize("path", sorted(Path(__file__).parents[2].joinpath("configs").glob("*.yaml")))
def test_shipped_scale_configs_load(path: Path) -> None:
    from distillgym.trainers.config import check_choices

    cfg, algo_cfg = load_config(path)
    check_choices(cfg)
    check_choices(algo_cfg, "grpo.")
    assert cfg.algo == "grpo" and cfg.dtype == "bf16" and cfg.device == "cuda"
    expected = {"grpo_ddp.yaml": "ddp", "grpo_fsdp_vllm.yaml": "fsdp"}.get(path.name, cfg.parallel)
    assert cfg.parallel == expected
    if path.name == "grpo_fsdp_vllm.yaml":
        assert cfg.generation == "vllm_server" and len(cfg.generation_urls) == 2
