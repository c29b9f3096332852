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
    """The env a command names (a registered id, distillgym's namespace optional, or an entry point)."""
    import distillgym
    from distillgym.envs.core.make import canonical_id, make_env, nameable

    name = canonical_id(env_id)
    if not nameable(name):
        known = ", ".join(e.id for e in distillgym.ENVS)
        raise typer.BadParameter(f"unknown environment {env_id!r}. Registered: {known}; or an entry point, or a GEM "
                                 "id 'gem:...'", param_hint="ENV_ID")
    try:
        return make_env(name, **_env_kwargs(options), **extra)
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


@app.command()
def glad(
    env_id: Annotated[str, typer.Argument(help="Environment id, e.g. Sokoban-6x6-2-v0 (prefix optional).")],
    out: Annotated[str, typer.Option(help="JSONL file of the GLAD Episodes (each turn's chain in info['reply']).")],
    tasks: Annotated[int, typer.Option(min=1, help="Training tasks 0..N-1 (offset by --first).")] = 100,
    first: Annotated[int, typer.Option(min=0, help="First task index.")] = 0,
    split: Annotated[str, typer.Option(help="train or test.")] = "train",
    simulations: Annotated[int, typer.Option(min=1, help="MCTS simulations per move.")] = 100,
    max_depth: Annotated[int, typer.Option(min=1, help="Deepest descent of the tree.")] = 20,
    c_uct: Annotated[float, typer.Option(min=0.0, help="UCT exploration constant (Q normalized to [0, 1]).")] = 1.0,
    gamma: Annotated[float, typer.Option(min=0.0, max=1.0, help="Discount of search returns and rollouts.")] = 0.95,
    rollouts: Annotated[int, typer.Option(min=1, help="Leaf rollouts per evaluation.")] = 16,
    horizon: Annotated[int, typer.Option(min=1, help="Steps per leaf rollout.")] = 50,
    rollout_policy: Annotated[str, typer.Option(help="random | expert (with --rollout-noise).")] = "random",
    rollout_noise: Annotated[float, typer.Option(min=0.0, max=1.0, help="Expert rollouts' random-move rate.")] = 0.1,
    alternatives: Annotated[int, typer.Option(min=0, help="Runner-up moves each chain names.")] = 2,
    lookahead: Annotated[int, typer.Option(min=0, help="Moves of the search's continuation each chain names.")] = 2,
    max_steps: Annotated[int, typer.Option(min=0, help="Steps per episode (0: the env's limit).")] = 0,
    writer: Annotated[str | None, typer.Option(help="A model (directory or HF name) that writes the chains from "
                                                   "the search's facts; the template where it fails.")] = None,
    dataset: Annotated[str | None, typer.Option(help="Also save a Hugging Face dataset to this directory.")] = None,
    seed: Annotated[int, typer.Option(help="Seeds the searches.")] = 0,
    option: OptionList = None,
) -> None:
    """GLAD: search every move of seeded tasks with MCTS, compress each search into a causal chain ending in the
    chosen move, and save the episodes for SFT (`distillgym train algo=sft sft.data=OUT max_tokens=96`)."""
    from distillgym.agents.glad import GladConfig, glad_episodes
    from distillgym.eval.export import to_dataset, write_jsonl

    if rollout_policy not in ("random", "expert"):
        raise typer.BadParameter(f"must be random or expert, got {rollout_policy!r}", param_hint="--rollout-policy")
    env = _make(env_id, option)
    cfg = GladConfig(simulations=simulations, max_depth=max_depth, c_uct=c_uct, gamma=gamma, rollouts=rollouts,
                     horizon=horizon, rollout_policy=rollout_policy, rollout_noise=rollout_noise,
                     alternatives=alternatives, lookahead=lookahead, max_steps=max_steps)
    backend = None
    if writer is not None:
        from distillgym.agents.generation import TransformersBackend
        from distillgym.agents.models import load

        model, tokenizer = load(writer)
        backend = TransformersBackend(model, tokenizer, batch_size=1, name=writer)
    start = time.perf_counter()
    try:
        episodes = glad_episodes(env, range(first, first + tasks), split=split, cfg=cfg, backend=backend, seed=seed)
    finally:
        env.close()
    path = write_jsonl(episodes, out)
    if dataset:
        to_dataset(episodes).save_to_disk(dataset)
    wins = sum(e.success for e in episodes)
    steps = sum(e.num_steps for e in episodes)
    by_model = sum(e.meta.get("chains_by_model", 0) for e in episodes)
    typer.echo(f"{len(episodes)} episodes ({wins} solved, {steps} chains, {by_model} written by the model) -> {path} "
               f"in {time.perf_counter() - start:.1f} s")


