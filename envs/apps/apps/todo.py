"""Todo app: task lists and tasks with due dates, priorities and completion."""

import typing

from distillgym.envs.apps.base import ApiError, App, matches, nonempty, paginate, parse_date

Priority = typing.Literal["low", "medium", "high"]
_LIST_HINT = "Use apis.todo.list_task_lists() to find list ids."
_TASK_HINT = "Use apis.todo.list_tasks(...) or apis.todo.search_tasks(query=...) to find task ids."
_PRIO = {"high": 0, "medium": 1, "low": 2}


class Todo(App):
    """To-do lists."""

    name = "todo"
    description = "To-do lists: task lists, tasks with due dates and priorities, marking tasks done."
    schema: typing.ClassVar[dict] = {"lists": [], "tasks": []}

    def _list(self, list_id: int) -> dict:
        return self._find("lists", list_id, "task list", _LIST_HINT)

    def _task(self, task_id: int) -> dict:
        return self._find("tasks", task_id, "task", _TASK_HINT)

    def _view(self, t: dict) -> dict:
        lst = next((x for x in self._db["lists"] if x["id"] == t["list_id"]), None)
        return {**t, "list_name": lst["name"] if lst else None}

    @staticmethod
    def _ordered(tasks: list[dict]) -> list[dict]:
        return sorted(tasks, key=lambda t: (t["completed"], t["due_date"] or "9999-99-99", _PRIO[t["priority"]],
                                            t["id"]))

    def list_task_lists(self) -> list[dict]:
        """List the user's task lists with how many tasks are open and done in each.

        Returns: a list of {id, name, created_at, open_count, done_count}.
        """
        out = []
        for lst in self._db["lists"]:
            ts = [t for t in self._db["tasks"] if t["list_id"] == lst["id"]]
            out.append({**lst, "open_count": sum(not t["completed"] for t in ts),
                        "done_count": sum(t["completed"] for t in ts)})
        return out

    def create_task_list(self, name: str) -> dict:
        """Create a new task list.

        Args:
            name: Name of the list (unique).

        Returns: {"list_id": ..., "message": ...}.
        """
        name = nonempty(name, "name")
        if any(x["name"].lower() == name.lower() for x in self._db["lists"]):
            raise ApiError(f"A task list named {name!r} already exists. {_LIST_HINT}")
        rec = {"id": self._new_id("lists"), "name": name, "created_at": self._now}
        self._db["lists"].append(rec)
        return {"list_id": rec["id"], "message": f"Created list {name!r}."}

    def rename_task_list(self, list_id: int, name: str) -> dict:
        """Rename a task list.

        Args:
            list_id: Id of the list.
            name: New name.

        Returns: the list.
        """
        lst = self._list(list_id)
        name = nonempty(name, "name")
        if any(x["name"].lower() == name.lower() and x["id"] != list_id for x in self._db["lists"]):
            raise ApiError(f"A task list named {name!r} already exists.")
        lst["name"] = name
        return lst

    def delete_task_list(self, list_id: int) -> dict:
        """Delete a task list and all its tasks.

        Args:
            list_id: Id of the list.

        Returns: {"deleted_tasks": n, "message": ...}.
        """
        lst = self._list(list_id)
        n = sum(t["list_id"] == list_id for t in self._db["tasks"])
        self._remove("lists", list_id)
        self._db["tasks"] = [t for t in self._db["tasks"] if t["list_id"] != list_id]
        return {"deleted_tasks": n, "message": f"Deleted list {lst['name']!r}."}

    def list_tasks(self, list_id: int | None = None, completed: bool | None = None,
                   priority: Priority | None = None, due_before: str | None = None, due_after: str | None = None,
                   page_index: int = 0, page_limit: int = 5) -> list[dict]:
        """List tasks: open ones first, then by due date (tasks without one last), priority and id.

        Args:
            list_id: Only tasks of this list.
            completed: True for done tasks only, False for open tasks only, None for both.
            priority: Only tasks with this priority.
            due_before: Only tasks due on or before this date ('YYYY-MM-DD').
            due_after: Only tasks due on or after this date.

        Returns: a list of tasks (id, list_id, list_name, title, notes, due_date, priority, completed, completed_at,
            created_at).
        """
        if list_id is not None:
            self._list(list_id)
        hi = parse_date(due_before, "due_before") if due_before else None
        lo = parse_date(due_after, "due_after") if due_after else None
        out = [t for t in self._db["tasks"]
               if (list_id is None or t["list_id"] == list_id) and (completed is None or t["completed"] == completed)
               and (priority is None or t["priority"] == priority)
               and (not hi or (t["due_date"] and t["due_date"] <= hi))
               and (not lo or (t["due_date"] and t["due_date"] >= lo))]
        return [self._view(t) for t in paginate(self._ordered(out), page_index, page_limit)]

    def search_tasks(self, query: str, page_index: int = 0, page_limit: int = 5) -> list[dict]:
        """Search tasks in every list by words in their title or notes.

        Returns: a list of tasks as in list_tasks.
        """
        out = [t for t in self._db["tasks"] if matches(query, t["title"], t["notes"])]
        return [self._view(t) for t in paginate(self._ordered(out), page_index, page_limit)]

    def show_task(self, task_id: int) -> dict:
        """Show one task.

        Args:
            task_id: Id of the task.

        Returns: the task as in list_tasks.
        """
        return self._view(self._task(task_id))

    def add_task(self, list_id: int, title: str, due_date: str | None = None, priority: Priority = "medium",
                 notes: str = "") -> dict:
        """Add a task to a list.

        Args:
            list_id: Id of the list.
            title: What to do.
            due_date: Due date, 'YYYY-MM-DD'.
            priority: "low", "medium" or "high".
            notes: Extra details.

        Returns: {"task_id": ..., "message": ...}.
        """
        self._list(list_id)
        rec = {"id": self._new_id("tasks"), "list_id": list_id, "title": nonempty(title, "title"), "notes": notes,
               "due_date": parse_date(due_date, "due_date") if due_date else None, "priority": priority,
               "completed": False, "completed_at": None, "created_at": self._now}
        self._db["tasks"].append(rec)
        return {"task_id": rec["id"], "message": f"Added task {rec['title']!r}."}

    def update_task(self, task_id: int, title: str | None = None, due_date: str | None = None,
                    priority: Priority | None = None, notes: str | None = None, list_id: int | None = None) -> dict:
        """Change a task; fields left as None keep their value. Give list_id to move it to another list.

        Args:
            task_id: Id of the task.
            due_date: New due date 'YYYY-MM-DD', or "" to remove it.
            list_id: Move the task to this list.

        Returns: the updated task.
        """
        t = self._task(task_id)
        if list_id is not None:
            self._list(list_id)
            t["list_id"] = list_id
        if title is not None:
            t["title"] = nonempty(title, "title")
        if due_date is not None:
            t["due_date"] = parse_date(due_date, "due_date") if due_date.strip() else None
        if priority is not None:
            t["priority"] = priority
        if notes is not None:
            t["notes"] = notes
        return self._view(t)

    def mark_task_done(self, task_id: int, done: bool = True) -> dict:
        """Mark a task as done (or, with done=False, as not done again).

        Args:
            task_id: Id of the task.
            done: True for done, False to reopen it.

        Returns: the updated task.
        """
        t = self._task(task_id)
        t["completed"] = done
        t["completed_at"] = self._now if done else None
        return self._view(t)

    def delete_task(self, task_id: int) -> dict:
        """Delete a task.

        Args:
            task_id: Id of the task.

        Returns: {"message": ...}.
        """
        t = self._task(task_id)
        self._remove("tasks", task_id)
        return {"message": f"Deleted task {t['title']!r}."}
