"""World generator for the todo app: to-do lists and tasks."""

from datetime import timedelta
from typing import Any

from distillgym.envs.apps.world.base import WorldGen
from distillgym.envs.apps.world.catalog import NOW, TODO_LISTS


class TodoGen(WorldGen):
    # ------------------------------------------------------------------------------------------------- todo
    def todo(self) -> None:
        r = self.rng
        lists: list[dict[str, Any]] = []
        tasks: list[dict[str, Any]] = []
        for name in self.sample(list(TODO_LISTS), self.n(3, 4) if self.k < 1.5 else 4):
            lid = len(lists) + 1
            lists.append({"id": lid, "name": name, "created_at": self.past(200, 60)})
            for title, prio in self.sample(TODO_LISTS[name], min(len(TODO_LISTS[name]), self.n(4, 7))):
                done = r.random() < 0.3
                due = (NOW + timedelta(days=r.randint(-10, 30))).date().isoformat() if r.random() < 0.75 else None
                created = self.past(40, 2)
                tasks.append({"id": len(tasks) + 1, "list_id": lid, "title": title.format(project=self.report_project),
                              "notes": "", "due_date": due, "priority": prio, "completed": done,
                              "completed_at": self.past(2, 0.1) if done else None, "created_at": created})
        self.s["todo"] = {"lists": lists, "tasks": tasks}
        self.ids.update(lists=len(lists), tasks=len(tasks))
