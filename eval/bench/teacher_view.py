"""Does the self-teacher read its privileged context? One tiny model warm-started by SFT (expert demonstrations, each
also imitated under the teacher's prompt: `sft.teacher_prompt_copies`) with the privileged block at each placement,
then scored greedily on the same held-out tasks with the plain prompt and with the env's privileged info.

    python -m distillgym.eval.bench.teacher_view --iters 400 --episodes 64 --out runs/bench/teacher_view

Placements (`privileged_at`): "system" puts every privileged field, labelled, in the system message (the toolkit
before issue 16); "end" appends a short canonical block (the expert's next action first) to the last observation,
right before the reply. `--from MODEL_DIR` starts the SFT from a trained model instead of a fresh tiny preset (a
curriculum); `--copy-steps N` gives a fresh one the copy warm-up first (`agents/warmup.py`). `--skills` also
imitates each demonstration with its own expert-summarizer skill in the prompt and scores the model with a skill too
(`--split train`: the skill bar is on the training pool). Runs are resumable (each SFT run resumes from its last
checkpoint); the two placements train one after the other with `--threads` each, or side by side with `--parallel`
(one thread each).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
from pathlib import Path
from typing import Any

from distillgym.eval.bench.common import machine, markdown_table, write_json
from distillgym.trainers.quickstart import ENV


def env_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The env's constructor arguments: max_steps and each --env-kwarg KEY=VALUE (values parse as YAML)."""
    import yaml

    out: dict[str, Any] = {"max_steps": args.max_steps}
    for item in args.env_kwarg:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--env-kwarg takes KEY=VALUE; got {item!r}")
        out[key] = yaml.safe_load(value)
    return out


def episodes_shape(env: str, kwargs: dict[str, Any], max_tokens: int) -> list[str]:
    """The episode shape of every run: the quickstart's (one past turn) on `env`."""
    return [f"env={env}", *(f"env_kwargs.{k}={json.dumps(v)}" for k, v in kwargs.items()), f"max_tokens={max_tokens}",
            "history=1",
            "num_envs=32"]


def warm_start(base: Path, out: Path, placement: str, iters: int, threads: int, progress: bool,
               shape: list[str], skills: bool = False, rehearsal: list[str] | None = None) -> Path:
    from distillgym.trainers.config import load_config
    from distillgym.trainers.loop import train

    model = out / "model"
    if not (model / "config.json").is_file() or not (out / "done").is_file():
        cfg, acfg = load_config(None, [*shape, f"model={base}", f"out_dir={out}", "algo=sft", "tasks_per_iter=16",
                                       "lr=1e-3", "eval_every=0", "eval_episodes=8", f"iterations={iters}",
                                       f"threads={threads}", f"privileged_at={placement}",
                                       "sft.teacher_prompt_copies=true",
                                       f"sft.skill_prompt_copies={str(skills).lower()}",
                                       f"progress={str(progress).lower()}", *(rehearsal or [])])
        train(cfg, acfg, resume=True)
        (out / "done").write_text("")
    return model


def score(model: Path, placement: str, episodes: int, threads: int, env: str, kwargs: dict[str, Any],
          max_tokens: int, skills: bool = False, split: str = "test") -> dict[str, Any]:
    import torch

    from distillgym.agents.generation import SamplingParams, TransformersBackend
    from distillgym.agents.models import load
    from distillgym.agents.policies import ModelAgent
    from distillgym.eval.evaluate import evaluate

    torch.set_num_threads(threads)
    m, tok = load(str(model))
    agent = ModelAgent(TransformersBackend(m.eval(), tok, batch_size=32), history=1, name=placement,
                       sampling=SamplingParams(0.0, max_tokens=max_tokens), privileged_at=placement)
    contexts = ["plain", "privileged", *(["expert-skill"] if skills else [])]
    result = evaluate([agent], [env], episodes, contexts=contexts, num_envs=32, split=split,
                      env_kwargs=kwargs, progress=False)
    return {m.agent: {"success": m.success_rate, "ci": [m.ci_low, m.ci_high], "episodes": m.episodes,
                      "agreement": expert_agreement(result.episodes[(m.agent, m.env_id)])}
            for m in result.metrics}


def expert_agreement(episodes: list[Any]) -> float | None:
    """The share of steps whose action is the expert's next action from that state (steps where the expert has
    one): how well the player follows the hint, step by step, where success needs every step right."""
    same = total = 0
    for ep in episodes:
        for turn in ep.turns:
            expected = (turn.info.get("privileged") or {}).get("expert_action")
            if expected is not None:
                total += 1
                same += turn.action.strip() == str(expected).strip()
    return same / total if total else None


