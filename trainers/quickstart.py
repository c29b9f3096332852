"""The quickstart: the `tiny` model learns Sokoban on a CPU in minutes.

1. SFT warm start on the expert's episodes (offline distillation): the answer format within ~50 iterations, then,
   after a plateau at chance (~300 iterations on 2 cores), reading the board;
2. GRPO with GiGPO's step advantage on the model's own rollouts (on-policy RL), 8 rooms x 8 rollouts per iteration;
3. a before/after table on held-out test rooms (success with 95% Wilson intervals) and one learning curve
   (held-out success against training environment steps, both phases).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from distillgym.trainers.config import load_config
from distillgym.trainers.loop import read_metrics, train

ENV = "Sokoban-6x6-1-v0"
# The task as the tiny model plays it (shared with eval/bench/learning.py): 10-step episodes, 8-token replies, one
# past turn in the prompt, 32 environments stepped together.
EPISODES = [f"env={ENV}", "env_kwargs.max_steps=10", "max_tokens=8", "history=1", "num_envs=32"]
SHARED = [*EPISODES, "threads=2"]


def quickstart(out: str | Path = "runs/quickstart", *, sft_iters: int = 600, rl_iters: int = 20, seed: int = 0,
               eval_episodes: int = 64, progress: bool = True) -> dict[str, Any]:
    """Run both phases and the final evaluation; returns the paths it wrote and the result table."""
    from distillgym.agents.models import TinyConfig, build_tiny

    out = Path(out)
    base = out / "base"
    if not (base / "config.json").is_file():
        build_tiny(TinyConfig(seed=seed), out_dir=base)
    # evaluations during training: the first 32 test rooms (fewer when the final table uses fewer)
    flags = [f"seed={seed}", f"progress={str(progress).lower()}", f"eval_episodes={min(32, eval_episodes)}", *SHARED]
    sft_cfg, sft_algo = load_config(None, [*flags, "algo=sft", f"model={base}", f"out_dir={out / 'sft'}",
                                           f"iterations={sft_iters}", "tasks_per_iter=16", "lr=1e-3",
                                           "sft.teacher_prompt_copies=false",  # GRPO needs no self-teacher
                                           f"eval_every={max(1, sft_iters // 6)}"])
    train(sft_cfg, sft_algo, resume=True)
    rl_cfg, rl_algo = load_config(None, [*flags, "algo=grpo", f"model={out / 'sft' / 'model'}",
                                         f"out_dir={out / 'grpo'}", f"iterations={rl_iters}", "tasks_per_iter=8",
                                         "group_size=8", "lr=3e-4", "eval_every=5", "temperature=1.0",
                                         "grpo.advantage=gigpo"])
    train(rl_cfg, rl_algo, resume=True)
    table = final_table(out, eval_episodes, seed, progress)
    curve = plot_phases(out, out / "learning_curve.png")
    (out / "results.md").write_text(table + "\n")
    return {"table": table, "curve": curve, "results": out / "results.md"}


def final_table(out: Path, episodes: int, seed: int, progress: bool) -> str:
    """Held-out success before training, after SFT and after GRPO (same test rooms, greedy)."""
    from distillgym.agents.generation import SamplingParams, TransformersBackend
    from distillgym.agents.models import load
    from distillgym.agents.policies import ModelAgent
    from distillgym.eval.evaluate import evaluate
    from distillgym.eval.report import markdown_table

    agents = []
    for name, path in [("tiny (untrained)", out / "base"), ("after SFT", out / "sft" / "model"),
                       ("after SFT + GRPO", out / "grpo" / "model")]:
        model, tok = load(path)
        agents.append(ModelAgent(TransformersBackend(model, tok), sampling=SamplingParams(temperature=0, max_tokens=8),
                                 history=1, name=name))
    result = evaluate(agents, [ENV], episodes, seed=seed, env_kwargs={"max_steps": 10}, progress=progress)
    return markdown_table(result)


def plot_phases(out: Path, path: Path) -> Path:
    """Held-out success against training environment steps, SFT then GRPO on one axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6))
    offset = 0
    for phase, color in (("sft", "tab:blue"), ("grpo", "tab:orange")):
        pts = [(m["env_steps"] + offset, 100 * m["eval/success"]) for m in read_metrics(out / phase)
               if "eval/success" in m]
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", color=color, label=phase.upper())
            offset = pts[-1][0]
    ax.set_xlabel("training environment steps")
    ax.set_ylabel("held-out success (%)")
    ax.set_ylim(-2, 102)
    ax.set_title(f"tiny model on {ENV}")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
