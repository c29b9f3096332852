"""Household: ALFWorld-style tasks (six task types, ALFWorld's grammar and text) on a fast native engine, with a
planner expert, seen/unseen pools, and an exporter to real TextWorld games."""

from distillgym.envs.household.catalog import TASK_TYPES, all_triples, triples
from distillgym.envs.household.env import HouseholdEnv
from distillgym.envs.household.expert import expert_plan, next_command
from distillgym.envs.household.generator import HouseholdConfig, generate
from distillgym.envs.household.world import Command, Household, HouseState, Item, Receptacle, Task, parse_command

__all__ = [
    "TASK_TYPES",
    "Command",
    "HouseState",
    "Household",
    "HouseholdConfig",
    "HouseholdEnv",
    "Item",
    "Receptacle",
    "Task",
    "all_triples",
    "expert_plan",
    "generate",
    "next_command",
    "parse_command",
    "triples",
]
