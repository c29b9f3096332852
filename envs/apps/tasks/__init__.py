"""Task templates of Apps-v0 (`TEMPLATES`, by name) and the task record they produce."""

from distillgym.envs.apps.tasks import templates as _templates  # noqa: F401  (registers the templates)
from distillgym.envs.apps.tasks.base import POOLS, TEMPLATES, Task, Template, template

__all__ = ["POOLS", "TEMPLATES", "Task", "Template", "template"]
