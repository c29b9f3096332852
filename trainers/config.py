"""Run configuration: one dataclass of shared fields plus each algorithm's own dataclass, from YAML files and
`key=value` overrides, with a clear error that names any unknown or misspelled field.

A YAML file holds the shared fields at the top level and the algorithm's fields under its name:

    algo: grpo
    env: Sokoban-6x6-1-v0
    iterations: 30
    grpo:
      clip_high: 0.28

Overrides use the same names: `lr=1e-3`, `grpo.clip_high=0.28`, `env_kwargs.max_steps=20` (values parse as YAML).
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, get_args, get_origin, get_type_hints

import yaml


def opt(default: Any = dataclasses.MISSING, help: str = "", *, factory: Callable[[], Any] | None = None) -> Any:
    """A config field with its documentation (`distillgym train --help-config` prints it)."""
    if factory is not None:
        return field(default_factory=factory, metadata={"help": help})
    return field(default=default, metadata={"help": help})


# ------------------------------------------------------------------------ field groups several algorithms share

LossAgg = Literal["grpo", "bnpo", "dr_grpo", "dapo"]


@dataclass
class Reduce:
    """How per-token losses reduce to a step's loss (see losses.aggregate)."""

    loss_agg: LossAgg = opt(
        "dapo", "grpo (mean per sequence, then over sequences) | bnpo (sum / active tokens of the micro-batch) | "
        "dr_grpo (sum / (B x max length)) | dapo (sum / active tokens of the whole step; TRL's default)")


@dataclass
class Clip:
    """The PPO clip of a policy-gradient step."""

    clip_low: float = opt(0.2, "PPO clip below 1: ratios >= 1 - clip_low")
    clip_high: float = opt(0.2, "PPO clip above 1: ratios <= 1 + clip_high (DAPO's clip-higher uses 0.28)")
    ratio_cap: float = opt(0.0, "drop tokens whose ratio pi/pi_old exceeds this from the loss (0: off; ProAct: 5)")


@dataclass
class Distill:
    """Distillation toward a teacher's full next-token distribution."""

    jsd_beta: float = opt(0.5, "generalized JSD mix: 0 forward KL, 1 reverse KL (0.5: TRL's and OPSD's default)")
    ema_decay: float = opt(0.999, "teacher=ema: teacher <- decay x teacher + (1 - decay) x student, every step")


