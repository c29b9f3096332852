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
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, get_type_hints

import yaml


@dataclass
class TrainConfig:
    """Fields every algorithm shares. Each field's comment is its documentation (`distillgym train --help-config`)."""

    algo: str = "grpo"  # sft | grpo | opd | opsd | pi_distill | skill_sd
    env: str = "Sokoban-6x6-1-v0"  # a registered id (with or without 'distillgym/')
    env_kwargs: dict[str, Any] = field(default_factory=dict)  # passed to gymnasium.make (e.g. max_steps)
    model: str = "tiny"  # 'tiny', a local model directory, or a Hugging Face name (offline with HF_HUB_OFFLINE=1)
    out_dir: str = "runs/train/default"  # checkpoints, metrics.jsonl, TensorBoard logs, plots
    seed: int = 0  # seeds rollouts, sampling and initialization; same seed, same run (on CPU)
    iterations: int = 20  # collect -> loss -> update rounds
    tasks_per_iter: int = 8  # distinct training tasks per iteration
    group_size: int = 4  # rollouts per task (GRPO groups)
    train_pool: int = 0  # draw tasks from train indices [0, train_pool); 0: a fresh task every time
    num_envs: int = 32  # environments stepped in parallel during rollouts
    history: int | None = 2  # past turns shown in the prompt (None: all)
    privileged_at: str = "end"  # a teacher's privileged block: end (short, after the last observation) | system
    temperature: float = 1.0  # sampling temperature for rollouts
    top_p: float = 1.0  # nucleus sampling for rollouts
    max_tokens: int = 16  # tokens per reply
    lr: float = 1e-3  # AdamW learning rate (use ~1e-5 for real models, ~1e-3 for tiny)
    weight_decay: float = 0.0  # AdamW weight decay
    betas: tuple[float, float] = (0.9, 0.999)  # AdamW betas
    schedule: str = "constant"  # learning-rate schedule after warmup: constant | linear | cosine
    warmup_steps: int = 0  # linear warmup, in optimizer steps
    max_grad_norm: float = 1.0  # gradient clipping (0: off)
    micro_batch_size: int = 16  # sequences per forward/backward (gradient accumulation over the batch)
    updates_per_iter: int = 1  # optimizer steps over each iteration's batch, every algorithm (PPO epochs)
    lora: bool = False  # train LoRA adapters (peft) instead of all weights
    lora_r: int = 8  # LoRA rank
    lora_alpha: int = 16  # LoRA scaling
    lora_targets: list[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])
    device: str = "auto"  # auto (cuda when available) | cpu | cuda | cuda:N
    threads: int = 0  # torch CPU threads (0: torch's default)
    eval_every: int = 5  # evaluate on held-out test tasks every N iterations (0: only at the end)
    eval_episodes: int = 32  # test tasks per evaluation
    eval_temperature: float = 0.0  # sampling temperature at evaluation (0: greedy)
    eval_teacher: bool = True  # self-distillation: also evaluate the teacher's view (eval/teacher_success, _gap)
    checkpoint_every: int = 1  # save a checkpoint every N iterations (the last one is always saved)
    keep_checkpoints: int = 2  # how many recent checkpoints to keep
    tensorboard: bool = True  # also log to TensorBoard (when installed)
    progress: bool = True  # progress bars


def _field_doc(cls: type) -> dict[str, str]:
    """Field comments from the source, for --help-config."""
    import inspect

    docs: dict[str, str] = {}
    try:
        src = inspect.getsource(cls)
    except OSError:
        return docs
    for line in src.splitlines():
        line = line.strip()
        if ":" in line and "#" in line and not line.startswith(("#", '"')):
            name = line.split(":", 1)[0].strip()
            docs[name] = line.split("#", 1)[1].strip()
    return docs


def describe(cls: type) -> str:
    """One line per field: name, default and its documentation."""
    docs = _field_doc(cls)
    lines = []
    for f in fields(cls):
        default = f.default if f.default_factory is dataclasses.MISSING else f.default_factory()
        lines.append(f"  {f.name} = {default!r}    # {docs.get(f.name, '')}")
    return "\n".join(lines)


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
    return cls(**kwargs)


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
    if cfg.privileged_at not in ("end", "system"):
        raise ValueError(f"config field privileged_at must be end or system, got {cfg.privileged_at!r}")
    return cfg, build(algo_cfg_cls, algo_values, where=f"{algo}.")


def to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)
