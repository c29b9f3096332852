"""The training loop every algorithm shares: set up -> (iteration: collect -> score -> loss -> step) -> evaluate
-> log -> checkpoint, resumable after a kill.

The generation backend shares the training model's weights in process (transformers), so the sync after each
update is free; a vLLM backend would reload weights here (`VLLMBackend.load_weights`).
"""

from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from distillgym.agents.generation import TransformersBackend
from distillgym.agents.rollout import collect
from distillgym.trainers import checkpoint, distributed
from distillgym.trainers.config import TrainConfig, to_dict
from distillgym.trainers.core import Run, enable_checkpointing, make_schedule, model_agent, pick_device, wrap_lora


def setup(cfg: TrainConfig, needs: set[str] | frozenset[str] = frozenset()) -> Run:
    """Model, tokenizer, optimizer, schedule and generation backend for `cfg`, seeded. `needs`: what the algorithm
    needs of the env (its `needs(cfg)`), checked before anything is built."""
    from distillgym.agents.models import TinyConfig, build_tiny, load
    from distillgym.envs.core.make import capabilities, make_env
    from distillgym.envs.core.protocol import family_of, protocol_of

    try:
        env = make_env(cfg.env, **cfg.env_kwargs)
    except (ValueError, TypeError) as e:
        raise ValueError(f"config field env: {e}") from e
    family, protocol, offered = family_of(env), protocol_of(env), capabilities(env)
    env.close()
    check_env_offers(cfg, set(needs), offered)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    device = pick_device(cfg.device)
    dist = distributed.init(device)  # under torchrun: this rank (every rank builds the same model from the seed)
    model, tokenizer = build_tiny(TinyConfig(seed=cfg.seed)) if cfg.model == "tiny" else load(cfg.model)
    served_dir = None
    if cfg.generation == "vllm_server" and cfg.generation_servers and dist.main:
        served_dir = Path(cfg.out_dir) / "served-model"  # what launched servers load: the starting model, before
        served_dir.parent.mkdir(parents=True, exist_ok=True)  # any adapter
        model.save_pretrained(served_dir)
        tokenizer.save_pretrained(served_dir)
    if cfg.gradient_checkpointing:
        # non-reentrant: works with inputs that need no grad and with LoRA; generation (eval mode) never recomputes
        enable_checkpointing(model)
    if cfg.lora:
        model = wrap_lora(model, cfg)
    model.to(device)
    learner = distributed.shard(model, dist, device) if cfg.parallel == "fsdp" and dist.on else None
    params = [p for p in (model if learner is None else learner).parameters() if p.requires_grad]
    # fused: one kernel for all parameters (3x faster steps on a CPU for small models; TRL's default too)
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay,
                                  fused=device.type in ("cpu", "cuda"))
    total_steps = cfg.iterations * cfg.updates_per_iter
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    backend: Any = TransformersBackend(model, tokenizer, batch_size=max(cfg.num_envs, 1),
                                       prefix_cache=cfg.prefix_cache)
    servers: list[Any] = []
    if cfg.generation == "vllm_server":
        from distillgym.agents.fleet import ServerFleet

        urls, served = list(cfg.generation_urls), cfg.served_model or cfg.model
        if cfg.generation_servers:
            served = "policy"
            if served_dir is not None:
                servers = launch_servers(cfg, served_dir, out)
                urls = [srv.url for srv in servers]
            if dist.on:  # rank 0 started them; every rank generates on them
                shared: list[Any] = [urls]
                torch.distributed.broadcast_object_list(shared, src=0)
                urls = shared[0]
        if not urls:
            raise ValueError("config field generation_urls: generation=vllm_server needs at least one server URL "
                             "(or generation_servers > 0)")
        backend = ServerFleet(urls, served, tokenizer, sync_dir=cfg.weight_sync_dir or None,
                              probe_tol=cfg.probe_tol, concurrency=max(cfg.num_envs, 1),
                              lora="policy-lora" if cfg.lora else None)
    return Run(cfg, model, tokenizer, optimizer, make_schedule(optimizer, cfg, total_steps), backend, device, out,
               family, protocol, dist=dist, servers=servers, learner=learner)


def launch_servers(cfg: TrainConfig, served: Path, out: Path) -> list[Any]:
    """`cfg.generation_servers` vLLM servers on this machine, serving the starting model in `served` as "policy"
    (with runtime LoRA when the run trains adapters; the first sync gives them a resumed run's weights); ready
    when this returns."""
    from distillgym.agents.fleet import VLLMServer

    python = cfg.vllm_python or sys.executable
    servers = [VLLMServer(served, out / f"vllm-server-{i}.log", name="policy", python=python,
                          lora_rank=cfg.lora_r if cfg.lora else 0)
               for i in range(cfg.generation_servers)]
    try:
        for srv in servers:
            srv.wait_ready()
    except BaseException:
        for srv in servers:
            srv.stop()
        raise
    return servers


