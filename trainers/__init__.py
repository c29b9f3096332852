"""Rollout collection, losses, one file per training algorithm, and the training loop (see DESIGN.md).

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
}


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