@dataclass
class TrainConfig:
    """Fields every algorithm shares (`distillgym train --help-config` lists them with their documentation)."""

    algo: str = opt("grpo", "sft | grpo | opd | opsd | pi_distill | skill_sd | mc_grpo | mc_ppo (distillgym train "
                    "--help: what each is)")
    env: str = opt("Sokoban-6x6-1-v0", "a registered id (with or without 'distillgym/') or an entry point "
                   "'package.module:EnvClass'")
    env_kwargs: dict[str, Any] = opt(factory=dict, help="passed to the env's constructor (e.g. max_steps)")
    model: str = opt("tiny", "'tiny', a local model directory, or a Hugging Face name (offline with HF_HUB_OFFLINE=1)")
    out_dir: str = opt("runs/train/default", 'checkpoints, metrics.jsonl, TensorBoard logs, plots')
    seed: int = opt(0, 'seeds rollouts, sampling and initialization; same seed, same run (on CPU)')
    iterations: int = opt(20, 'collect -> loss -> update rounds')
    tasks_per_iter: int = opt(8, 'distinct training tasks per iteration')
    group_size: int = opt(4, 'rollouts per task (GRPO groups)')
    train_pool: int = opt(0, 'draw tasks from train indices [0, train_pool); 0: a fresh task every time')
    num_envs: int = opt(32, 'environments stepped in parallel during rollouts')
    history: int | None = opt(2, 'past turns shown in the prompt (None: all)')
    privileged_at: Literal["end", "system", "action"] = opt(
        "end", "a teacher's privileged block: end (short, after the last observation) | system | action (the "
        "expert's next action alone, as the reply writes it, after the last observation)")
    temperature: float = opt(1.0, 'sampling temperature for rollouts')
    top_p: float = opt(1.0, 'nucleus sampling for rollouts')
    max_tokens: int = opt(16, 'tokens per reply')
    generation: Literal["transformers", "vllm_server"] = opt(
        "transformers", "where rollouts are generated: transformers (in process, the training weights themselves) | "
        "vllm_server (vLLM OpenAI-compatible servers at generation_urls, weights synced after every iteration)")
    generation_urls: list[str] = opt(factory=list, help="generation=vllm_server: the servers' root URLs")
    generation_servers: int = opt(0, "generation=vllm_server: start this many vLLM servers on this machine from the "
                                  "starting model (stopped with the run); 0: use generation_urls")
    vllm_python: str = opt("", "the Python interpreter that has vLLM, for generation_servers (default: this one; "
                           "e.g. .vllm-venv/bin/python)")
    served_model: str = opt("", "generation=vllm_server: the model name the servers serve (default: model)")
    weight_sync_dir: str = opt("", "generation=vllm_server: where the learner writes weights for the servers to "
                               "read (default: a directory under /dev/shm)")
    probe_tol: float = opt(0.02, "generation=vllm_server: the largest logprob difference between a server and the "
                           "learner on the probe tokens before training stops")
    prefix_cache: bool = opt(True, "reuse the keys and values of prompt prefixes seen before (the system text, an "
                             "episode's earlier turns) in the transformers backend; exact, forgotten after each update")
    lr: float = opt(1e-3, 'AdamW learning rate (use ~1e-5 for real models, ~1e-3 for tiny)')
    weight_decay: float = opt(0.0, 'AdamW weight decay')
    betas: tuple[float, float] = opt((0.9, 0.999), 'AdamW betas')
    schedule: Literal["constant", "linear", "cosine"] = opt(
        "constant", "learning-rate schedule after warmup: constant | linear (to 0) | cosine (to 0)")
    warmup_steps: int = opt(0, 'linear warmup, in optimizer steps')
    max_grad_norm: float = opt(1.0, 'gradient clipping (0: off)')
    micro_batch_size: int = opt(16, 'sequences per forward/backward (gradient accumulation over the batch)')
    updates_per_iter: int = opt(1, "optimizer steps over each iteration's batch, every algorithm (PPO epochs)")
    lora: bool = opt(False, 'train LoRA adapters (peft) instead of all weights')
    lora_r: int = opt(8, 'LoRA rank')
    lora_alpha: int = opt(16, 'LoRA scaling')
    lora_targets: list[str] = opt(factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"],
                                  help="the modules LoRA adapts")
    device: str = opt("auto", 'auto (cuda when available) | cpu | cuda | cuda:N')
    dtype: Literal["fp32", "bf16"] = opt(
        "fp32", "training forward passes: fp32 | bf16 (autocast to bfloat16 with fp32 master weights and optimizer "
        "state; for GPUs: these CPUs gain nothing from it)")
    gradient_checkpointing: bool = opt(False, "recompute activations in the backward pass (less memory, ~30% more "
                                       "compute; for real models)")
    bucket_by_length: bool = opt(True, "form micro-batches of similar lengths (less padding; the step's gradient is "
                                 "the same sum)")
    parallel: Literal["ddp", "fsdp"] = opt(
        "ddp", "under torchrun: ddp (every rank holds the whole model and optimizer; gradients all-reduced) | fsdp "
        "(FSDP2 fully_shard: weights, gradients and optimizer state sharded over ranks for the update; each rank "
        "keeps a whole copy of the weights for generation and scoring). One process: ignored")
    threads: int = opt(0, "torch CPU threads (0: torch's default)")
    eval_every: int = opt(5, 'evaluate on held-out test tasks every N iterations (0: only at the end)')
    eval_episodes: int = opt(32, 'test tasks per evaluation')
    eval_temperature: float = opt(0.0, 'sampling temperature at evaluation (0: greedy)')
    eval_at_start: bool = opt(True, "evaluate the starting model (iteration 0) too; off when it was just evaluated "
                              "elsewhere (a warm start's own run)")
    eval_teacher: bool = opt(True, "self-distillation: also evaluate the teacher's view (eval/teacher_success, _gap)")
    checkpoint_every: int = opt(1, 'save a checkpoint every N iterations (the last one is always saved)')
    keep_checkpoints: int = opt(2, 'how many recent checkpoints to keep')
    tensorboard: bool = opt(True, 'also log to TensorBoard (when installed)')
    progress: bool = opt(True, 'progress bars')