@app.command("eval")
def eval_command(
    agent: Annotated[
        list[str],
        typer.Option("--agent", "-a", help="expert, random, tiny, a model directory or an HF name; repeatable."),
    ],
    env: Annotated[
        list[str], typer.Option("--env", "-e", help="Environment id (prefix optional) or 'all'; repeatable.")
    ],
    episodes: Annotated[int, typer.Option(min=1, help="Seeded tasks per env (task indices 0..N-1).")] = 20,
    out: Annotated[str | None, typer.Option(help="Output folder (default runs/eval/<time>).")] = None,
    split: Annotated[str, typer.Option(help="train or test.")] = "test",
    seed: Annotated[int, typer.Option(help="Rollout seed (the agents' randomness).")] = 0,
    num_envs: Annotated[int, typer.Option(min=1, help="Environments played at once per (agent, env).")] = 16,
    temperature: Annotated[float, typer.Option(min=0.0, help="Model sampling temperature (0 = greedy).")] = 0.0,
    max_tokens: Annotated[int, typer.Option(min=1, help="Model tokens per reply.")] = 32,
    history: Annotated[int, typer.Option(help="Past turns in a model's prompt (-1 = all).")] = 4,
    batch_size: Annotated[int, typer.Option(min=1, help="Model prompts per generation batch.")] = 64,
    export_jsonl: Annotated[bool, typer.Option(help="Also write every Episode to episodes.jsonl.")] = False,
    export_dataset: Annotated[bool, typer.Option(help="Also save a Hugging Face dataset to dataset/.")] = False,
    progress: Annotated[bool, typer.Option(help="Progress bars on stderr.")] = True,
    context: Annotated[
        list[str] | None,
        typer.Option("--context", "-c", help="What a model agent is shown besides its prompt, repeatable (each "
                     "plays the same tasks; the teacher's view side by side): plain, privileged, expert-skill, "
                     "skill:STORE. Default: plain."),
    ] = None,
    privileged_at: Annotated[
        str, typer.Option(help="Where a privileged context goes in a model's prompt, as it was trained: end, system "
                          "or action.")
    ] = "end",
    option: OptionList = None,
) -> None:
    """Evaluate agents on environments over the same seeded tasks; write result.json, results.md, results.png.

    Example: distillgym eval --agent expert --agent random --env Sokoban-6x6-2-v0 --episodes 20 --out runs/eval/x

    The teacher's view: distillgym eval -a runs/x/model -e Sokoban-6x6-1-v0 -c plain -c privileged -c expert-skill
    """
    import shlex
    from pathlib import Path

    from distillgym.eval.evaluate import (
        UnknownAgentError,
        UnknownEnvError,
        check_agent_spec,
        evaluate,
        parse_context,
        resolve_env_ids,
    )
    from distillgym.eval.export import save_dataset, write_jsonl
    from distillgym.eval.report import markdown_table, write_report

    try:
        env_ids = resolve_env_ids(env)
    except UnknownEnvError as e:
        raise typer.BadParameter(str(e), param_hint="--env") from e
    try:
        for spec in agent:
            check_agent_spec(spec)
    except UnknownAgentError as e:
        raise typer.BadParameter(str(e), param_hint="--agent") from e
    contexts = list(context or ["plain"])
    try:
        for spec in contexts:
            parse_context(spec)
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--context") from e
    from distillgym.agents.prompts import PRIVILEGED_PLACES

    if privileged_at not in PRIVILEGED_PLACES:
        raise typer.BadParameter(f"must be one of {PRIVILEGED_PLACES}, got {privileged_at!r}",
                                 param_hint="--privileged-at")
    env_kwargs = _env_kwargs(option)
    out_dir = Path(out) if out else Path("runs/eval") / time.strftime("%Y%m%d-%H%M%S")
    argv = ["distillgym", "eval"]
    argv += [x for a in agent for x in ("--agent", a)] + [x for e in env for x in ("--env", e)]
    argv += ["--episodes", str(episodes), "--out", str(out_dir), "--split", split, "--seed", str(seed)]
    argv += ["--num-envs", str(num_envs), "--temperature", str(temperature), "--max-tokens", str(max_tokens)]
    argv += ["--history", str(history), "--batch-size", str(batch_size)]
    argv += [x for c in contexts for x in ("--context", c)] + ["--privileged-at", privileged_at]
    argv += [x for o in option or [] for x in ("-o", o)]
    argv += ["--export-jsonl"] * export_jsonl + ["--export-dataset"] * export_dataset
    try:
        result = evaluate(
            agent, env_ids, episodes, split=split, seed=seed, num_envs=num_envs, env_kwargs=env_kwargs,
            temperature=temperature, max_tokens=max_tokens, history=None if history < 0 else history,
            batch_size=batch_size, progress=progress, contexts=contexts, privileged_at=privileged_at,
        )
    except UnknownAgentError as e:
        raise typer.BadParameter(str(e), param_hint="--agent") from e
    except TypeError as e:  # an env option the environment does not take
        raise typer.BadParameter(str(e), param_hint="--option") from e
    paths = write_report(result, out_dir, command=shlex.join(argv))
    if export_jsonl:
        paths["episodes"] = write_jsonl(result.all_episodes(), out_dir / "episodes.jsonl")
    if export_dataset:
        if not progress:
            import datasets

            datasets.disable_progress_bars()
        paths["dataset"] = save_dataset(result.all_episodes(), out_dir / "dataset")
    typer.echo(markdown_table(result))
    typer.echo("\nwrote " + ", ".join(str(p) for p in paths.values()))


