"""Rollout collection, losses, one file per training algorithm, and the training loop (docs/design.md).

`ALGORITHMS[name]` is the algorithm's module: its `Config` dataclass, `setup(run, cfg)` and
`iteration(run, cfg) -> metrics`. Modules import on first use (torch is needed only then).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from types import ModuleType

_MODULES = {
    "sft": "distillgym.trainers.sft",
    "grpo": "distillgym.trainers.grpo",
    "opd": "distillgym.trainers.opd",
    "opsd": "distillgym.trainers.opsd",
    "pi_distill": "distillgym.trainers.pi_distill",
    "skill_sd": "distillgym.trainers.skill_sd",
    "mc_grpo": "distillgym.trainers.mc_grpo",
    "mc_ppo": "distillgym.trainers.mc_ppo",
}

#: One line per algorithm, for `distillgym train --help` (kept here so that listing them imports no torch).
SUMMARIES = {
    "sft": "imitate expert demonstrations (token NLL), also under the teacher's prompt (a self-teacher's warm start)",
    "grpo": "group-relative policy gradient with the PPO clip (GiGPO step advantages with grpo.advantage=gigpo)",
    "opd": "on-policy distillation (GKD): the student samples, a teacher scores every token (generalized JSD)",
    "opsd": "on-policy self-distillation: the teacher is the model itself, shown the step's privileged info",
    "pi_distill": "pi-Distill: one model trained as a privileged teacher and as the student on the teacher's samples",
    "skill_sd": "Skill-SD: GRPO plus distillation toward the model with a retrieved skill in its prompt",
    "mc_grpo": "ProAct's MC-GRPO: G replies per visited state, each rewarded by a Monte-Carlo Q (step, traj variants)",
    "mc_ppo": "ProAct's MC-PPO: PPO with turn-level TD(0) advantages from a value head blended with a Monte-Carlo V",
}

if set(SUMMARIES) != set(_MODULES):
    raise RuntimeError("every algorithm needs a one-line summary")


class _Algorithms(Mapping[str, ModuleType]):
    def __getitem__(self, name: str) -> ModuleType:
        if name not in _MODULES:
            raise KeyError(name)
        return importlib.import_module(_MODULES[name])

    def __iter__(self) -> Iterator[str]:
        return iter(_MODULES)

    def __len__(self) -> int:
        return len(_MODULES)


ALGORITHMS: Mapping[str, ModuleType] = _Algorithms()