def sync_generation(run: Run) -> dict[str, float]:
    """With generation on servers: every server takes the learner's weights, then the probe checks them (raises
    WeightSyncError on a mismatch). Nothing to do in process: the backend reads the training weights."""
    if not hasattr(run.backend, "sync"):
        return {}
    out = {}
    if run.dist.main:  # one rank writes the weights and syncs the servers; the others wait before generating
        took = run.backend.sync(run.model)
        out = {"time/sync_s": took, "sync/probe_max_diff": run.backend.probe(run.model)}
    if run.dist.on:
        import torch.distributed as tdist

        tdist.barrier()
    return out


def evaluate(run: Run, episodes: int | None = None, teacher: Any = None) -> dict[str, float]:
    """Success and return of the current policy on held-out test tasks (greedy by default). With `teacher` (the
    privileged context of a self-teacher: True for the env's privileged info, or a per-request callable), the same
    model is also played with it on the same tasks: `eval/teacher_success` and `eval/teacher_gap` (teacher minus
    student), the margin a self-distillation method can distill."""
    cfg = run.cfg
    n = episodes or cfg.eval_episodes

    def play(privileged: Any) -> list[Any]:
        agent = model_agent(run, temperature=cfg.eval_temperature, privileged=privileged)
        return collect(agent, cfg.env, n, split="test", num_envs=cfg.num_envs, seed=cfg.seed,
                       env_kwargs=cfg.env_kwargs, progress=False)

    eps = play(False)
    out = {
        "eval/success": float(np.mean([e.success for e in eps])),
        "eval/return": float(np.mean([e.total_reward for e in eps])),
        "eval/steps": float(np.mean([e.num_steps for e in eps])),
        "eval/invalid": float(np.mean([t.invalid_action for e in eps for t in e.turns] or [0.0])),
    }
    tiles = [e.meta["final"]["max_tile"] for e in eps if "max_tile" in e.meta.get("final", {})]
    if tiles:  # 2048: the largest tile made, beside the score (eval/return)
        out["eval/max_tile"] = float(np.mean(tiles))
    if teacher is not None and teacher is not False:
        taught = float(np.mean([e.success for e in play(teacher)]))
        out.update({"eval/teacher_success": taught, "eval/teacher_gap": taught - out["eval/success"]})
    return out


def teacher_context(algo: Any, run: Run, algo_cfg: Any, state: Any) -> Any:
    """The algorithm's self-teacher context (its `teacher_context(run, cfg, state)`), when it has one and
    `eval_teacher` is on; else None."""
    fn = getattr(algo, "teacher_context", None)
    return fn(run, algo_cfg, state) if fn is not None and run.cfg.eval_teacher else None


class Logger:
    """Metrics to metrics.jsonl (and TensorBoard when installed); a resumed run drops lines past its checkpoint."""

    def __init__(self, run: Run, start_iteration: int) -> None:
        self.path = run.out / "metrics.jsonl"
        if self.path.exists():
            keep = [ln for ln in self.path.read_text().splitlines() if ln.strip()
                    and json.loads(ln).get("iteration", 0) <= start_iteration]
            self.path.write_text("".join(ln + "\n" for ln in keep))
        self.tb = None
        if run.cfg.tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(run.out / "tensorboard"), purge_step=start_iteration + 1)
            except ImportError:
                self.tb = None

    def log(self, metrics: dict[str, Any]) -> None:
        with self.path.open("a") as f:
            f.write(json.dumps(metrics) + "\n")
        if self.tb is not None:
            for k, v in metrics.items():
                if isinstance(v, int | float) and k != "iteration":
                    self.tb.add_scalar(k, v, metrics["iteration"])
            self.tb.flush()

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


def read_metrics(out_dir: str | Path) -> list[dict[str, Any]]:
    path = Path(out_dir) / "metrics.jsonl"
    return [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()] if path.exists() else []


def train(cfg: TrainConfig, algo_cfg: Any, *, resume: bool = False) -> Run:
    """Run (or resume) training; returns the finished Run. Writes checkpoints, metrics, the final model and a
    learning-curve plot under cfg.out_dir."""
    from distillgym.trainers import ALGORITHMS
    from distillgym.trainers.config import check_choices

    algo = ALGORITHMS[cfg.algo]
    check_choices(cfg)
    check_choices(algo_cfg, f"{cfg.algo}.")
    run = setup(cfg, set(algo.needs(algo_cfg)) if hasattr(algo, "needs") else set())
    try:
        return _train(run, algo, algo_cfg, resume)
    finally:
        for srv in run.servers:  # vLLM servers this run started
            srv.stop()


