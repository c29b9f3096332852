"""World generator for the calendar app: events matching the mail (flights, parties, meetings) and the user's own."""

from datetime import datetime, timedelta

from distillgym.envs.apps.world.base import WorldGen, _iso
from distillgym.envs.apps.world.catalog import AIRLINE, NOW, PROJECTS, RESTAURANTS


class CalendarGen(WorldGen):
    # ------------------------------------------------------------------------------------------------- calendar
    def calendar(self) -> None:
        r, me = self.rng, self.user["email"]
        events: list[dict] = []

        def att(c: dict, resp: str) -> dict:
            return {"email": c["email"], "name": c["name"], "response": resp}

        def ev(title: str, start: datetime, minutes: int, organizer: str, attendees: list[dict], location: str = "",
               description: str = "") -> dict:
            rec = {"id": self.nid("events"), "title": title, "description": description, "location": location,
                   "start_time": _iso(start), "end_time": _iso(start + timedelta(minutes=minutes)),
                   "organizer_email": organizer, "attendees": attendees,
                   "created_at": _iso(min(NOW, start) - timedelta(days=r.randint(1, 10)))}
            events.append(rec)
            return rec

        me_att = {"email": me, "name": self.user["name"], "response": "accepted"}
        mgr = self.pick("manager")
        # Weekly 1:1 with the manager, from 3 weeks ago to 3 weeks ahead.
        base = NOW - timedelta(days=NOW.weekday()) + timedelta(days=r.choice((1, 2, 3)))
        hour = r.choice((10, 14, 16))
        for w in range(-3, 4):
            ev(f"1:1 with {mgr['first_name']}", base.replace(hour=hour, minute=0, second=0) + timedelta(weeks=w), 30,
               mgr["email"], [me_att.copy()], "Room 4B")
        for c, proj, start in self.meetings:
            resp = r.choice(("accepted", "pending", "tentative"))
            others = [att(x, r.choice(("accepted", "pending"))) for x in self.sample(self.by_rel.get("coworker", []),
                                                                                   min(2, len(self.by_rel.get(
                                                                                       "coworker", []))))
                      if x is not c]
            ev(f"{proj} sync", start, r.choice((30, 45, 60)), c["email"], [{**me_att, "response": resp}, *others],
               r.choice(("Room 2A", "Zoom", "Room 5C", "Cafeteria")))
        for _ in range(self.n(4, 7)):
            people = self.sample(self.by_rel.get("coworker", self.contacts), min(3, len(self.by_rel.get("coworker",
                                                                                                  self.contacts))))
            start = self.slot(r.randint(-20, 20), r.choice((9, 10, 11, 13, 14, 15, 16)), r.choice((0, 30)))
            proj = r.choice(PROJECTS)
            ev(r.choice((f"{proj} planning", f"{proj} retro", f"{proj} demo", f"{proj} standup", "Team offsite prep",
                         "Hiring sync")), start, r.choice((30, 60, 90)), me,
               [att(x, r.choice(("accepted", "accepted", "declined", "pending"))) for x in people],
               r.choice(("Room 2A", "Zoom", "Room 5C")), f"Agenda: {proj} status, blockers, next steps.")
        for city, depart, back, flight, code, _, _ in self.trips:
            ev(f"Flight {flight} to {city}", depart, r.randint(90, 420), me, [], "Airport",
               f"Booking {code}, {AIRLINE}.")
            ev(f"Flight home from {city}", back, r.randint(90, 420), me, [], f"{city} airport")
        for c, day, place, guests in self.parties:
            ev(f"{c['first_name']}'s birthday party", day, 180, c["email"],
               [{**me_att, "response": "pending"}] + [att(x, "accepted") for x in self.contacts
                                                       if x["email"] in guests], place)
        personal = [("Dentist appointment", 60, "Greenfield Dental"), ("Gym session", 60, "FitZone Gym"),
                    ("Haircut", 45, "Studio 9"), ("Car service", 120, "Quick Auto"), ("Yoga class", 60, "Zen Studio"),
                    ("Book club", 120, "Book Nook")]
        for title, minutes, where in self.sample(personal, self.n(3, 5)):
            ev(title, self.slot(r.randint(-25, 25), r.choice((8, 12, 17, 18, 19)), r.choice((0, 30))), minutes, me, [],
               where)
        for _ in range(self.n(2, 4)):
            c = self.pick("friend", "family", "partner")
            start = self.slot(r.randint(-20, 20), r.choice((12, 13, 18, 19, 20)), r.choice((0, 30)))
            place = r.choice(RESTAURANTS)
            ev(f"{r.choice(('Dinner', 'Lunch', 'Drinks', 'Brunch'))} with {c['first_name']}", start, 90, me,
               [att(c, r.choice(("accepted", "pending")))], place)
        events.sort(key=lambda e: (e["start_time"], e["title"]))
        for i, e in enumerate(events, 1):
            e["id"] = i
        self.s["calendar"] = {"events": events}
        self.ids["events"] = len(events)
