"""World generator for the notes app: notes, gift ideas naming people with upcoming birthdays among them."""

from distillgym.envs.apps.base import DEFAULT_NOW
from distillgym.envs.apps.world.base import WorldGen
from distillgym.envs.apps.world.catalog import BOOKS, GROCERIES, RECIPES


class NotesGen(WorldGen):
    # ------------------------------------------------------------------------------------------------- notes
    def notes(self) -> None:
        r = self.rng
        notes: list[dict] = []

        def note(title: str, content: str, tags: list[str], pinned: bool = False) -> None:
            created = self.past(120, 1)
            notes.append({"id": len(notes) + 1, "title": title, "content": content, "tags": sorted(tags),
                          "pinned": pinned, "created_at": created,
                          "updated_at": max(created, self.past(30, 0.1)) if r.random() < 0.4 else created})

        for name, ingredients, minutes in self.sample(RECIPES, self.n(2, 4)):
            note(f"Recipe: {name}", f"Ready in {minutes} minutes.\nIngredients:\n" + "\n".join(
                f"- {x}" for x in ingredients) + "\nSteps: prep everything, cook, season to taste.", ["recipes"])
        note("Grocery list", "\n".join(f"- {x}" for x in self.sample(GROCERIES, r.randint(5, 9))), ["shopping"],
             pinned=True)
        note("Books to read", "\n".join(f"{i + 1}. {b}" for i, b in enumerate(self.sample(BOOKS, r.randint(4, 7)))),
             ["books", "personal"])
        soon = sorted(self.contacts, key=lambda c: c["birthday"][5:])
        picks = self.sample(self.products, 3)
        gift_for = [c for c in self.contacts if c["birthday"][5:] >= DEFAULT_NOW[5:10]][:3] or soon[:3]
        note("Gift ideas", "\n".join(f"- {c['name']}: {p['name']}" for c, p in zip(gift_for, picks, strict=False)),
             ["gifts", "personal"])
        for c, proj, start in self.meetings[:2]:
            note(f"{proj} meeting notes", f"Attendees: {c['name']}, {self.user['name']}\n- Scope agreed for "
                                          f"{proj}\n- Follow up on budget by {start.date()}\n- Risks: timeline",
                 ["work", proj.lower()])
        for city, *_ in self.trips:
            note(f"Packing list for {city}", "\n".join(f"- {x}" for x in self.sample(
                ["passport", "charger", "rain jacket", "sunscreen", "camera", "adapter", "headphones", "snacks",
                 "walking shoes", "swimsuit"], 6)), ["travel"])
        note("Workout log", "\n".join(f"{self.past(20, 1)[:10]}: {r.choice(('run', 'yoga', 'weights', 'swim'))} "
                                      f"{r.randint(20, 75)} min" for _ in range(5)), ["health"])
        note("Wifi and router", f"Network: {self.user['last_name']}Home\nRouter admin at 192.168.1.1", ["home"])
        note("Movie watchlist", "\n".join(f"- {x}" for x in self.sample(
            ["Arrival", "Past Lives", "Dune: Part Two", "Paddington 2", "Parasite", "The Holdovers", "Spirited Away",
             "Knives Out"], 4)), ["personal"])
        self.s["notes"] = {"notes": notes}
        self.ids["notes"] = len(notes)
