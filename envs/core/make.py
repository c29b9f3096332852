"""Making an environment from what a user names: a registered id, an entry point, a factory.

- a registered id: `"Sokoban-v0"` (the `distillgym/` namespace is optional for distillgym's own ids), or any other
  id in gymnasium's registry, `"module:Id"` included (gymnasium imports the module first);
- an entry point `"package.module:Name"`, where `Name` is a `gymnasium.Env` subclass or a function returning one;
- a factory: the class or function itself;
- a GEM id behind `gem:` (`"gem:game:Sokoban-v0-easy"`): GEM's env through envs/interop/gem.py (the `gem` extra);
- an OpenEnv server behind `openenv:` (`"openenv:http://127.0.0.1:8000"`): envs/interop/openenv.py (`openenv`).

`make_env` returns the env as gymnasium would hand it to a user: `gymnasium.make` adds its wrappers (and a
registered `max_episode_steps`), and rollouts step that wrapped env, so wrappers a user adds run in training and
evaluation.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import gymnasium as gym

NAMESPACE = "distillgym"

EnvLike = str | Callable[..., gym.Env]


def canonical_id(name: str) -> str:
    """The registered id a name means: `Sokoban-v0` -> `distillgym/Sokoban-v0` when only that is registered; any
    other name as given."""
    import distillgym  # noqa: F401  (registers the ids)

    if name not in gym.registry and f"{NAMESPACE}/{name}" in gym.registry:
        return f"{NAMESPACE}/{name}"
    return name


def entry_point(name: str) -> Callable[..., gym.Env] | None:
    """`package.module:Name` as a callable, or None when `name` is no such entry point."""
    module, sep, attr = name.partition(":")
    if not sep or not module or not attr or "/" in attr:
        return None
    try:
        found = getattr(importlib.import_module(module), attr, None)
    except ImportError:
        return None
    return found if callable(found) else None


def nameable(name: str) -> bool:
    """Whether `make_env` knows what `name` means: a registered id (distillgym's namespace optional), an entry
    point, or a `gem:` id (checked when made)."""
    return (name.startswith(("gem:", "openenv:")) or canonical_id(name) in gym.registry
            or entry_point(name) is not None)


def make_env(env: EnvLike, **kwargs: Any) -> gym.Env:
    """A new environment from `env` (see the module docstring), with `kwargs` for its constructor; ValueError, listing
    the registered ids, for a name that is neither registered nor an entry point."""
    if not isinstance(env, str):
        made = env(**kwargs)
    elif env.startswith("gem:"):  # a GEM id: envs/interop/gem.py
        from distillgym.envs.interop.gem import make as make_gem

        made = make_gem(env, **kwargs)
    elif env.startswith("openenv:"):  # an OpenEnv server: envs/interop/openenv.py
        from distillgym.envs.interop.openenv import make as make_openenv

        made = make_openenv(env, **kwargs)
    else:
        name = canonical_id(env)
        factory = None if name in gym.registry else entry_point(name)
        if factory is not None:
            made = factory(**kwargs)
        else:
            try:
                return gym.make(name, **kwargs)
            except gym.error.Error as e:  # unknown ids, bad namespaces, modules that do not import
                import distillgym

                known = ", ".join(entry.id for entry in distillgym.ENVS)
                raise ValueError(f"unknown environment {env!r} ({e}); registered: {known}; or give an entry point "
                                 "'package.module:EnvClass'") from e
    if not isinstance(made, gym.Env):
        raise TypeError(f"{env!r} made a {type(made).__name__}, not a gymnasium.Env")
    return made


def env_name(env: EnvLike, made: gym.Env | None = None) -> str:
    """How episodes and reports name the env: its registered id, else the entry point or the factory's path."""
    if isinstance(env, str):
        return canonical_id(env)
    spec = getattr(made, "spec", None)
    if spec is not None and getattr(spec, "id", None):
        return str(spec.id)
    return f"{getattr(env, '__module__', '?')}:{getattr(env, '__qualname__', type(env).__name__)}"


def short_id(env_id: str) -> str:
    """An id as people write it: distillgym's namespace dropped (`distillgym/Sokoban-v0` -> `Sokoban-v0`)."""
    return env_id.removeprefix(f"{NAMESPACE}/")


#: What an algorithm may need of an env beyond reset/step: an expert (`expert_action()`), privileged information in
#: `info["privileged"]`, exact `snapshot()`/`restore()`.
CAPABILITIES = ("expert", "privileged", "snapshot")


def capabilities(env: gym.Env) -> frozenset[str]:
    """What `env` offers of CAPABILITIES: its class's `capabilities` where it declares them, else what it has (every
    distillgym family has all three; privileged information only when made with privileged=True)."""
    u = getattr(env, "unwrapped", env)
    declared = getattr(u, "capabilities", None)
    if declared is not None:
        return frozenset(declared)
    found = set()
    if callable(getattr(u, "expert_action", None)):
        found.add("expert")
    if callable(getattr(u, "snapshot", None)) and callable(getattr(u, "restore", None)):
        found.add("snapshot")
    if getattr(u, "compute_privileged", False):
        found.add("privileged")
    return frozenset(found)
