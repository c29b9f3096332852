"""The generator's shared part: the rng and id counters, the user and the people they know, and sending an email."""

import random
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from distillgym.envs.apps.base import DEFAULT_NOW
from distillgym.envs.apps.world.catalog import (
    CITIES,
    COMPANIES,
    FIRST_NAMES,
    JOB_TITLES,
    LAST_NAMES,
    MAIL_DOMAINS,
    NOW,
    OTHER_COMPANIES,
    SIZES,
    STREET_KINDS,
    STREETS,
)


def _iso(dt: datetime) -> str:
    return dt.isoformat(timespec="seconds")


class WorldGen:
    """One world being generated: the rng, id counters and the state under construction; each app's generator
    (`world/<app>.py`) adds its part, and `generate_world` runs them in order."""

    # set by the generators, read by later ones
    company: str
    domain: str
    city: tuple
    user: dict[str, Any]
    contacts: list[dict[str, Any]]
    by_rel: dict[str, list[dict[str, Any]]]
    emails: list[dict]
    meetings: list[tuple[Any, ...]]
    invoices: list[tuple[Any, ...]]
    trips: list[tuple[Any, ...]]
    parties: list[tuple[Any, ...]]
    splits: list[tuple[Any, ...]]
    report_due: str
    report_project: str
    reco_friend: dict[str, Any]
    user_threads: Callable[[], int]
    cards: list[dict[str, Any]]
    products: list[dict[str, Any]]

    def __init__(self, seed: int, size: str) -> None:
        if size not in SIZES:
            raise ValueError(f"size must be one of {sorted(SIZES)}, got {size!r}")
        self.rng = random.Random(seed)
        self.k = SIZES[size]
        self.ids: dict[str, int] = {}
        self.s: dict = {"_meta": {"now": DEFAULT_NOW, "seed": seed, "size": size, "next_ids": {}}}

    def nid(self, key: str) -> int:
        self.ids[key] = self.ids.get(key, 0) + 1
        return self.ids[key]

    def sample(self, pop: list, k: int) -> list:
        return self.rng.sample(pop, min(k, len(pop)))

    def n(self, lo: int, hi: int) -> int:
        return self.rng.randint(round(lo * self.k), round(hi * self.k))

    def past(self, max_days: float, min_days: float = 0.0, *, work_hours: bool = False) -> str:
        """A random past time between min_days and max_days ago (minute resolution)."""
        r = self.rng
        if work_hours:
            day = NOW - timedelta(days=r.randint(max(1, int(min_days)), max(1, int(max_days))))
            return _iso(day.replace(hour=r.randint(8, 18), minute=r.choice((0, 7, 15, 22, 30, 41, 45, 52)), second=0))
        return _iso(NOW - timedelta(minutes=r.randint(int(min_days * 1440) + 5, int(max_days * 1440))))

    def slot(self, day_offset: int, hour: int, minute: int = 0) -> datetime:
        return (NOW + timedelta(days=day_offset)).replace(hour=hour, minute=minute, second=0)

    # ------------------------------------------------------------------------------------------------- people
    def people(self) -> None:
        r = self.rng
        firsts = self.sample(FIRST_NAMES, len(FIRST_NAMES))
        company, domain = r.choice(COMPANIES)
        city = r.choice(CITIES)
        user_first, user_last = firsts.pop(), r.choice(LAST_NAMES)
        self.company, self.domain, self.city = company, domain, city
        self.user = {"first_name": user_first, "last_name": user_last, "name": f"{user_first} {user_last}",
                     "email": f"{user_first.lower()}.{user_last.lower()}@{r.choice(MAIL_DOMAINS)}",
                     "phone": self.phone(), "birthday": f"{r.randint(1978, 1998)}-{r.randint(1, 12):02d}-"
                                                      f"{r.randint(1, 28):02d}",
                     "address": self.address(city), "company": company, "job_title": r.choice(JOB_TITLES)}
        self.s["_supervisor"] = {"profile": self.user, "completed": False, "answer": None}
        plan = (["manager"] + ["coworker"] * self.n(4, 6) + ["parent", "parent"] + ["sibling"] * r.randint(1, 2)
                + ["friend"] * self.n(6, 9) + ["partner"] * r.randint(0, 1) + ["roommate"] * r.randint(0, 1)
                + ["neighbor"] + ["classmate"] * r.randint(1, 2) + ["friend"] * self.n(0, 2))
        lasts = [x for x in LAST_NAMES if x != user_last]
        r.shuffle(lasts)
        contacts: list[dict[str, Any]] = []
        seen_emails = {self.user["email"]}
        for i, kind in enumerate(plan):
            first = firsts.pop() if firsts else f"Alex{i}"
            if kind in ("parent", "sibling"):
                last, rels = user_last, sorted({kind, "family"})
            else:
                last = lasts.pop() if lasts else r.choice(LAST_NAMES)
                rels = ["coworker", "manager"] if kind == "manager" else [kind]
                if kind == "coworker" and r.random() < 0.25:
                    rels = ["coworker", "friend"]
                if kind == "classmate" and r.random() < 0.5:
                    rels = ["classmate", "friend"]
            work = "coworker" in rels
            dom = domain if work else r.choice(MAIL_DOMAINS)
            style = r.randint(0, 3)
            local = [f"{first}.{last}", f"{first}{last}", f"{first[0]}.{last}", f"{first}_{last}{r.randint(1, 99)}"][
                style].lower()
            email = f"{local}@{dom}"
            while email in seen_emails:
                email = f"{local}{r.randint(1, 999)}@{dom}"
            seen_emails.add(email)
            year = r.randint(1950, 1968) if kind == "parent" else r.randint(1972, 2003)
            contacts.append({
                "id": i + 1, "first_name": first, "last_name": last, "name": f"{first} {last}", "email": email,
                "phone": self.phone(), "relationships": rels,
                "birthday": f"{year}-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}",
                "address": self.address(city if r.random() < 0.7 else r.choice(CITIES)),
                "company": company if work else r.choice(OTHER_COMPANIES) if kind != "parent" else None,
                "job_title": r.choice(JOB_TITLES) if kind != "parent" else "Retired",
                "notes": "", "created_at": self.past(900, 30)})
        # A few birthdays soon, so that birthday tasks always have material.
        for c in self.sample(contacts, 3):
            soon = NOW + timedelta(days=r.randint(1, 40))
            c["birthday"] = f"{c['birthday'][:4]}-{soon.month:02d}-{min(soon.day, 28):02d}"
        self.contacts = contacts
        self.by_rel: dict[str, list[dict[str, Any]]] = {}
        for c in contacts:
            for rel in c["relationships"]:
                self.by_rel.setdefault(rel, []).append(c)
        self.s["contacts"] = {"contacts": contacts}

    def phone(self) -> str:
        return f"+1-{self.rng.randint(201, 989)}-555-{self.rng.randint(1000, 9999)}"

    def address(self, city: tuple) -> str:
        r = self.rng
        return f"{r.randint(10, 2999)} {r.choice(STREETS)} {r.choice(STREET_KINDS)}, {city[0]}, {city[1]} {city[2]}"

    def pick(self, *rels: str) -> dict:
        pool = [c for rel in rels for c in self.by_rel.get(rel, [])]
        return self.rng.choice(pool or self.contacts)

    # ------------------------------------------------------------------------------------------------- mail
    def email(self, thread: int, sender: str, sender_name: str, to: list[str], subject: str, body: str, at: str,
              *, cc: list[str] | None = None, labels: list[str] | None = None, attachments: list | None = None,
              read: bool | None = None, starred: bool = False) -> dict:
        mine = sender == self.user["email"]
        rec = {"id": self.nid("emails"), "thread_id": thread, "folder": "sent" if mine else "inbox",
               "sender": sender, "sender_name": sender_name, "recipients": to, "cc": cc or [], "subject": subject,
               "body": body, "sent_at": at, "read": True if mine else (self.rng.random() < 0.7 if read is None
                                                                          else read),
               "starred": starred, "labels": labels or [], "attachments": attachments or []}
        self.emails.append(rec)
        return rec
