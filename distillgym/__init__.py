"""distillgym: multi-turn text environments for LLM agents, and self-distillation trainers for small agents.

`import distillgym` registers every environment id with gymnasium; it imports gymnasium and numpy only (never
torch, transformers or vLLM).
"""

from distillgym.registration import ENVS, register_envs

__version__ = "0.1.0"

register_envs()

__all__ = ["ENVS", "__version__", "register_envs"]
