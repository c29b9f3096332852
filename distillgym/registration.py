"""Gymnasium registration of every distillgym environment id.

gymnasium 1.x has no plugin entry points: ids are registered when this module runs, which `import distillgym`
does. `gymnasium.make("distillgym:distillgym/Sokoban-v0")` imports distillgym first, so it works from a bare
interpreter too. Entry points are strings: nothing heavy is imported until an env is made.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym

NAMESPACE = "distillgym"


@dataclass(frozen=True)
class EnvEntry:
    id: str
    entry_point: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    summary: str = ""
    # Needs an outside engine or data (TextWorld, ALFWorld's games): left out of the shared contract tests and of
    # the tiny tokenizer's training text, which must build anywhere; each such family has its own tests.
    external: bool = False


SOKOBAN = "distillgym.envs.sokoban:SokobanEnv"
GAME2048 = "distillgym.envs.game2048:Game2048Env"
HOUSEHOLD = "distillgym.envs.household:HouseholdEnv"
APPS = "distillgym.envs.apps.env:AppsEnv"
ALFWORLD = "distillgym.envs.alfworld:ALFWorldEnv"
TEXTWORLD = "distillgym.envs.twgames:TextWorldEnv"

ENVS: tuple[EnvEntry, ...] = (
    EnvEntry("distillgym/Sokoban-v0", SOKOBAN, {"dim": (6, 6), "num_boxes": 1, "max_steps": 40},
             "Sokoban 6x6, 1 box (default preset; same as Sokoban-6x6-1-v0)"),
    EnvEntry("distillgym/Sokoban-6x6-1-v0", SOKOBAN, {"dim": (6, 6), "num_boxes": 1, "max_steps": 40},
             "Sokoban 6x6, 1 box, 40 steps"),
    EnvEntry("distillgym/Sokoban-6x6-2-v0", SOKOBAN, {"dim": (6, 6), "num_boxes": 2, "max_steps": 40},
             "Sokoban 6x6, 2 boxes, 40 steps (the Skill-SD paper's setting)"),
    EnvEntry("distillgym/Sokoban-7x7-2-v0", SOKOBAN, {"dim": (7, 7), "num_boxes": 2, "max_steps": 50},
             "Sokoban 7x7, 2 boxes, 50 steps"),
    EnvEntry("distillgym/Sokoban-8x8-2-v0", SOKOBAN, {"dim": (8, 8), "num_boxes": 2, "max_steps": 60},
             "Sokoban 8x8, 2 boxes, 60 steps"),
    EnvEntry("distillgym/Sokoban-10x10-3-v0", SOKOBAN, {"dim": (10, 10), "num_boxes": 3, "max_steps": 100},
             "Sokoban 10x10, 3 boxes, 100 steps"),
    EnvEntry("distillgym/Sokoban-10x10-4-v0", SOKOBAN, {"dim": (10, 10), "num_boxes": 4, "max_steps": 120},
             "Sokoban 10x10, 4 boxes, 120 steps (hardest preset)"),
    EnvEntry("distillgym/2048-v0", GAME2048, {"size": 4, "target_tile": 2048, "max_steps": 5000},
             "2048 on 4x4, reach the 2048 tile"),
    EnvEntry("distillgym/2048-3x3-v0", GAME2048, {"size": 3, "target_tile": 256, "max_steps": 500},
             "2048 on 3x3, reach the 256 tile"),
    EnvEntry("distillgym/2048-4x4-256-v0", GAME2048, {"size": 4, "target_tile": 256, "max_steps": 500},
             "2048 on 4x4, reach the 256 tile (short episodes for LLM agents)"),
    EnvEntry("distillgym/Household-v0", HOUSEHOLD, {"rooms": 1, "max_steps": 50},
             "ALFWorld-style household tasks (6 types, ALFWorld's grammar), one room, 50 steps"),
    EnvEntry("distillgym/Household-3Rooms-v0", HOUSEHOLD, {"rooms": 3, "clutter": 20, "max_steps": 50},
             "Household tasks across 3 rooms with 20 clutter objects, 50 steps"),
    # privileged=False: the planner expert takes ~20 s per plan on full-size scenes (plan on demand with
    # expert_action(), or pass privileged=True)
    EnvEntry("distillgym/Apps-v0", APPS, {"max_steps": 40},
             "AppWorld-style tasks over 9 simulated apps: Python code cells against their apis, sandboxed, 40 steps"),
    EnvEntry("distillgym/Apps-JSON-v0", APPS, {"max_steps": 40, "action_format": "json"},
             "Apps tasks with JSON tool calls ({\"name\": \"app.api\", \"arguments\": {...}}) instead of code"),
    EnvEntry("distillgym/ALFWorld-v0", ALFWORLD, {"max_steps": 50, "privileged": False},
             "ALFWorld's real games via TextWorld's PDDL backend (needs alfworld-download's data), 50 steps",
             external=True),
    EnvEntry("distillgym/TextWorld-v0", TEXTWORLD, {"preset": "treasure_hunter", "level": 5, "max_steps": 50},
             "TextWorld's tw-treasure_hunter, level 5 (default preset: the fastest to generate; same as "
             "TextWorld-TreasureHunter-v0), 50 steps", external=True),
    EnvEntry("distillgym/TextWorld-CoinCollector-v0", TEXTWORLD,
             {"preset": "coin_collector", "level": 5, "max_steps": 50},
             "TextWorld's tw-coin_collector, level 5 (a 5-room chain), 50 steps", external=True),
    EnvEntry("distillgym/TextWorld-TreasureHunter-v0", TEXTWORLD,
             {"preset": "treasure_hunter", "level": 5, "max_steps": 50},
             "TextWorld's tw-treasure_hunter, level 5 (5 rooms, quest length 3), 50 steps", external=True),
    EnvEntry("distillgym/TextWorld-Cooking-v0", TEXTWORLD,
             {"preset": "cooking", "recipe": 2, "take": 1, "go": 6, "open": True, "max_steps": 80},
             "TextWorld's tw-cooking (FTWP): 2-ingredient recipe, 1 to fetch, 6 rooms, doors to open, 80 steps",
             external=True),
)


def register_envs() -> None:
    """Register every distillgym id with gymnasium (idempotent)."""
    for entry in ENVS:
        if entry.id not in gym.registry:
            gym.register(id=entry.id, entry_point=entry.entry_point, kwargs=dict(entry.kwargs))


def env_summaries() -> dict[str, str]:
    """{id: one-line description} for every registered distillgym env."""
    return {e.id: e.summary for e in ENVS}
