"""Real TextWorld games (tw-coin_collector, tw-treasure_hunter, tw-cooking) as text environments.

Nothing here imports textworld until an environment is made: `pip install "distillgym[textworld]"` for it.
"""

from distillgym.envs.twgames.env import TextWorldEnv, clean_feedback, game_command
from distillgym.envs.twgames.games import INSTALL_HINT, PRESETS, default_cache_dir, ensure_game, game_settings

__all__ = [
    "INSTALL_HINT",
    "PRESETS",
    "TextWorldEnv",
    "clean_feedback",
    "default_cache_dir",
    "ensure_game",
    "game_command",
    "game_settings",
]