def one(placement: str, args: argparse.Namespace, base: Path, threads: int) -> dict[str, Any]:
    shape = episodes_shape(args.env, env_kwargs(args), args.max_tokens)
    model = warm_start(base, Path(args.out) / placement, placement, args.iters, threads, args.progress, shape,
                       args.skills, [f"sft.copy_rows={args.copy_rows}", f"sft.copy_gap={args.copy_gap}"])
    return score(model, placement, args.episodes, threads, args.env, env_kwargs(args), args.max_tokens, args.skills,
                 args.split)


def agree(r: dict[str, Any]) -> str:
    return "-" if r.get("agreement") is None else f"{100 * r['agreement']:.0f}"


def cell(r: dict[str, Any]) -> str:
    """'64 [52, 75]': success and its 95% Wilson interval, in %."""
    return f"{100 * r['success']:.0f} [{100 * r['ci'][0]:.0f}, {100 * r['ci'][1]:.0f}]"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", default=ENV)
    p.add_argument("--max-steps", type=int, default=10, help="episode length (the quickstart's 10 for 6x6/1)")
    p.add_argument("--env-kwarg", action="append", default=[], metavar="KEY=VALUE",
                   help="another env constructor argument (repeatable), e.g. difficulty=1 for Apps-v0")
    p.add_argument("--max-tokens", type=int, default=8, help="tokens per reply")
    p.add_argument("--families", nargs="+", default=["sokoban", "2048"], help="text the tokenizer is trained on")
    p.add_argument("--placements", nargs="+", default=["system", "end"], choices=["system", "end", "action"])
    p.add_argument("--iters", type=int, default=400, help="SFT iterations of 16 expert episodes")
    p.add_argument("--episodes", type=int, default=64, help="held-out test tasks scored")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--parallel", action="store_true", help="train the placements side by side (one thread each)")
    p.add_argument("--from", dest="start", default=None, metavar="MODEL_DIR",
                   help="start the SFT from this trained model instead of a fresh tiny preset (a curriculum: e.g. the "
                        "6x6/1 warm start, which already reads its context, trained on 6x6/2)")
    p.add_argument("--skills", action="store_true",
                   help="the SFT also imitates each demonstration with its own expert-summarizer skill in the prompt "
                        "(sft.skill_prompt_copies), and the model is also scored with a skill (context expert-skill)")
    p.add_argument("--split", default="test", choices=["train", "test"], help="the tasks scored (the skill bar "
                   "is on the training pool)")
    p.add_argument("--copy-steps", type=int, default=0,
                   help="copy warm-up steps for the fresh tiny preset (TinyConfig.copy_steps; ignored with --from)")
    p.add_argument("--copy-rows", type=int, default=0,
                   help="copy-task rows mixed into every SFT step (sft.copy_rows: a rehearsal of the warm-up)")
    p.add_argument("--copy-gap", type=int, default=0, help="sft.copy_gap: the most tokens between span and repeat")
    p.add_argument("--out", default="runs/bench/teacher_view")
    p.add_argument("--no-progress", dest="progress", action="store_false")
    args = p.parse_args()
    from distillgym.agents.models import TinyConfig, build_tiny

    base = Path(args.start) if args.start else Path(args.out) / "base"
    if not (base / "config.json").is_file():
        build_tiny(TinyConfig(seed=0, families=tuple(args.families), copy_steps=args.copy_steps), out_dir=base)
    if args.parallel:
        with mp.get_context("spawn").Pool(len(args.placements)) as pool:
            found = pool.starmap(one, [(pl, args, base, 1) for pl in args.placements])
    else:
        found = [one(pl, args, base, args.threads) for pl in args.placements]
    results = {pl: r for pl, r in zip(args.placements, found, strict=True)}
    rows = []
    for pl, r in results.items():
        plain, priv, skill = r[pl], r[f"{pl} [privileged]"], r.get(f"{pl} [expert-skill]")
        gain = [cell(skill), f"{100 * (skill['success'] - plain['success']):+.0f}"] if skill else []
        rows.append([pl, cell(plain), cell(priv), f"{100 * (priv['success'] - plain['success']):+.0f}",
                     agree(plain), agree(priv), *gain])
    head = ["placement", "plain prompt %", "with privileged info %", "teacher - student",
            "plain: steps = expert's %", "privileged: steps = expert's %"]
    print(markdown_table([*head, *(["with a skill %", "skill - plain"] if args.skills else [])], rows))
    write_json(Path(args.out) / "teacher_view.json", {
        "machine": machine(), "env": args.env, "env_kwargs": env_kwargs(args), "iters": args.iters,
        "from": args.start, "copy_steps": args.copy_steps,
        "copy_rows": args.copy_rows, "copy_gap": args.copy_gap, "skills": args.skills, "split": args.split,
        "episodes": args.episodes, "results": results})
    print(json.dumps(results))


if __name__ == "__main__":
    main()
