"""Seeded world generator: the user, ~20 people they know, and every app's data, as one JSON-serializable dict.

`generate_world(seed)` is deterministic in the seed (one `random.Random(seed)`, no wall clock): times are ISO strings
relative to the fixed simulated now `state["_meta"]["now"]`. The data cross-references itself so that tasks have
something to ask about: dinner emails match payment requests, flight emails match calendar events and trip files,
shipping emails match shop orders, gift-idea notes name people with upcoming birthdays.
"""

from typing import Any

from distillgym.envs.apps.world.calendar import CalendarGen
from distillgym.envs.apps.world.files import FilesGen
from distillgym.envs.apps.world.mail import MailGen
from distillgym.envs.apps.world.music import MusicGen
from distillgym.envs.apps.world.notes import NotesGen
from distillgym.envs.apps.world.payments import PaymentsGen
from distillgym.envs.apps.world.shop import ShopGen
from distillgym.envs.apps.world.todo import TodoGen


class _Gen(MailGen, CalendarGen, PaymentsGen, ShopGen, NotesGen, TodoGen, FilesGen, MusicGen):
    """Every app's generator over one WorldGen."""

    # ------------------------------------------------------------------------------------------------- all
    def build(self) -> dict:
        self.people()
        self.mail()
        self.calendar()
        self.payments()
        self.shop()
        self.notes()
        self.todo()
        self.files()
        self.music()
        emails = sorted(self.emails, key=lambda e: (e["sent_at"], e["id"]))
        remap: dict[Any, Any] = {}
        for i, e in enumerate(emails, 1):
            remap.setdefault(e["thread_id"], len(remap) + 1)
            e["id"] = i
        for e in emails:
            e["thread_id"] = remap[e["thread_id"]]
        self.s["mail"] = {"emails": emails, "labels": [
            {"id": i + 1, "name": n, "created_at": "2025-06-01T12:00:00"}
            for i, n in enumerate(("family", "finance", "receipts", "travel", "work"))]}
        s = self.s
        counters = s["_meta"]["next_ids"]
        for app, tables in s.items():
            if app.startswith("_"):
                continue
            for table, rows in tables.items():
                counters[f"{app}.{table}"] = max((x["id"] for x in rows), default=0) + 1
        counters["mail.threads"] = len(remap) + 1
        return {k: s[k] for k in ("_meta", "_supervisor", "mail", "contacts", "calendar", "notes", "todo", "payments",
                                  "shop", "files", "music")}


def generate_world(seed: int, *, size: str = "small") -> dict:
    """A fresh seeded world: `{"_meta", "_supervisor", app: {table: [records]}}`, JSON-serializable, deterministic.

    `size`: "small" (~20 people, a few hundred records), "medium" or "large" (more of everything).
    """
    return _Gen(int(seed), size).build()
