"""Apps-v0: AppWorld-style tasks over simulated apps, solved by writing code against their APIs in a sandbox."""

from __future__ import annotations

import copy
import random
from dataclasses import dataclass
from typing import Any, ClassVar

from distillgym.envs.apps.actions import MAX_CODE_CHARS, extract_code, tool_call_to_code
from distillgym.envs.apps.evaluation import Verdict, diff_states, grade
from distillgym.envs.apps.isolation import LEVELS, default_level, require
from distillgym.envs.apps.sandbox import Limits, Sandbox
from distillgym.envs.apps.tasks import TEMPLATES, Task
from distillgym.envs.apps.tasks.base import POOLS
from distillgym.envs.apps.world import generate_world
from distillgym.envs.core import TextEnv
from distillgym.envs.core.protocol import AgentProtocol

ACTION_FORMATS = ("code", "json")

#: AppWorld's convention: one code cell per turn over `apis`, its output the next observation. The parser cuts the
#: reply down to the code cell (the env parses again, JSON tool calls included).
APPS_PROTOCOL = AgentProtocol(
    "You are a helpful assistant who completes everyday tasks for a user by writing Python code that calls "
    "the apis of their apps.",
    "Think briefly if it helps, then give one action inside <action></action>: a Python code cell, for example "
    "<action>print(apis.api_docs.show_app_descriptions())</action>, or the JSON tool call when the task asks "
    "for tool calls.",
    extract_code,
)


@dataclass(frozen=True)
class _Episode:
    task: Task
    initial: dict  # the world at reset (never mutated)
    state: dict  # the world now (replaced, never mutated, after each step)
    verdict: Verdict | None  # the grade once the agent called complete_task
    history: tuple[tuple[str, dict], ...] = ()  # (cell, state it ran on): rebuilds the worker's variables
    pristine: bool = True  # no cell has changed the world yet (the sandbox hands back the same dict then)