def _train_help() -> str:
    from distillgym.trainers import SUMMARIES

    algos = "\n\n".join(f"{name}: {line}" for name, line in SUMMARIES.items())
    return (
        "Train an agent. Overrides follow as KEY=VALUE (e.g. algo=grpo env=Sokoban-v0 grpo.clip_high=0.28); "
        "--help-config lists every field.\n\nExample: distillgym train algo=sft iterations=20 "
        f"out_dir=runs/train/sft\n\nAlgorithms (algo=NAME):\n\n{algos}"
    )


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": False}, help=_train_help())
def train(
    ctx: typer.Context,
    config: Annotated[str | None, typer.Option("--config", "-c", help="YAML config file.")] = None,
    resume: Annotated[bool, typer.Option(help="Continue from the last checkpoint in out_dir.")] = False,
    help_config: Annotated[bool, typer.Option("--help-config", help="List every config field and exit.")] = False,
) -> None:
    """Train an agent (the help text is `_train_help()`: it names every algorithm)."""
    from distillgym.trainers.config import TrainConfig, describe, load_config

    if help_config:
        from distillgym.trainers import ALGORITHMS

        typer.echo("Shared fields:\n" + describe(TrainConfig))
        for name in ALGORITHMS:
            typer.echo(f"\n{name}.* fields:\n" + describe(ALGORITHMS[name].Config))
        return
    try:
        cfg, algo_cfg = load_config(config, list(ctx.args))
    except (ValueError, FileNotFoundError) as e:
        raise typer.BadParameter(str(e), param_hint="config") from e
    from distillgym.trainers.loop import read_metrics, train

    try:
        run = train(cfg, algo_cfg, resume=resume)
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="config") from e
    if not run.dist.main:  # under torchrun, rank 0 reports
        return
    evals = [m for m in read_metrics(run.out) if "eval/success" in m]
    if evals:
        first, last = evals[0], evals[-1]
        typer.echo(f"held-out success: {100 * first['eval/success']:.1f}% at iteration {first['iteration']} -> "
                   f"{100 * last['eval/success']:.1f}% at iteration {last['iteration']}")
    typer.echo(f"wrote {run.out / 'model'}, {run.out / 'metrics.jsonl'}, {run.out / 'learning_curve.png'}")


