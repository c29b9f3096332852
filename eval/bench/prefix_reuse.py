"""Multi-turn prefix reuse in the transformers backend: env steps/s of model-agent rollouts, reuse off against on.

The same rollouts (tiny preset, Sokoban, sampling at temperature 1 with per-row seeds, so both modes sample the same
replies) with `TransformersBackend(prefix_cache=False)` and `prefix_cache=True`, alternating, in one run; for a
sliding window (`--history 4`: once the window is full only the system text is shared with the previous turn) and
the whole history (`none`: each prompt extends the last one). Reports env steps/s, the ratio, the share of prompt
tokens not prefilled again, and whether the replies were the same.

    python -m distillgym.eval.bench.prefix_reuse [--history 4 none] [--parallel 32] [--max-steps 20] [--repeats 2]
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from distillgym.eval.bench.common import machine, markdown_table, write_json


def play(model: Any, tokenizer: Any, env_id: str, history: int | None, on: bool, args: Any) -> dict[str, Any]:
    from distillgym.agents.generation import SamplingParams, TransformersBackend
    from distillgym.agents.policies import ModelAgent
    from distillgym.agents.rollout import collect

    backend = TransformersBackend(model, tokenizer, batch_size=args.parallel, prefix_cache=on)
    agent = ModelAgent(backend, history=history, sampling=SamplingParams(temperature=1.0, max_tokens=args.max_tokens))
    t = time.perf_counter()
    episodes = collect(agent, env_id, args.parallel, split="train", num_envs=args.parallel, seed=0,
                       env_kwargs={"max_steps": args.max_steps}, progress=False)
    wall = time.perf_counter() - t
    steps = sum(e.num_steps for e in episodes)
    prompt_tokens = sum(len(t.prompt_ids or []) for e in episodes for t in e.turns)
    stats = backend.prefix_cache.stats() if backend.prefix_cache is not None else {"reused_share": 0.0}
    return {"wall_s": wall, "env_steps": steps, "env_steps_per_s": steps / wall,
            "mean_prompt_tokens": prompt_tokens / max(steps, 1), "reused_share": stats["reused_share"],
            "replies": [[list(t.completion_ids or []) for t in e.turns] for e in episodes]}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="tiny")
    ap.add_argument("--env", default="Sokoban-v0")
    ap.add_argument("--history", nargs="+", default=["4", "none"], help="past turns shown: numbers or 'none' (all)")
    ap.add_argument("--parallel", type=int, default=32, help="episodes played at once")
    ap.add_argument("--max-steps", type=int, default=20)
    ap.add_argument("--max-tokens", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=2, help="off/on pairs per history (the best of each is kept)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="runs/bench/prefix_reuse.json")
    args = ap.parse_args(argv)

    import torch

    from distillgym.agents.models import load

    torch.set_num_threads(args.threads)
    model, tokenizer = load(args.model)
    rows, results = [], []
    for h in args.history:
        history = None if h.lower() == "none" else int(h)
        runs: dict[bool, list[dict[str, Any]]] = {False: [], True: []}
        for _ in range(args.repeats):
            for on in (False, True):
                runs[on].append(play(model, tokenizer, args.env, history, on, args))
        best = {on: max(r, key=lambda x: x["env_steps_per_s"]) for on, r in runs.items()}
        same = sum(a == b for ea, eb in zip(best[False]["replies"], best[True]["replies"], strict=True)
                   for a, b in zip(ea, eb, strict=True))
        turns = sum(len(e) for e in best[False]["replies"])
        ratio = best[True]["env_steps_per_s"] / best[False]["env_steps_per_s"]
        result = {"history": h, "off": {k: v for k, v in best[False].items() if k != "replies"},
                  "on": {k: v for k, v in best[True].items() if k != "replies"}, "ratio": ratio,
                  "same_replies": same / max(turns, 1),
                  "all_steps_per_s": {str(on): [r["env_steps_per_s"] for r in rs] for on, rs in runs.items()},
                  "median_ratio": statistics.median(b["env_steps_per_s"] for b in runs[True])
                  / statistics.median(a["env_steps_per_s"] for a in runs[False])}
        results.append(result)
        rows.append([h, f"{best[False]['mean_prompt_tokens']:.0f}", f"{best[False]['env_steps_per_s']:.1f}",
                     f"{best[True]['env_steps_per_s']:.1f}", f"**{ratio:.2f}x**",
                     f"{100 * best[True]['reused_share']:.0f}%", f"{100 * same / max(turns, 1):.1f}%"])
    print(markdown_table(["history", "mean prompt tokens", "env steps/s, reuse off", "reuse on", "ratio",
                          "prompt tokens reused", "same replies"], rows))
    out = write_json(args.out, {"machine": machine(), "args": vars(args), "results": results})
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
