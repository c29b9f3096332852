"""ALFWorld's real games (ALFRED scenes, six household task types) through TextWorld's PDDL backend; needs
ALFWorld's downloaded data and the `alfworld` extra (`textworld` + `fast-downward-textworld`), imported only when
an env is made."""

from distillgym.envs.alfworld.env import MAX_COMMAND_CHARS, ALFWorldEnv, TextWorldBackendMissingError
from distillgym.envs.alfworld.games import (
    DATA_SETUP,
    EVAL_SETS,
    TASK_TYPES,
    ALFWorldDataNotFoundError,
    alfworld_names,
    data_root,
    find_games,
    list_games,
    load_game,
    split_dir,
    task_type_of,
)

__all__ = [
    "DATA_SETUP",
    "EVAL_SETS",
    "MAX_COMMAND_CHARS",
    "TASK_TYPES",
    "ALFWorldDataNotFoundError",
    "ALFWorldEnv",
    "TextWorldBackendMissingError",
    "alfworld_names",
    "data_root",
    "find_games",
    "list_games",
    "load_game",
    "split_dir",
    "task_type_of",
]
