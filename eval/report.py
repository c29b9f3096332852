"""Reports of an evaluation run: result.json (metrics, config, versions, the command), a markdown table and a plot.

The JSON holds everything needed to redraw the table and the plot (`load_result`) and to rerun the evaluation
(the command and the package versions it ran with).
"""

from __future__ import annotations

import json
import platform
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from distillgym.eval.evaluate import EvalResult

#: packages whose versions are recorded with every result (the ones installed)
VERSIONED = ("distillgym", "gymnasium", "numpy", "torch", "transformers", "tokenizers", "datasets", "vllm")


def versions() -> dict[str, str]:
    """Python and the installed versions of the packages that shape a result."""
    out = {"python": platform.python_version(), "platform": platform.platform()}
    for name in VERSIONED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def result_dict(result: EvalResult, command: str | None = None) -> dict[str, Any]:
    """The JSON document of a run: metrics per (agent, env), config, versions, command and creation time."""
    return {
        "command": command,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "versions": versions(),
        **result.to_dict(),
    }


def write_json(result: EvalResult, path: str | Path, command: str | None = None) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result_dict(result, command), indent=2) + "\n")
    return path


def load_result(path: str | Path) -> EvalResult:
    """An EvalResult (metrics and config, no Episodes) from a result.json."""
    return EvalResult.from_dict(json.loads(Path(path).read_text()))


def short_id(env_id: str) -> str:
    from distillgym.envs.core.make import short_id as short

    return short(env_id)


def markdown_table(result: EvalResult) -> str:
    """One row per (agent, env): success % with its 95% Wilson interval, return (mean ± std), steps, generated
    tokens and invalid actions per episode, wall time and throughput."""
    header = [
        "agent", "env", "episodes", "success % [95% CI]", "mean return", "mean steps", "tokens/ep", "invalid %",
        "wall s", "ep/s",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for m in result.metrics:
        row = [
            m.agent,
            short_id(m.env_id),
            str(m.episodes),
            f"{100 * m.success_rate:.0f} [{100 * m.ci_low:.0f}, {100 * m.ci_high:.0f}]",
            f"{m.mean_return:.2f} ± {m.std_return:.2f}",
            f"{m.mean_steps:.1f}",
            f"{m.mean_tokens:.1f}",
            f"{100 * m.invalid_action_rate:.1f}",
            f"{m.wall_s:.2f}",
            f"{m.episodes_per_s:.2f}",
        ]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def write_markdown(result: EvalResult, path: str | Path, command: str | None = None) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cfg = result.config
    head = "# Evaluation\n\n"
    if command:
        head += f"```bash\n{command}\n```\n\n"
    if cfg:
        head += (
            f"{cfg.get('episodes')} tasks per env (task indices {cfg.get('task_indices')} of the "
            f"{cfg.get('split')} split), rollout seed {cfg.get('seed')}. Success: 95% Wilson interval.\n\n"
        )
    path.write_text(head + markdown_table(result) + "\n")
    return path


def plot(result: EvalResult, path: str | Path) -> Path:
    """Grouped bars of success rate per env, one color per agent, with the 95% Wilson interval as error bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    agents, envs = result.agents, result.env_ids
    width = 0.8 / max(len(agents), 1)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.0 + len(envs) * (0.5 + 0.35 * len(agents))), 4.2))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, agent in enumerate(agents):
        xs, ys, lo, hi = [], [], [], []
        for j, env in enumerate(envs):
            try:
                m = result.get(agent, env)
            except KeyError:
                continue
            xs.append(j - 0.4 + width * (k + 0.5))
            ys.append(100 * m.success_rate)
            # max(0, .): the Wilson bound at 0% or 100% can sit a rounding error past the rate
            lo.append(max(0.0, 100 * (m.success_rate - m.ci_low)))
            hi.append(max(0.0, 100 * (m.ci_high - m.success_rate)))
        ax.bar(xs, ys, width, yerr=[lo, hi], capsize=3, label=agent, color=colors[k % len(colors)],
               error_kw={"elinewidth": 1, "ecolor": "0.25"})
    ax.set_xticks(range(len(envs)))
    rotate = len(envs) > 3
    ax.set_xticklabels([short_id(e) for e in envs], rotation=30 if rotate else 0, ha="right" if rotate else "center")
    ax.set_ylim(0, 105)
    ax.set_ylabel("success rate (%)")
    n, split = result.config.get("episodes"), result.config.get("split", "test")
    title = f"Success rate per environment ({n} {split} tasks each, 95% Wilson CI)" if n else "Success rate"
    ax.set_title(title, fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")  # grows the canvas to fit a long legend (model paths)
    plt.close(fig)
    return path


def write_report(result: EvalResult, out_dir: str | Path, command: str | None = None) -> dict[str, Path]:
    """result.json, results.md and results.png in `out_dir`; returns their paths."""
    out = Path(out_dir)
    return {
        "json": write_json(result, out / "result.json", command),
        "markdown": write_markdown(result, out / "results.md", command),
        "plot": plot(result, out / "results.png"),
    }
