"""The shared text-environment contract: spaces, action parsing, the `TextEnv` base class, Monte-Carlo values."""

from distillgym.envs.core.mc import BatchSimulator, mc_q_values
from distillgym.envs.core.parsing import DIRECTIONS, describe_action, parse_direction, unwrap_action
from distillgym.envs.core.spaces import TextSpace, is_printable_text
from distillgym.envs.core.text_env import SPLIT_OFFSET, SPLIT_SIZE, SPLITS, EnvSnapshot, TextEnv, task_seed

__all__ = [
    "DIRECTIONS",
    "SPLITS",
    "SPLIT_OFFSET",
    "SPLIT_SIZE",
    "BatchSimulator",
    "EnvSnapshot",
    "TextEnv",
    "TextSpace",
    "describe_action",
    "is_printable_text",
    "mc_q_values",
    "parse_direction",
    "task_seed",
    "unwrap_action",
]