def describe(cls: type) -> str:
    """One line per field: name, default and its documentation (the choices of a Literal field among them)."""
    hints = get_type_hints(cls)
    lines = []
    for f in fields(cls):
        default = f.default if f.default_factory is dataclasses.MISSING else f.default_factory()
        lines.append(f"  {f.name} = {default!r}    # {f.metadata.get('help', '')}")
        if get_origin(hints[f.name]) is Literal:
            lines[-1] += f" [one of: {', '.join(map(str, get_args(hints[f.name])))}]"
    return "\n".join(lines)


def check_choices(cfg: Any, where: str = "") -> None:
    """ValueError naming the field and its choices for any Literal field of dataclass `cfg` outside them."""
    for name, hint in get_type_hints(type(cfg)).items():
        if get_origin(hint) is Literal and getattr(cfg, name) not in get_args(hint):
            choices = ", ".join(map(str, get_args(hint)))
            raise ValueError(f"config field {where}{name} must be one of {choices}; got {getattr(cfg, name)!r}")


def _coerce(cls: type, name: str, value: Any, where: str) -> Any:
    """Check a value against the field's annotation (simple types only) and convert ints to floats etc."""
    hint = get_type_hints(cls)[name]
    origin = getattr(hint, "__origin__", None)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, str):  # YAML reads 3e-3 (no dot) as a string
        try:
            return float(value)
        except ValueError:
            pass
    if hint in (int, float, str, bool) and not isinstance(value, hint):
        raise ValueError(f"config field {where}{name} must be {hint.__name__}, got {value!r}")
    if hint is bool and not isinstance(value, bool):
        raise ValueError(f"config field {where}{name} must be true or false, got {value!r}")
    if origin is tuple and isinstance(value, list):
        return tuple(value)
    if origin is dict and not isinstance(value, dict):
        raise ValueError(f"config field {where}{name} must be a mapping, got {value!r}")
    if origin is list and not isinstance(value, list):
        raise ValueError(f"config field {where}{name} must be a list, got {value!r}")
    return value


def build(cls: type, values: dict[str, Any], where: str = "") -> Any:
    """An instance of dataclass `cls` from `values`; an unknown key is an error that names it and the closest
    known field."""
    known = {f.name for f in fields(cls)}
    kwargs = {}
    for key, value in values.items():
        if key not in known:
            close = difflib.get_close_matches(key, sorted(known), n=1)
            hint = f" Did you mean '{where}{close[0]}'?" if close else ""
            raise ValueError(f"unknown config field '{where}{key}'.{hint} Known: {', '.join(sorted(known))}")
        kwargs[key] = _coerce(cls, key, value, where)
    out = cls(**kwargs)
    check_choices(out, where)
    return out


def parse_overrides(items: list[str] | None) -> dict[str, Any]:
    """`a=1`, `grpo.clip_high=0.28`, `env_kwargs.max_steps=20` -> a nested dict (values parsed as YAML)."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"override {item!r} is not KEY=VALUE")
        node = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ValueError(f"override {item!r} sets a field inside a non-mapping")
        node[parts[-1]] = yaml.safe_load(raw)
    return out


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in extra.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> tuple[TrainConfig, Any]:
    """(shared config, the algorithm's config) from a YAML file and overrides."""
    from distillgym.trainers import ALGORITHMS

    raw: dict[str, Any] = {}
    if path is not None:
        text = Path(path).read_text()
        raw = yaml.safe_load(text) or {}
        if not isinstance(raw, dict):
            raise ValueError(f"config file {path} must hold a mapping of fields")
    raw = merge(raw, parse_overrides(overrides))
    algo = raw.get("algo", TrainConfig.algo)
    if algo not in ALGORITHMS:
        close = difflib.get_close_matches(str(algo), sorted(ALGORITHMS), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown algo {algo!r}.{hint} Known: {', '.join(sorted(ALGORITHMS))}")
    algo_cfg_cls = ALGORITHMS[algo].Config
    algo_values = raw.pop(algo, None) or {}
    for other in ALGORITHMS:
        if other != algo and other in raw:
            raise ValueError(f"config has a section {other!r} but algo is {algo!r}")
    cfg = build(TrainConfig, raw)
    return cfg, build(algo_cfg_cls, algo_values, where=f"{algo}.")


def to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)
