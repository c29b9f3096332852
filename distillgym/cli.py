"""The `distillgym` command line: list environments, play them, watch the expert."""

from __future__ import annotations

import sys
import time
from typing import Annotated, Any

import typer
import yaml

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="distillgym: multi-turn text environments for LLM agents, and self-distillation trainers.",
)

OptionList = Annotated[
    list[str] | None,
    typer.Option("--option", "-o", help="Environment keyword argument KEY=VALUE (YAML value), repeatable."),
]


def _env_kwargs(options: list[str] | None) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    for item in options or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint="--option")
        kwargs[key.strip()] = yaml.safe_load(value)
    return kwargs


def _make(env_id: str, options: list[str] | None, **extra: Any) -> Any:
    import gymnasium as gym

    import distillgym

    if env_id not in gym.registry and f"distillgym/{env_id}" in gym.registry:
        env_id = f"distillgym/{env_id}"
    if env_id not in gym.registry:
        known = ", ".join(e.id for e in distillgym.ENVS)
        raise typer.BadParameter(f"unknown environment {env_id!r}. Registered: {known}", param_hint="ENV_ID")
    try:
        return gym.make(env_id, **_env_kwargs(options), **extra)
    except TypeError as e:
        raise typer.BadParameter(str(e), param_hint="--option") from e


@app.command()
def envs() -> None:
    """List the registered environments, one line each."""
    from distillgym.registration import ENVS

    width = max(len(e.id) for e in ENVS)
    for e in ENVS:
        typer.echo(f"{e.id:<{width}}  {e.summary}")


@app.command()
def play(
    env_id: Annotated[str, typer.Argument(help="Environment id, e.g. distillgym/Sokoban-v0 (prefix optional).")],
    seed: Annotated[int, typer.Option(help="Task seed (index inside the split).")] = 0,
    split: Annotated[str, typer.Option(help="train or test.")] = "train",
    option: OptionList = None,
) -> None:
    """Play an environment in the terminal, seeing exactly the text an agent sees.

    Type an action and press Enter (empty lines are ignored). `hint` shows the expert's next move,
    `actions` the admissible ones,
    `restart` starts the task again, `quit` leaves.
    """
    env = _make(env_id, option, split=split)
    obs, info = env.reset(seed=seed)
    typer.echo(f"== {env.spec.id}  split={split} seed={seed}\n== Task:\n{info['task']}\n")
    typer.echo(obs)
    total, steps = 0.0, 0
    while True:
        try:
            line = input("> ")
        except EOFError:
            typer.echo("")
            break
        command = line.strip().lower()
        if not command:
            continue
        if command in ("quit", "exit", "q"):
            break
        if command == "hint":
            move = env.unwrapped.expert_action()
            typer.echo(f"hint: {move}" if move is not None else "hint: the expert has no move from here.")
            continue
        if command == "actions":
            typer.echo(f"admissible actions: {info['admissible_actions']}")
            continue
        if command == "restart":
            obs, info = env.reset(seed=seed)
            total, steps = 0.0, 0
            typer.echo(obs)
            continue
        obs, reward, terminated, truncated, info = env.step(line)
        total += reward
        steps += 1
        typer.echo(obs)
        typer.echo(f"(reward {reward:+.2f}, return {total:+.2f}, step {steps})")
        if terminated or truncated:
            verdict = "SUCCESS" if info["success"] else "failed"
            typer.echo(f"== Episode over after {steps} steps: {verdict}, return {total:+.2f}")
            break
    env.close()


@app.command()
def expert(
    env_id: Annotated[str, typer.Argument(help="Environment id, e.g. distillgym/Sokoban-v0 (prefix optional).")],
    episodes: Annotated[int, typer.Option(help="Number of seeded episodes.")] = 20,
    seed: Annotated[int, typer.Option(help="First task seed.")] = 0,
    split: Annotated[str, typer.Option(help="train or test.")] = "test",
    show: Annotated[bool, typer.Option(help="Print every step of the first episode.")] = True,
    option: OptionList = None,
) -> None:
    """Let the built-in expert play seeded tasks and report success, return and steps."""
    from tqdm import tqdm

    env = _make(env_id, option, split=split)
    results = []
    start = time.perf_counter()
    for k in tqdm(range(episodes), desc="expert episodes", unit="ep", file=sys.stderr, disable=episodes < 2):
        obs, info = env.reset(seed=seed + k)
        verbose = show and k == 0
        if verbose:
            typer.echo(f"== {env.spec.id} task {seed + k}\n{obs}")
        total, steps, done = 0.0, 0, False
        while not done:
            move = env.unwrapped.expert_action()
            obs, reward, terminated, truncated, info = env.step(move if move is not None else "")
            total += reward
            steps += 1
            done = terminated or truncated
            if verbose:
                typer.echo(f"-- {move} (reward {reward:+.2f})\n{obs}")
        results.append((info["success"], total, steps))
    elapsed = time.perf_counter() - start
    n = len(results)
    wins = sum(r[0] for r in results)
    typer.echo("\n| env | episodes | success | mean return | mean steps | wall s |\n|---|---|---|---|---|---|")
    typer.echo(
        f"| {env.spec.id} | {n} | {wins}/{n} ({100 * wins / n:.0f}%) | {sum(r[1] for r in results) / n:.2f} "
        f"| {sum(r[2] for r in results) / n:.1f} | {elapsed:.2f} |"
    )
    env.close()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