@app.command()
def quickstart(
    out: Annotated[str, typer.Option(help="Output folder.")] = "runs/quickstart",
    sft_iters: Annotated[int, typer.Option(min=0, help="SFT iterations (16 expert episodes each).")] = 600,
    rl_iters: Annotated[int, typer.Option(min=0, help="GRPO iterations (8 tasks x 8 rollouts each).")] = 20,
    seed: Annotated[int, typer.Option(help="Seed of the model, the tasks and the sampling.")] = 0,
    episodes: Annotated[int, typer.Option(min=1, help="Held-out test rooms in the final table.")] = 64,
    progress: Annotated[bool, typer.Option(help="Progress bars on stderr.")] = True,
) -> None:
    """Train the tiny model on Sokoban on a CPU: SFT on the expert, then GRPO; print a before/after table."""
    from distillgym.trainers.quickstart import quickstart as run_quickstart

    result = run_quickstart(out, sft_iters=sft_iters, rl_iters=rl_iters, seed=seed, eval_episodes=episodes,
                            progress=progress)
    typer.echo(result["table"])
    typer.echo(f"\nwrote {result['results']}, {result['curve']}")


skills_app = typer.Typer(no_args_is_help=True, help="Inspect and maintain a Skill-SD skill store (SQLite).")
app.add_typer(skills_app, name="skills")

StorePath = Annotated[str, typer.Option("--store", help="The skill store (an SQLite file).")]


def _open_store(store: str) -> Any:
    from pathlib import Path

    from distillgym.skills import SkillStore

    if not Path(store).exists():
        raise typer.BadParameter(f"no skill store at {store}", param_hint="--store")
    return SkillStore(store)


