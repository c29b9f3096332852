"""World generator for the files app: the file system, trip itineraries among them."""

from datetime import timedelta

from distillgym.envs.apps.world.base import WorldGen
from distillgym.envs.apps.world.catalog import GROCERIES, HOTEL, NOW, PROJECTS, RECIPES, STORES


class FilesGen(WorldGen):
    # ------------------------------------------------------------------------------------------------- files
    def files(self) -> None:
        r = self.rng
        files: list[dict] = []

        def put(path: str, content: str) -> None:
            created = self.past(150, 1)
            files.append({"id": len(files) + 1, "path": path, "content": content, "created_at": created,
                          "updated_at": created})

        for _ in range(self.n(4, 7)):
            store = r.choice(STORES)
            day = self.past(60, 1)[:10]
            items = [(g, round(r.uniform(1.5, 14), 2)) for g in self.sample(GROCERIES, r.randint(2, 5))]
            total = round(sum(p for _, p in items), 2)
            put(f"/documents/receipts/{day}_{store.lower().replace(' ', '_')}.txt",
                f"{store}\nDate: {day}\n" + "\n".join(f"{g}: ${p:.2f}" for g, p in items) + f"\nTOTAL: ${total:.2f}\n")
        for name, ingredients, minutes in self.sample(RECIPES, self.n(2, 4)):
            put(f"/documents/recipes/{name.lower().replace(' ', '_')}.txt",
                f"{name}\nTime: {minutes} min\nIngredients: {', '.join(ingredients)}\n")
        for city, depart, back, flight, code, price, hotel in self.trips:
            put(f"/documents/trips/{city.lower().replace(' ', '_')}_{depart.year}.txt",
                f"Trip to {city}\nDates: {depart.date()} to {back.date()}\nFlight: {flight} (booking {code}), "
                f"${price:.2f}\nHotel: {HOTEL}, ${hotel:.2f}\n"
                f"Budget: ${round(price + hotel + r.uniform(200, 800)):d}\n")
        months = [(NOW.replace(day=1) - timedelta(days=28 * i)).strftime("%Y-%m") for i in range(6, 0, -1)]
        put("/documents/budget.csv", "month,rent,groceries,transport,fun\n" + "\n".join(
            f"{m},{r.choice((1450, 1500, 1550))},{r.randint(250, 520)},{r.randint(60, 190)},{r.randint(80, 400)}"
            for m in months) + "\n")
        put("/documents/resume.txt", f"{self.user['name']}\n{self.user['job_title']} at {self.company}\n"
                                     f"Email: {self.user['email']}\nPhone: {self.user['phone']}\n")
        put(f"/work/{self.report_project.lower()}/report_draft.txt",
            f"{self.report_project} quarterly report (DRAFT)\n\nProgress: on track.\nBudget: TBD\nRisks: TBD\n")
        for proj in self.sample(PROJECTS, 2):
            put(f"/work/{proj.lower()}/metrics.csv", "week,signups,churn\n" + "\n".join(
                f"{w},{r.randint(100, 900)},{round(r.uniform(0.5, 4.0), 1)}" for w in range(1, 7)) + "\n")
        put("/photos/README.txt", "Photo backups are in the cloud; this folder keeps the index.\n")
        files.sort(key=lambda f: f["path"])
        for i, f in enumerate(files, 1):
            f["id"] = i
        dirs = sorted({"/".join(f["path"].split("/")[:k]) for f in files
                       for k in range(2, f["path"].count("/") + 1)} | {"/downloads"})
        self.s["files"] = {"files": files, "directories": [{"id": i + 1, "path": d, "created_at": self.past(300, 150)}
                                                           for i, d in enumerate(dirs)]}
        self.ids.update(files=len(files), directories=len(dirs))
