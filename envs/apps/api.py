"""The `apis` object handed to agent code: one attribute per app, each exposing that app's endpoints.

`make_apis(state)` is the contract with the sandbox (imported as "distillgym.envs.apps.api:make_apis"): the endpoints
read and mutate `state` in place. The exposed objects keep the state only in underscore attributes and closures, which
agent code cannot reach because the sandbox rejects attribute names starting with `_`.
"""

import typing

from distillgym.envs.apps.apps import APP_CLASSES
from distillgym.envs.apps.base import ApiAttributeError, ApiError, App, json_copy, make_endpoint, specs_of

__all__ = ["ApiError", "Apis", "AppApis", "endpoints", "make_apis"]


class Supervisor(App):
    """The person the agent works for, and how the agent ends a task."""

    name = "supervisor"
    state_key = "_supervisor"
    description = "The user you work for: their profile, and complete_task to finish the task (with an answer if one " \
                  "is asked for)."
    schema: typing.ClassVar[dict] = {"profile": {}, "completed": False, "answer": None}

    def show_profile(self) -> dict:
        """Show the profile of the user you work for: name, email, phone number, birthday and home address.

        Returns: a dict with first_name, last_name, name, email, phone, birthday and address.
        """
        return self._db["profile"]

    def complete_task(self, answer: str | bool | int | float | list | None = None) -> dict:
        """Mark the current task as completed. Call it exactly once, at the end. If the task asks a question, pass the
        answer (a short string, a number, or a list); otherwise leave it as None.

        Args:
            answer: The answer to the task's question, or None when the task only asks you to do something.

        Returns: a dict {"completed": True, "answer": answer}.
        """
        if isinstance(answer, str):
            answer = answer.strip()
        self._db["completed"] = True
        self._db["answer"] = json_copy(answer)
        return {"completed": True, "answer": answer}


class ApiDocs(App):
    """Documentation of every app and endpoint, generated from the methods' signatures and docstrings."""

    name = "api_docs"
    description = "Documentation of the apps and their apis: what each does, its parameters and what it returns."
    schema: typing.ClassVar[dict] = {}

    def __init__(self, state: dict) -> None:
        self._state = state
        self._db = {}

    def show_app_descriptions(self) -> list[dict]:
        """List every app you can use with a one-line description.

        Returns: a list of {"name": app_name, "description": ...}.
        """
        return [{"name": c.name, "description": c.description} for c in ALL_APP_CLASSES]

    def show_api_descriptions(self, app_name: str) -> list[dict]:
        """List the apis (endpoints) of one app with a short description of each.

        Args:
            app_name: Name of the app, as listed by show_app_descriptions (e.g. "mail").

        Returns: a list of {"name": api_name, "description": ...}.
        """
        cls = _app_class(app_name)
        return [{"name": s.name, "description": _first_sentence(s.description)} for s in specs_of(cls)]

    def show_api_doc(self, app_name: str, api_name: str) -> dict:
        """Show the full documentation of one api: description, parameters (name, type, required, default,
        description) and what it returns.

        Args:
            app_name: Name of the app (e.g. "mail").
            api_name: Name of the api in that app (e.g. "send_email").

        Returns: a dict with app_name, api_name, description, parameters, returns and a usage line.
        """
        cls = _app_class(app_name)
        for s in specs_of(cls):
            if s.name == api_name:
                return s.doc()
        raise ApiError(f"App {app_name!r} has no api named {api_name!r}. Its apis are: "
                       f"{', '.join(s.name for s in specs_of(cls))}.")


ALL_APP_CLASSES: list[type[App]] = [Supervisor, ApiDocs, *APP_CLASSES]


def _first_sentence(text: str) -> str:
    end = text.find(". ")
    return text if end < 0 else text[:end + 1]


def _app_class(app_name: str) -> type[App]:
    for c in ALL_APP_CLASSES:
        if c.name == app_name:
            return c
    raise ApiError(f"No app named {app_name!r}. Apps: {', '.join(c.name for c in ALL_APP_CLASSES)}. "
                   "Use apis.api_docs.show_app_descriptions().")


class AppApis:
    """The endpoints of one app, as attributes: `apis.<app>.<api>(...)`."""

    def __init__(self, app_name: str, description: str, funcs: dict) -> None:
        self._app_name = app_name
        self._api_names = list(funcs)
        self.description = description
        for k, f in funcs.items():
            setattr(self, k, f)

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        raise ApiAttributeError(f"App {self._app_name!r} has no api named {name!r}. Its apis are: "
                                f"{', '.join(self._api_names)}. See apis.api_docs.show_api_doc(app_name="
                                f"{self._app_name!r}, api_name=...).")

    def __dir__(self) -> list[str]:
        return list(self._api_names)

    def __repr__(self) -> str:
        return f"<apis.{self._app_name}: {', '.join(self._api_names)}>"


class Apis:
    """All apps: `apis.<app>.<api>(...)`. Start with apis.api_docs.show_app_descriptions()."""

    def __init__(self, apps: dict) -> None:
        self._app_names = list(apps)
        for k, v in apps.items():
            setattr(self, k, v)

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        raise ApiAttributeError(f"No app named {name!r}. Apps: {', '.join(self._app_names)}. "
                                "Use apis.api_docs.show_app_descriptions().")

    def __dir__(self) -> list[str]:
        return list(self._app_names)

    def __repr__(self) -> str:
        return f"<apis: {', '.join(self._app_names)}>"


def make_apis(state: dict) -> Apis:
    """Build the `apis` object over `state` (mutated in place; missing app tables are created empty)."""
    apps = {}
    for cls in ALL_APP_CLASSES:
        inst = cls(state)
        funcs = {s.name: make_endpoint(s, getattr(inst, s.name)) for s in specs_of(cls)}
        apps[cls.name] = AppApis(cls.name, cls.description, funcs)
    return Apis(apps)


def endpoints() -> list[tuple[str, str]]:
    """Every (app_name, api_name) pair, in documentation order."""
    return [(c.name, s.name) for c in ALL_APP_CLASSES for s in specs_of(c)]