class AppsEnv(TextEnv[str]):
    """AppWorld-style tasks: a seeded world of apps (mail, contacts, payments, shop, music...), a task in words,
    and code cells that call `apis.<app>.<api>(...)`. The agent ends the episode with
    `apis.supervisor.complete_task(answer=...)`; the episode is graded on the apps' final state (the changes the
    task asks for and nothing else) and on the answer. Reward 1 on success, else 0.

    Agent code runs in a sandboxed worker process (see `sandbox.py`, `isolation.py`): by default inside bubblewrap
    (own mount, PID, IPC and network namespaces, uid 65534, read-only minimal root, seccomp), with resource limits
    and imports limited to an allow-list; the apps' state and the grader stay in this process, and the worker only
    forwards each api call here. A hung or crashed worker is replaced and the agent told why.

    Args:
        difficulty: 1, 2, 3 or a list of them (None: all). 1 = single-app lookups, 3 = multi-app workflows.
        templates: pool of task templates: "train", "dev", "test" or "all" (None: train for split="train", test
            for split="test"); or a list of template names.
        action_format: "code" (a Python cell, AppWorld's convention) or "json" (a tool call
            `{"name": "app.api", "arguments": {...}}`, run as `print(apis.app.api(**arguments))`).
        limits: sandbox limits (`Limits` fields: cpu_s, wall_s, memory_mb, output_chars...).
        isolation: the worker's OS isolation, "namespaces" (bubblewrap, the default), "netns" or "none"; None reads
            DISTILLGYM_SANDBOX_ISOLATION. A level that cannot run here raises at construction, never downgrades;
            the level in force is in `info["apps"]["isolation"]`.
        split, max_steps (40, the Skill-SD paper's AppWorld budget), invalid_action_penalty, privileged,
            render_mode: see `TextEnv`.
    """

    family: ClassVar[str] = "apps"
    agent_protocol: ClassVar[AgentProtocol] = APPS_PROTOCOL
    max_action_length: ClassVar[int] = 4 * MAX_CODE_CHARS
    max_observation_length: ClassVar[int] = 32_768
    free_form_actions: ClassVar[bool] = True

    def __init__(
        self,
        *,
        difficulty: int | list[int] | tuple[int, ...] | None = None,
        templates: str | list[str] | tuple[str, ...] | None = None,
        action_format: str = "code",
        limits: dict[str, Any] | Limits | None = None,
        isolation: str | None = None,
        split: str = "train",
        max_steps: int = 40,
        invalid_action_penalty: float = 0.0,
        privileged: bool = True,
        render_mode: str | None = None,
    ) -> None:
        super().__init__(
            split=split,
            max_steps=max_steps,
            invalid_action_penalty=invalid_action_penalty,
            privileged=privileged,
            render_mode=render_mode,
        )
        if action_format not in ACTION_FORMATS:
            raise ValueError(f"action_format must be one of {ACTION_FORMATS}, got {action_format!r}")
        levels = (difficulty,) if isinstance(difficulty, int) else tuple(difficulty or (1, 2, 3))
        if not levels or any(d not in (1, 2, 3) for d in levels):
            raise ValueError(f"difficulty must be 1, 2, 3 or a list of them, got {difficulty!r}")
        if templates is not None and not isinstance(templates, str):
            unknown = [t for t in templates if t not in TEMPLATES]
            if unknown or not templates:
                raise ValueError(f"unknown task template(s) {unknown}; known: {sorted(TEMPLATES)}")
        elif templates is not None and templates not in (*POOLS, "all"):
            raise ValueError(f"templates must be one of {(*POOLS, 'all')} or a list of template names, "
                             f"got {templates!r}")
        self.levels = levels
        self.templates = templates
        self.action_format = action_format
        if isinstance(limits, dict):
            unknown_limits = set(limits) - set(Limits.__dataclass_fields__)
            if unknown_limits:
                known = sorted(Limits.__dataclass_fields__)
                raise ValueError(f"unknown sandbox limit(s) {sorted(unknown_limits)}; known: {known}")
            limits = Limits(**limits)
        self.limits = limits or Limits()
        if isolation is not None and isolation not in LEVELS:
            raise ValueError(f"isolation must be one of {LEVELS}, got {isolation!r}")
        self.isolation = isolation or default_level()
        require(self.isolation)  # IsolationError now, with the fix, rather than at the first step
        self._sandbox: Sandbox | None = None
        self._e: _Episode | None = None
        self._loaded: tuple[tuple[str, dict], ...] = ()  # the cells whose variables the worker holds now

    # ----------------------------------------------------------------- task choice
    def template_names(self, split: str | None = None) -> list[str]:
        """The templates this env draws from for `split` (sorted), after the difficulty filter."""
        split = split or self.split
        if self.templates is None:
            pool = "train" if split == "train" else "test"
            names = [n for n, t in TEMPLATES.items() if t.pool == pool]
        elif isinstance(self.templates, str):
            names = [n for n, t in TEMPLATES.items() if self.templates == "all" or t.pool == self.templates]
        else:
            names = list(self.templates)
        names = sorted(n for n in names if TEMPLATES[n].difficulty in self.levels)
        if not names:
            raise ValueError(f"no task template of difficulty {list(self.levels)} in pool {self.templates or split!r}")
        return names

    # ----------------------------------------------------------------- TextEnv hooks
    def _new_task(self, seed: int, options: dict[str, Any]) -> None:
        wanted = options.pop("template", None)
        if options:
            raise ValueError(f"unknown reset option(s) for Apps: {sorted(options)}; known: template, split, task_index")
        rng = random.Random(seed)
        names = [wanted] if wanted else self.template_names(self._task_split)
        if wanted and wanted not in TEMPLATES:
            raise ValueError(f"unknown task template {wanted!r}; known: {sorted(TEMPLATES)}")
        for attempt in range(100):
            world = generate_world(seed * 101 + attempt)
            name = names[rng.randrange(len(names))]
            task = TEMPLATES[name].make(random.Random(rng.random()), copy.deepcopy(world))
            if task is not None:
                break
        else:  # pragma: no cover - templates pose their task in nearly every world
            raise RuntimeError(f"no task could be posed for seed {seed} (templates {names})")
        self._e = _Episode(task, world, world, None)
        if self._sandbox is not None:
            self._sandbox.reset()  # a fresh namespace for the new episode
        self._loaded = ()

    def parse_action(self, text: object) -> str | None:
        if self.action_format == "json":
            return tool_call_to_code(text)
        return extract_code(text)

    def _apply(self, action: str) -> tuple[float, bool, str]:
        e = self._ep
        self._sync_namespace(e.history)
        result = self._box.run(action, e.state)
        state = result.state
        text = result.render()
        history = (*e.history, (action, e.state))
        self._loaded = history if not result.restarted else ()
        completed = bool((state.get("_supervisor") or {}).get("completed"))
        verdict = None
        if completed:
            t = e.task
            verdict = grade(e.initial, state, expects=t.expects, answer=t.answer, check_answer=t.check_answer,
                            ignore=t.ignore)
            text = (text + "\n" if text else "") + "Task marked complete."
        pristine = e.pristine and state is e.state
        self._e = _Episode(e.task, e.initial, state, verdict, history, pristine)
        if not text:
            text = "(no output: print what you want to see)"
        return (1.0 if verdict is not None and verdict.success else 0.0), completed, text

    def _observation(self, feedback: str) -> str:
        return feedback if feedback else self._intro()

    def _intro(self) -> str:
        return (
            f"Task: {self._ep.task.instruction}\n"
            "Start with apis.api_docs.show_app_descriptions() and apis.api_docs.show_api_doc(app_name, api_name); "
            "print what you want to see."
        )

    def _board_text(self) -> str:
        return self._intro()

    def task_text(self) -> str:
        e = self._ep
        profile = (e.initial.get("_supervisor") or {}).get("profile") or {}
        who = profile.get("name", "the user")
        fmt = (
            "Reply with one Python code cell per turn, calling the apps as apis.<app>.<api>(...) and printing what "
            "you want to see (the output is your next observation)."
            if self.action_format == "code"
            else 'Reply with one tool call per turn as JSON: {"name": "<app>.<api>", "arguments": {...}}.'
        )
        return (
            f"You are an AI assistant working for {who}, with access to their apps through the `apis` object. "
            f"Task: {e.task.instruction} {fmt} When the task is done, call apis.supervisor.complete_task(answer=...) "
            "with the answer if the task asks a question, else with no answer."
        )

    def admissible_actions(self) -> None:
        return None

    def is_success(self) -> bool:
        v = self._ep.verdict
        return v is not None and v.success

    def privileged_info(self) -> dict[str, Any]:
        e = self._ep
        action = self.expert_action()
        return {
            "solution": e.task.solution,
            "expert_plan": None if action is None else [action],
            "expert_action": action,
        }

    def expert_action(self) -> str | None:
        """The ground-truth program, while the world is as it was at reset (the program is written for the
        initial state: after the agent changed something, re-running it could act twice); else None."""
        e = self._ep
        if e.verdict is not None or not (e.pristine or not diff_states(e.initial, e.state)):
            return None
        sup = e.state.get("_supervisor") or {}
        return None if sup.get("completed") else e.task.solution

    def _extra_info(self) -> dict[str, Any]:
        e = self._ep
        out: dict[str, Any] = {"template": e.task.template, "difficulty": e.task.difficulty,
                               "isolation": self.isolation}
        if e.verdict is not None:
            out["failures"] = list(e.verdict.failures)
        return out

    def invalid_feedback(self, action: object) -> str:
        if self.action_format == "json":
            return ('Invalid tool call. Reply with JSON like {"name": "mail.search_emails", "arguments": '
                    '{"query": "invoice"}}.')
        return "Invalid action: no code found. Reply with one Python code cell (```python ... ```)."

    def _get_state(self) -> _Episode:
        return self._ep

    def _set_state(self, state: _Episode) -> None:
        self._e = state

    def _sync_namespace(self, history: tuple[tuple[str, dict], ...]) -> None:
        """Make the worker's variables those of `history` (after `restore`): replay its cells on the states they
        ran on, discarding their results. Exact for deterministic cells; costs one run per replayed cell."""
        if self._loaded is history or (not self._loaded and not history):
            return
        box = self._box
        box.reset()
        for code, before in history:
            box.run(code, before)
        self._loaded = history

    def close(self) -> None:
        if self._sandbox is not None:
            self._sandbox.close()
            self._sandbox = None
        super().close()

    # ----------------------------------------------------------------- helpers
    @property
    def task(self) -> Task:
        return self._ep.task

    @property
    def world(self) -> dict:
        """The apps' current state (read-only by convention)."""
        return self._ep.state

    @property
    def _box(self) -> Sandbox:
        if self._sandbox is None:
            self._sandbox = Sandbox(limits=self.limits, isolation=self.isolation)
        return self._sandbox

    @property
    def _ep(self) -> _Episode:
        if self._e is None:
            raise RuntimeError("Call reset() first.")
        return self._e