def check_env_offers(cfg: TrainConfig, needs: set[str], offered: frozenset[str]) -> None:
    """ValueError naming the algorithm, what it needs and the env, when the env lacks any of it (a GEM env has no
    expert, privileged information or snapshots)."""
    missing = sorted(needs - offered)
    if missing:
        what = {"expert": "an expert (expert_action)", "privileged": "privileged information (info['privileged'])",
                "snapshot": "snapshot/restore"}
        lacking = ", ".join(what[m] for m in missing)
        raise ValueError(f"config field algo: {cfg.algo} with these settings needs {lacking}, which env {cfg.env!r} "
                         "does not offer; algorithms that need none: grpo, sft with sft.data=FILE, opd with "
                         "teacher_path")


def _train(run: Run, algo: Any, algo_cfg: Any, resume: bool) -> Run:
    cfg = run.cfg
    main = run.dist.main  # under torchrun, rank 0 alone evaluates, logs and writes
    if run.dist.on and cfg.algo == "skill_sd":
        raise ValueError("config field algo: skill_sd keeps a skill store that every rank would write; run it in one "
                         "process")
    run.state = state = algo.setup(run, algo_cfg)
    if resume:
        last = checkpoint.latest(run.out)
        if last is not None:
            checkpoint.check_compatible(run, last)
            checkpoint.load(run, last)
    elif checkpoint.latest(run.out) is not None:
        raise ValueError(f"{run.out} already holds checkpoints: pass --resume to continue, or choose another out_dir")
    if main:
        (run.out / "config.json").write_text(json.dumps({"config": to_dict(cfg), "algo_config": to_dict(algo_cfg)},
                                                        indent=2, default=str))
    logger = Logger(run, run.iteration) if main else None
    sync_generation(run)  # servers start from the learner's weights (a resumed run's too)
    if run.iteration == 0 and cfg.eval_at_start and logger is not None:
        start = evaluate(run, teacher=teacher_context(algo, run, algo_cfg, state))
        logger.log({"iteration": 0, "env_steps": 0, "gen_tokens": 0, **start})
    bar = tqdm(total=cfg.iterations, initial=run.iteration, desc=f"{cfg.algo} on {cfg.env}", unit="it",
               disable=not cfg.progress or not main)
    try:
        while run.iteration < cfg.iterations:
            t = time.perf_counter()
            metrics = algo.iteration(run, algo_cfg, state)
            run.iteration += 1
            metrics.update(sync_generation(run))
            metrics = {"iteration": run.iteration, "env_steps": run.env_steps, "gen_tokens": run.gen_tokens,
                       **metrics, "time/iteration_s": time.perf_counter() - t}
            final = run.iteration == cfg.iterations
            save = final or run.iteration % max(1, cfg.checkpoint_every) == 0
            # FSDP: every rank gathers its shards of the optimizer state; rank 0 writes them whole
            optimizer_state = distributed.whole_optimizer_state(run.optimizer) if save and run.learner else None
            if logger is not None:
                if final or (cfg.eval_every and run.iteration % cfg.eval_every == 0):
                    metrics.update(evaluate(run, teacher=teacher_context(algo, run, algo_cfg, state)))
                logger.log(metrics)
                if save:
                    checkpoint.save(run, algo_cfg, optimizer_state)
            bar.update(1)
            shown = {k.split("/")[-1]: f"{v:.3g}" for k, v in metrics.items() if k in ("loss", "reward",
                     "eval/success")}
            bar.set_postfix(shown, refresh=False)
    finally:
        bar.close()
        if logger is not None:
            logger.close()
    if not main:
        return run
    final_dir = run.out / "model"
    model = run.model.merge_and_unload() if cfg.lora and hasattr(run.model, "merge_and_unload") else run.model
    model.save_pretrained(final_dir)
    run.tokenizer.save_pretrained(final_dir)
    plot_learning_curve(read_metrics(run.out), run.out / "learning_curve.png", title=f"{cfg.algo} on {cfg.env}")
    return run


def plot_learning_curve(metrics: list[dict[str, Any]], path: Path, title: str = "") -> Path | None:
    """Held-out success versus environment steps."""
    points = [(m["env_steps"], m["eval/success"]) for m in metrics if "eval/success" in m]
    if not points:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.plot([p[0] for p in points], [100 * p[1] for p in points], marker="o")
    ax.set_xlabel("training environment steps")
    ax.set_ylabel("held-out success (%)")
    ax.set_ylim(-2, 102)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