@skills_app.command("list")
def skills_list(
    store: StorePath,
    family: Annotated[str | None, typer.Option(help="Only this env family (e.g. sokoban).")] = None,
    task: Annotated[str | None, typer.Option(help="Only this task key.")] = None,
) -> None:
    """A table of the skills: id, family, task, uses, mean reward, version, first line."""
    with _open_store(store) as db:
        skills = db.list(family, task)
    rows = [
        (str(s.id), s.task_family, s.task_key, str(s.uses), f"{s.mean_reward:.3f}", str(s.version),
         " ".join(s.success_analysis.split())[:60])
        for s in skills
    ]
    header = ("id", "family", "task", "uses", "mean_reward", "version", "first line")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, *rows]:
        typer.echo("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    typer.echo(f"{len(rows)} skill(s)")


@skills_app.command("show")
def skills_show(
    skill_id: Annotated[int, typer.Argument(help="The skill's id.")],
    store: StorePath,
) -> None:
    """One skill: its record and the text the teacher sees."""
    with _open_store(store) as db:
        try:
            s = db.get(skill_id)
        except KeyError as e:
            typer.echo(str(e.args[0]), err=True)
            raise typer.Exit(1) from e
    typer.echo(f"id {s.id}  family {s.task_family}  task {s.task_key}  version {s.version}")
    typer.echo(f"uses {s.uses}  mean reward {s.mean_reward:.3f}  created {s.created_at}  updated {s.updated_at}")
    typer.echo(f"sources: {', '.join(s.source_episodes) or '-'}")
    if s.task_text:
        typer.echo(f"task text: {' '.join(s.task_text.split())[:300]}")
    typer.echo("")
    typer.echo(s.text())


@skills_app.command("export")
def skills_export(
    store: StorePath,
    out: Annotated[str, typer.Option("--out", help="The JSONL file to write.")],
) -> None:
    """Write every skill as one JSON line."""
    with _open_store(store) as db:
        n = db.export(out)
    typer.echo(f"wrote {n} skill(s) to {out}")


@skills_app.command("prune")
def skills_prune(
    store: StorePath,
    min_uses: Annotated[int, typer.Option(min=0, help="Judge by reward only skills used at least this often.")] = 0,
    max_mean_reward: Annotated[
        float | None, typer.Option(help="Remove skills (used >= min-uses times) with mean reward <= this.")
    ] = None,
    keep_per_task: Annotated[int | None, typer.Option(min=0, help="Keep only the best K skills per task.")] = None,
) -> None:
    """Remove poor skills and cap the number per task."""
    with _open_store(store) as db:
        n = db.prune(min_uses=min_uses, max_mean_reward=max_mean_reward, keep_per_task=keep_per_task)
        left = len(db)
    typer.echo(f"removed {n} skill(s), {left} left")


demos_app = typer.Typer(no_args_is_help=True, help="Build and inspect an in-context demonstration store (SQLite).")
app.add_typer(demos_app, name="demos")


@demos_app.command("build")
def demos_build(
    env_id: Annotated[str, typer.Argument(help="Environment id, e.g. Household-v0 (prefix optional).")],
    out: Annotated[str, typer.Option(help="The store (SQLite file; added to when it exists).")],
    episodes: Annotated[int, typer.Option(min=1, help="Training tasks first..first+N-1 the teacher plays.")] = 100,
    first: Annotated[int, typer.Option(min=0, help="First task index.")] = 0,
    teacher: Annotated[str, typer.Option(help="expert (priced by --student's tokenizer) or a model directory.")] = (
        "expert"),
    student: Annotated[str, typer.Option(help="The student model: its tokenizer counts the expert's tokens.")] = (
        "tiny"),
    retriever: Annotated[str, typer.Option(help="auto (embed where installed), embed (all-MiniLM-L6-v2, offline) "
                                                "or bm25.")] = "auto",
    num_envs: Annotated[int, typer.Option(min=1, help="Environments played at once.")] = 16,
    max_tokens: Annotated[int, typer.Option(min=1, help="A model teacher's tokens per reply.")] = 48,
    option: OptionList = None,
) -> None:
    """Play training tasks with the teacher and keep its successful episodes as per-step demonstrations (goal,
    plan, observation, reasoning, action) with what they cost the teacher in tokens."""
    from distillgym.agents.cascade import CascadeAgent, CascadeConfig
    from distillgym.agents.generation import SamplingParams
    from distillgym.agents.policies import ExpertAgent, ModelAgent, make_agent
    from distillgym.agents.rollout import collect
    from distillgym.envs.core.protocol import family_of
    from distillgym.skills.demos import DemoStore

    if retriever not in ("auto", "bm25", "embed"):
        raise typer.BadParameter(f"must be auto, bm25 or embed, got {retriever!r}", param_hint="--retriever")
    stu = make_agent(student)
    assert isinstance(stu, ModelAgent)
    who = ExpertAgent() if teacher == "expert" else make_agent(
        teacher, sampling=SamplingParams(temperature=0.0, max_tokens=max_tokens))
    agent = CascadeAgent(stu, who, None, CascadeConfig(mode="teacher", k=0))
    env = _make(env_id, option)
    family = family_of(env)
    env.close()
    from distillgym.envs.core.make import canonical_id

    eps = collect(agent, canonical_id(env_id), list(range(first, first + episodes)), split="train",
                  num_envs=num_envs, env_kwargs=_env_kwargs(option), desc=f"{teacher} demonstrations")
    with DemoStore(out, retriever=retriever) as store:
        kept = store.add_episodes(eps, family=family, teacher=teacher)
        cost = store.cost(family)
    wins = sum(e.success for e in eps)
    typer.echo(f"{wins}/{len(eps)} episodes solved; {kept} steps kept -> {out} (family {family}: "
               f"{cost['episodes']} episodes, {cost['steps']} steps, teacher tokens {cost['input_tokens']} in / "
               f"{cost['output_tokens']} out)")


@demos_app.command("show")
def demos_show(store: Annotated[str, typer.Argument(help="The store (SQLite file).")]) -> None:
    """What a demonstration store holds, per family, and what it cost."""
    from pathlib import Path

    from distillgym.skills.demos import DemoStore

    if not Path(store).is_file():
        raise typer.BadParameter(f"no demonstration store at {store!r}", param_hint="STORE")
    with DemoStore(store) as db:
        for fam in db.families():
            c = db.cost(fam)
            typer.echo(f"{fam}: {c['episodes']} episodes, {c['steps']} steps, teacher tokens "
                       f"{c['input_tokens']} in / {c['output_tokens']} out")


@app.command()
def serve(
    cascade: Annotated[str, typer.Option(help="The cascade spec (JSON: student, teacher, demos, cascade).")],
    env: Annotated[str | None, typer.Option(help="The env family whose prompts and parser the cascade uses.")] = None,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port.")] = 8000,
    model_name: Annotated[str, typer.Option(help="The model name clients ask for.")] = "distillgym-cascade",
    token: Annotated[str | None, typer.Option(envvar="DISTILLGYM_TOKEN", help="Require this bearer token.")] = None,
    max_sessions: Annotated[int, typer.Option(min=1, help="Open sessions kept (the oldest dropped).")] = 1024,
    session_ttl: Annotated[float, typer.Option(min=1.0, help="Seconds a session lives idle.")] = 600.0,
    max_batch: Annotated[int, typer.Option(min=1, help="Requests per generation batch.")] = 64,
    batch_window_ms: Annotated[float, typer.Option(min=0.0, help="How long a batch waits for company.")] = 5.0,
    max_body_bytes: Annotated[int, typer.Option(min=1024, help="Largest request body.")] = 1 << 20,
    max_messages: Annotated[int, typer.Option(min=1, help="Most messages in a chat request.")] = 64,
    max_tokens: Annotated[int, typer.Option(min=1, help="Largest max_tokens a chat request may ask for.")] = 1024,
    keep_alive: Annotated[float, typer.Option(min=1.0, help="Seconds an idle connection stays open.")] = 75.0,
    log_level: Annotated[str, typer.Option(help="uvicorn's log level.")] = "warning",
) -> None:
    """Serve an in-context cascade over HTTP: OpenAI-compatible /v1/chat/completions and /v1/models, sessions and
    /v1/act, /health and /metrics (see docs/serving.md)."""
    from distillgym.agents.cascade import CascadeSpec, build
    from distillgym.agents.serve import CascadeServer, ServeConfig, run
    from distillgym.envs.core.protocol import DEFAULT_PROTOCOL, family_of, protocol_of

    try:
        spec = CascadeSpec.load(cascade)
    except (ValueError, OSError) as e:
        raise typer.BadParameter(str(e), param_hint="--cascade") from e
    family, protocol = "text", DEFAULT_PROTOCOL
    if env is not None:
        made = _make(env, None)
        family, protocol = family_of(made), protocol_of(made)
        made.close()
    cfg = ServeConfig(host=host, port=port, model_name=model_name, token=token, max_sessions=max_sessions,
                      session_ttl_s=session_ttl, max_batch=max_batch, batch_window_ms=batch_window_ms,
                      max_body_bytes=max_body_bytes, max_messages=max_messages, max_tokens=max_tokens,
                      keep_alive_s=keep_alive, history=spec.cascade.history)
    try:
        server = CascadeServer(build(spec), cfg, family=family, protocol=protocol)
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--cascade") from e
    typer.echo(f"serving {model_name} on http://{host}:{port} (family {family})", err=True)
    run(server, log_level=log_level)


@app.command("serve-env")
def serve_env(
    env_id: Annotated[str, typer.Argument(help="The environment to serve (a registered id, prefix optional).")],
    option: OptionList = None,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port.")] = 8000,
    privileged: Annotated[bool, typer.Option(help="Send each step's privileged information to clients.")] = False,
    max_sessions: Annotated[int, typer.Option(min=1, help="Concurrent sessions (one env each).")] = 64,
    session_timeout: Annotated[float, typer.Option(min=0.0, help="Idle seconds before a session ends (0: never).")
                               ] = 300.0,
    log_level: Annotated[str, typer.Option(help="uvicorn's log level.")] = "warning",
) -> None:
    """Serve an environment as an OpenEnv server (openenv-core): one env per WebSocket session at /ws, info in each
    observation, privileged information only with --privileged (see docs/interop.md)."""
    import uvicorn

    from distillgym.envs.core.make import canonical_id, nameable

    name = canonical_id(env_id)
    if not nameable(name):
        raise typer.BadParameter(f"unknown environment {env_id!r}", param_hint="ENV_ID")
    try:
        from distillgym.envs.interop.openenv import app as openenv_app
    except ImportError as e:
        raise typer.BadParameter(str(e), param_hint="ENV_ID") from e
    try:
        server = openenv_app(name, privileged=privileged, max_sessions=max_sessions,
                             session_timeout_s=session_timeout or None, env_kwargs=_env_kwargs(option))
    except (TypeError, ValueError) as e:
        raise typer.BadParameter(str(e), param_hint="--option") from e
    typer.echo(f"serving {name} (OpenEnv) on http://{host}:{port}, WebSocket /ws, up to {max_sessions} sessions",
               err=True)
    uvicorn.run(server, host=host, port=port, log_level=log_level)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
