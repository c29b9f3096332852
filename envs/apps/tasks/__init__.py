"""Task templates of Apps-v0 (`TEMPLATES`, by name) and the task record they produce.

The 37 templates are in `level1.py`, `level2.py` and `level3.py` (one app and a lookup or a single change; filters,
pagination and several changes; workflows across apps with conditions); what they share is in `common.py`.
Importing this package registers them all, level by level.
"""

from distillgym.envs.apps.tasks import level1, level2, level3  # noqa: F401  (registers the templates)
from distillgym.envs.apps.tasks.base import POOLS, TEMPLATES, Task, Template, template

__all__ = ["POOLS", "TEMPLATES", "Task", "Template", "template"]
