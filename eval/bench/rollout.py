"""Rollout throughput of a model agent: env steps/s and generated tokens/s with 16 and 64 parallel episodes.

Two parts, in one run:
1. generation alone, our TransformersBackend against Hugging Face `model.generate` on the same model and prompts
   (16 prompts of ~100 tokens, 64 new tokens, sampling at temperature 1): the ratio is the anchor comparison;
2. whole rollouts (`agents.rollout.collect`) of the model agent on Sokoban, with the time split between
   generation (agent.act) and everything else (environment steps, prompt building, bookkeeping).

    python -m distillgym.eval.bench.rollout [--model tiny|PATH] [--env Sokoban-v0] [--parallel 16 64] [--threads 2]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from typing import Any

from distillgym.eval.bench.common import machine, markdown_table, write_json


class _TimedAgent:
    """Wraps an agent and adds up the wall time of its act() calls."""

    def __init__(self, agent: Any) -> None:
        self.agent, self.name, self.seconds = agent, agent.name, 0.0

    def act(self, requests: Sequence[Any], seed: int) -> list[Any]:
        t = time.perf_counter()
        out = self.agent.act(requests, seed)
        self.seconds += time.perf_counter() - t
        return out


def bench_generation(model: Any, tokenizer: Any, n: int = 16, prompt_len: int = 100, new: int = 64) -> dict:
    import torch

    from distillgym.agents.generation import SamplingParams, TransformersBackend

    g = torch.Generator().manual_seed(0)
    special = set(tokenizer.all_special_ids)
    pool = torch.tensor([i for i in range(len(tokenizer)) if i not in special])
    prompts = [pool[torch.randint(len(pool), (prompt_len,), generator=g)].tolist() for _ in range(n)]
    backend = TransformersBackend(model, tokenizer, batch_size=n)
    backend.stop_ids = set()  # force exactly `new` tokens, as min_new_tokens does for model.generate
    params = SamplingParams(temperature=1.0, max_tokens=new, seed=0)
    backend.generate(prompts[:2], SamplingParams(max_tokens=4))  # warm up
    ours = []
    for _ in range(3):
        t = time.perf_counter()
        out = backend.generate(prompts, params)
        ours.append(time.perf_counter() - t)
    assert all(len(c.ids) == new for c in out)
    ids = torch.tensor(prompts)
    hf = []
    with torch.no_grad():
        for _ in range(3):
            t = time.perf_counter()
            model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=True, temperature=1.0, top_k=0,
                           max_new_tokens=new, min_new_tokens=new, pad_token_id=tokenizer.pad_token_id)
            hf.append(time.perf_counter() - t)
    tokens = n * new
    return {
        "prompts": n,
        "prompt_tokens": prompt_len,
        "new_tokens": new,
        "ours_s": min(ours),
        "hf_generate_s": min(hf),
        "ours_tok_s": tokens / min(ours),
        "hf_generate_tok_s": tokens / min(hf),
        "speedup_vs_hf_generate": min(hf) / min(ours),
    }


def bench_rollout(model: Any, tokenizer: Any, env_id: str, parallel: int, max_steps: int, max_tokens: int) -> dict:
    from distillgym.agents.generation import SamplingParams, TransformersBackend
    from distillgym.agents.policies import ModelAgent
    from distillgym.agents.rollout import collect

    backend = TransformersBackend(model, tokenizer, batch_size=parallel)
    sampling = SamplingParams(temperature=1.0, max_tokens=max_tokens)
    agent = _TimedAgent(ModelAgent(backend, sampling=sampling, history=4))
    t = time.perf_counter()
    episodes = collect(agent, env_id, parallel, num_envs=parallel, seed=0, env_kwargs={"max_steps": max_steps},
                       progress=False)
    wall = time.perf_counter() - t
    steps = sum(e.num_steps for e in episodes)
    tokens = sum(e.num_completion_tokens for e in episodes)
    return {
        "parallel": parallel,
        "episodes": len(episodes),
        "env_steps": steps,
        "generated_tokens": tokens,
        "wall_s": wall,
        "generation_s": agent.seconds,
        "env_steps_per_s": steps / wall,
        "generated_tok_per_s": tokens / wall,
        "generation_share": agent.seconds / wall,
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="tiny")
    ap.add_argument("--env", default="Sokoban-v0")
    ap.add_argument("--parallel", type=int, nargs="+", default=[16, 64])
    ap.add_argument("--max-steps", type=int, default=20, help="episode length cap (env max_steps)")
    ap.add_argument("--max-tokens", type=int, default=32, help="tokens per reply")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="runs/bench/rollout.json")
    args = ap.parse_args(argv)

    import torch

    from distillgym.agents.models import load

    torch.set_num_threads(args.threads)
    model, tokenizer = load(args.model)
    gen = bench_generation(model, tokenizer)
    print(markdown_table(
        ["backend", "16 x 64 new tokens (s)", "tok/s"],
        [["distillgym TransformersBackend", f"{gen['ours_s']:.2f}", f"{gen['ours_tok_s']:.0f}"],
         ["HF model.generate", f"{gen['hf_generate_s']:.2f}", f"{gen['hf_generate_tok_s']:.0f}"]],
    ))
    print(f"ratio (ours / HF generate): {gen['speedup_vs_hf_generate']:.2f}x\n")
    rows, results = [], []
    for p in args.parallel:
        r = bench_rollout(model, tokenizer, args.env, p, args.max_steps, args.max_tokens)
        results.append(r)
        rows.append([p, r["env_steps"], f"{r['wall_s']:.1f}", f"{r['env_steps_per_s']:.1f}",
                     f"{r['generated_tok_per_s']:.0f}", f"{100 * r['generation_share']:.0f}%"])
    print(markdown_table(["parallel episodes", "env steps", "wall s", "env steps/s", "generated tok/s",
                          "time in generation"], rows))
    out = write_json(args.out, {"machine": machine(), "threads": args.threads, "model": args.model,
                                "env": args.env, "generation": gen, "rollouts": results})
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
