"""Checkpoints that a killed run resumes from exactly: model, optimizer, scheduler, RNG states, loop position and
the algorithm state's `state_dict` (only what setup cannot rebuild: an EMA teacher, a skill store), written
atomically (a directory renamed into place when complete)."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from distillgym.trainers import distributed
from distillgym.trainers.config import to_dict

PREFIX = "ckpt-"


def _dir(out: Path) -> Path:
    return out / "checkpoints"


def save(run: Any, algo_cfg: Any, optimizer_state: dict[str, Any] | None = None) -> Path:
    """Write checkpoint `ckpt-<iteration>` under out/checkpoints and keep the most recent `keep_checkpoints`.
    `optimizer_state`: the optimizer's whole state when the run's is sharded (FSDP), else read from the run."""
    root = _dir(run.out)
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"{PREFIX}{run.iteration:06d}"
    tmp = root / f".tmp-{PREFIX}{run.iteration:06d}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    torch.save(
        {
            "model": run.model.state_dict(),
            "optimizer": run.optimizer.state_dict() if optimizer_state is None else optimizer_state,
            "scheduler": run.scheduler.state_dict(),
            "algo_state": run.state.state_dict() if run.state is not None else {},
            "rng": {
                "python": random.getstate(),
                "numpy": np.random.get_state(),
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
            },
        },
        tmp / "state.pt",
    )
    meta = {"iteration": run.iteration, "env_steps": run.env_steps, "gen_tokens": run.gen_tokens,
            "config": to_dict(run.cfg), "algo_config": to_dict(algo_cfg)}
    (tmp / "meta.json").write_text(json.dumps(meta, indent=2, default=str))
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    for old in sorted(root.glob(f"{PREFIX}*"))[: -max(1, run.cfg.keep_checkpoints)]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def latest(out: Path) -> Path | None:
    """The most recent complete checkpoint under out/checkpoints, or None."""
    done = [d for d in sorted(_dir(out).glob(f"{PREFIX}*")) if (d / "meta.json").is_file()]
    return done[-1] if done else None


def load(run: Any, path: Path) -> None:
    """Restore `run` from checkpoint `path` (the same config is expected; the iteration count may grow)."""
    meta = json.loads((path / "meta.json").read_text())
    state = torch.load(path / "state.pt", map_location=run.device, weights_only=False)
    run.model.load_state_dict(state["model"])
    if run.learner is not None:  # FSDP: the whole state cut into this rank's shards
        distributed.push_weights(run.learner, run.model)
        distributed.load_sharded_optimizer(run.optimizer, state["optimizer"])
    else:
        run.optimizer.load_state_dict(state["optimizer"])
    run.scheduler.load_state_dict(state["scheduler"])
    # checkpoints written before the typed states kept it under "extra_modules" (the same keys)
    algo_state = state["algo_state"] if "algo_state" in state else state.get("extra_modules", {})
    if run.state is not None:
        run.state.load_state_dict(algo_state)
    rng = state["rng"]
    random.setstate(rng["python"])
    np.random.set_state(rng["numpy"])
    torch.set_rng_state(rng["torch"].cpu())
    if rng["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    run.iteration = int(meta["iteration"])
    run.env_steps = int(meta["env_steps"])
    run.gen_tokens = int(meta.get("gen_tokens", 0))  # absent from checkpoints written before it was counted


def check_compatible(run: Any, path: Path) -> None:
    """A resumed run must use the checkpoint's settings, except how long it runs and how it reports."""
    meta = json.loads((path / "meta.json").read_text())
    now = to_dict(run.cfg)
    free = {"iterations", "eval_every", "eval_episodes", "eval_teacher", "checkpoint_every", "keep_checkpoints",
            "progress", "tensorboard", "threads", "device", "parallel",
            # where generation runs and how memory is saved, not what is computed
            "generation_urls", "served_model", "weight_sync_dir", "probe_tol", "prefix_cache", "gradient_checkpointing"}
    diff = [k for k, v in meta["config"].items() if k not in free and json.dumps(now.get(k), default=str)
            != json.dumps(v, default=str)]
    if diff:
        raise ValueError(f"cannot resume from {path}: config fields differ from the checkpoint's: {', '.join(diff)}")
