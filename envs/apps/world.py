"""Seeded world generator: the user, ~20 people they know, and every app's data, as one JSON-serializable dict.

`generate_world(seed)` is deterministic in the seed (one `random.Random(seed)`, no wall clock): times are ISO strings
relative to the fixed simulated now `state["_meta"]["now"]`. The data cross-references itself so that tasks have
something to ask about: dinner emails match payment requests, flight emails match calendar events and trip files,
shipping emails match shop orders, gift-idea notes name people with upcoming birthdays.
"""

import random
from datetime import datetime, timedelta
from typing import Any

from distillgym.envs.apps.base import DEFAULT_NOW

NOW = datetime.fromisoformat(DEFAULT_NOW)
SIZES = {"small": 1.0, "medium": 1.5, "large": 2.5}

FIRST_NAMES = [
    "Aisha", "Ben", "Carla", "Diego", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jamal", "Kara", "Liam", "Maya",
    "Nikhil", "Olivia", "Pablo", "Quinn", "Rosa", "Samir", "Tessa", "Umar", "Vera", "Wes", "Ximena", "Yusuf", "Zoe",
    "Amara", "Bruno", "Chloe", "Dmitri", "Esme", "Felix", "Gina", "Hassan", "Ivy", "Jonas", "Keiko", "Leo", "Mira",
    "Noah", "Priya", "Rafael", "Sofia", "Theo", "Uma", "Victor", "Wren", "Yara", "Adrian", "Bianca", "Caleb", "Daria",
    "Emil", "Freya", "Gabriel", "Hana", "Isaac", "Julia", "Kofi", "Lucia",
]
LAST_NAMES = [
    "Alvarez", "Bennett", "Chen", "Dubois", "Evans", "Fischer", "Garcia", "Hughes", "Ito", "Johnson", "Kowalski",
    "Lopez", "Murphy", "Nakamura", "Okafor", "Patel", "Quinn", "Rossi", "Schmidt", "Turner", "Usman", "Varga",
    "Walsh", "Xu", "Yilmaz", "Zimmer", "Andersen", "Brooks", "Costa", "Diaz", "Ellis", "Ferreira", "Grant", "Hale",
    "Ibrahim", "Jensen", "Kim", "Larsen", "Moreno", "Novak", "Ortiz", "Price", "Reyes", "Singh", "Tanaka", "Vogel",
]
COMPANIES = [("Northwind Labs", "northwind.com"), ("Bluefin Analytics", "bluefin.io"),
             ("Cedar & Stone", "cedarstone.com"), ("Kestrel Systems", "kestrel.dev"),
             ("Orchid Health", "orchid.health")]
OTHER_COMPANIES = ["Acme Corp", "Globex", "Initech", "Umbrella Design", "Stark Logistics", "Wayne Foods", "Hooli",
                   "Vandelay Imports", "Soylent Labs", "Pied Piper"]
JOB_TITLES = ["Software Engineer", "Product Manager", "Data Analyst", "Designer", "Marketing Lead", "Accountant",
              "Sales Manager", "Research Scientist", "Operations Lead", "HR Partner"]
MAIL_DOMAINS = ["gmail.com", "yahoo.com", "outlook.com", "proton.me", "icloud.com"]
STREETS = ["Maple", "Oak", "Cedar", "Elm", "Pine", "Willow", "Lake", "Hill", "Park", "River", "Sunset", "Harbor"]
STREET_KINDS = ["St", "Ave", "Rd", "Blvd", "Lane", "Drive"]
CITIES = [("Springfield", "IL", "62704"), ("Portland", "OR", "97205"), ("Austin", "TX", "78701"),
          ("Madison", "WI", "53703"), ("Boulder", "CO", "80302"), ("Raleigh", "NC", "27601")]
TRAVEL_CITIES = ["Lisbon", "Tokyo", "Chicago", "Denver", "Barcelona", "Montreal", "Seattle", "New Orleans", "Boston",
                 "Mexico City"]
RESTAURANTS = ["Luigi's Trattoria", "Sakura Sushi", "The Golden Fork", "Taco Libre", "Bombay Spice", "Le Petit Bistro",
               "Green Bowl", "Smokehouse BBQ", "Pho Saigon", "Blue Door Cafe"]
PROJECTS = ["Atlas", "Beacon", "Comet", "Delta", "Evergreen", "Falcon", "Horizon", "Nimbus"]
VENDORS = [("Brightline Internet", "billing@brightline.net", 45, 90), ("City Power & Water", "invoices@citypower.com",
           60, 180), ("Greenfield Dental", "billing@greenfielddental.com", 80, 400),
           ("FitZone Gym", "accounts@fitzone.com", 30, 70), ("Harbor Insurance", "billing@harborins.com", 90, 260)]
SHOP_NAME, SHOP_EMAIL, SHOP_DEALS = "ShopMart", "orders@shopmart.com", "deals@shopmart.com"
AIRLINE, AIRLINE_EMAIL = "Skyway Airlines", "no-reply@skyway-air.com"
HOTEL, HOTEL_EMAIL = "StayLane", "reservations@staylane.com"

P2P = [("Dinner at {r}", 18, 85), ("Groceries", 12, 90), ("Concert tickets", 40, 160), ("Uber ride home", 8, 35),
       ("Rent share", 400, 950), ("Utilities split", 25, 110), ("Coffee", 4, 12), ("Movie night", 10, 30),
       ("Birthday gift for {p}", 20, 80), ("Gas money", 15, 60), ("Brunch at {r}", 15, 55), ("Book club snacks", 6, 25),
       ("Weekend cabin", 120, 300), ("Team lunch", 12, 40), ("Fantasy league dues", 20, 50), ("Paint supplies", 10, 45)]

PRODUCTS: dict[str, tuple[list[Any], ...]] = {
    "Electronics": (["Wireless Headphones", 40, 300], ["USB-C Charger", 15, 60], ["Bluetooth Speaker", 25, 200],
                    ["Mechanical Keyboard", 50, 180], ["Wireless Mouse", 15, 80], ["27-inch Monitor", 150, 450],
                    ["Smartwatch", 90, 400], ["Portable SSD 1TB", 60, 160], ["Webcam", 30, 120]),
    "Kitchen": (["Blender", 30, 150], ["Chef's Knife", 25, 140], ["Coffee Maker", 35, 220],
                ["Cast Iron Skillet", 20, 70], ["Electric Kettle", 20, 90], ["Air Fryer", 60, 180],
                ["Cutting Board", 12, 45]),
    "Books": (["Cookbook: Weeknight Dinners", 15, 35], ["Novel: The Quiet Harbor", 10, 28],
              ["Guide to Python", 25, 55], ["Travel Guide: Portugal", 14, 30], ["Biography: A Life in Music", 12, 32],
              ["Sci-Fi: Stars Beyond", 9, 25]),
    "Clothing": (["Rain Jacket", 50, 180], ["Running Shoes", 60, 160], ["Wool Sweater", 40, 120],
                 ["Denim Jeans", 35, 110], ["Baseball Cap", 12, 35], ["Hiking Socks (3-pack)", 12, 30]),
    "Home": (["Desk Lamp", 20, 90], ["Throw Blanket", 20, 70], ["Scented Candle", 8, 30], ["Wall Clock", 15, 60],
             ["Storage Baskets (set of 3)", 20, 55], ["Indoor Plant Pot", 10, 40]),
    "Sports": (["Yoga Mat", 18, 70], ["Dumbbell Set", 40, 200], ["Water Bottle", 10, 40], ["Tennis Racket", 40, 220],
               ["Camping Tent", 80, 350], ["Bike Helmet", 30, 120]),
    "Beauty": (["Face Moisturizer", 12, 60], ["Shampoo", 6, 30], ["Electric Toothbrush", 30, 150],
               ["Sunscreen SPF 50", 8, 25]),
    "Toys": (["Building Blocks Set", 20, 120], ["Board Game: Island Quest", 20, 60], ["Puzzle 1000 pieces", 12, 30],
             ["Plush Bear", 10, 35]),
    "Office": (["Notebook (pack of 5)", 8, 25], ["Gel Pens (12)", 6, 18], ["Ergonomic Chair", 150, 450],
               ["Standing Desk", 250, 700], ["Desk Organizer", 12, 40]),
}
BRANDS = {"Electronics": ["Sonora", "Voltix", "Pixelon", "Auralis"], "Kitchen": ["ChefLine", "Hearth & Co",
          "Brewmaster"], "Books": ["Harbor Press", "Lantern Books"], "Clothing": ["Northtrail", "UrbanThread",
          "Pacefield"], "Home": ["Nestwell", "Lumen Home"], "Sports": ["Peakform", "Stridewell", "Camplight"],
          "Beauty": ["Glowe", "PureLeaf"], "Toys": ["Brickly", "Playnest"], "Office": ["Deskworks", "Paperlane"]}
PRODUCT_ADJ = ["", "Pro", "Lite", "Plus", "Classic", "Max", "Mini", "Eco"]

GENRES = ["pop", "rock", "jazz", "hip-hop", "electronic", "classical", "country", "indie", "r&b", "folk"]
BAND_ADJ = ["Velvet", "Electric", "Silver", "Midnight", "Golden", "Wild", "Neon", "Paper", "Crimson", "Hollow",
            "Lucky", "Quiet", "Broken", "Northern"]
BAND_NOUN = ["Echoes", "Foxes", "Harbors", "Satellites", "Lanterns", "Rivers", "Owls", "Parades", "Tides", "Comets",
             "Giants", "Wolves", "Dreamers", "Pilots"]
TITLE_A = ["Summer", "Electric", "Lonely", "Golden", "Broken", "Silent", "Endless", "Burning", "Paper", "Blue",
           "Northern", "Midnight", "Wild", "Secret", "Falling", "Little", "Neon", "Velvet", "Distant", "Sweet"]
TITLE_N = ["Heart", "Rain", "Highway", "Dreams", "Fire", "Light", "City", "Ocean", "Stars", "Road", "Morning",
           "Shadows", "Garden", "River", "Sky", "Letters", "Echo", "Wings", "Storm", "Home", "Radio", "Memory"]
COUNTRIES = ["US", "UK", "Canada", "Australia", "Sweden", "Nigeria", "Brazil", "Japan", "France", "Korea"]

RECIPES = [
    ("Lemon Garlic Pasta", ["spaghetti", "lemon", "garlic", "olive oil", "parmesan", "parsley"], 20),
    ("Chicken Curry", ["chicken thighs", "onion", "curry paste", "coconut milk", "rice", "cilantro"], 40),
    ("Shakshuka", ["eggs", "tomatoes", "bell pepper", "onion", "cumin", "feta"], 30),
    ("Banana Bread", ["bananas", "flour", "sugar", "butter", "eggs", "baking soda", "walnuts"], 70),
    ("Veggie Tacos", ["tortillas", "black beans", "corn", "avocado", "lime", "salsa"], 25),
    ("Mushroom Risotto", ["arborio rice", "mushrooms", "shallot", "white wine", "parmesan", "stock"], 45),
    ("Greek Salad", ["cucumber", "tomatoes", "red onion", "olives", "feta", "oregano"], 10),
    ("Pancakes", ["flour", "milk", "eggs", "butter", "baking powder", "maple syrup"], 20),
]
BOOKS = ["The Overstory", "Project Hail Mary", "Educated", "Circe", "The Midnight Library", "Sapiens", "Dune",
         "Atomic Habits", "Pachinko", "The Martian", "Klara and the Sun", "Thinking, Fast and Slow"]
GROCERIES = ["milk", "eggs", "bread", "apples", "spinach", "chicken", "rice", "yogurt", "coffee", "bananas", "cheese",
             "tomatoes", "pasta", "olive oil", "onions", "butter"]
STORES = ["FreshMart", "Corner Grocer", "Hardware Hub", "Book Nook", "PharmaPlus", "Pet Palace"]

TODO_LISTS = {
    "Personal": [("Renew passport", "high"), ("Call the bank about the card fee", "medium"), ("Book haircut", "low"),
                 ("Schedule dentist cleaning", "medium"), ("Return library books", "low"),
                 ("Plan weekend hike", "low"), ("Update emergency contacts", "medium")],
    "Work": [("Finish {project} report", "high"), ("Review pull requests", "medium"),
             ("Prepare slides for all-hands", "high"), ("Submit expense report", "medium"),
             ("1:1 prep notes", "low"), ("Write onboarding doc", "low"), ("Fix flaky {project} tests", "medium")],
    "Home": [("Fix leaking faucet", "high"), ("Replace air filter", "medium"), ("Clean gutters", "low"),
             ("Donate old clothes", "low"), ("Buy light bulbs", "low"), ("Paint the bedroom", "medium")],
    "Groceries": [(g.capitalize(), "low") for g in ("milk", "eggs", "coffee beans", "spinach", "rice", "olive oil",
                                                    "bananas")],
}


def _iso(dt: datetime) -> str:
    return dt.isoformat(timespec="seconds")


class _Gen:
    """One world being generated: the rng, id counters and the state under construction."""

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

    def mail(self) -> None:
        r, u = self.rng, self.user
        self.emails: list[dict] = []
        me, my = u["email"], u["name"]
        fu = u["first_name"]

        def thread() -> int:
            return self.nid("threads")

        # Meeting requests from coworkers (some answered), with matching calendar invitations.
        self.meetings: list[tuple[Any, ...]] = []
        for _ in range(self.n(2, 4)):
            c = self.pick("coworker", "manager")
            proj = r.choice(PROJECTS)
            day = r.randint(1, 12)
            start = self.slot(day, r.choice((9, 10, 11, 13, 14, 15, 16)), r.choice((0, 30)))
            at = self.past(4, 0.2, work_hours=True)
            t = thread()
            when = start.strftime("%A %B %d at %I:%M %p").replace(" 0", " ")
            e = self.email(t, c["email"], c["name"], [me], f"{proj} sync",
                           f"Hi {fu},\n\nCould we meet {when} to go over the {proj} "
                           f"{r.choice(['roadmap', 'budget', 'launch plan', 'metrics', 'design review'])}? "
                           f"I'll send an invite.\n\nThanks,\n{c['first_name']}", at, labels=["work"])
            if r.random() < 0.5:
                self.email(t, me, my, [c["email"]], f"Re: {proj} sync", "Sounds good, see you then.",
                           _iso(datetime.fromisoformat(at) + timedelta(minutes=r.randint(10, 240))))
                e["read"] = True
            self.meetings.append((c, proj, start))
        # Invoices with attachments.
        self.invoices: list[tuple[Any, ...]] = []
        for vendor, addr, lo, hi in self.sample(VENDORS, self.n(2, 3)):
            amount = round(r.uniform(lo, hi), 2)
            inv = f"INV-{r.randint(10000, 99999)}"
            due = (NOW + timedelta(days=r.randint(-5, 20))).date().isoformat()
            at = self.past(20, 1)
            content = (f"{vendor}\nInvoice {inv}\nBilled to: {my}\nIssued: {at[:10]}\nDue: {due}\n"
                       f"Amount due: ${amount:.2f}\nPay to: {addr}\n")
            self.email(thread(), addr, vendor, [me], f"Invoice {inv} from {vendor}",
                       f"Dear {my},\n\nYour invoice {inv} for ${amount:.2f} is due on {due}. Please pay it via the "
                       f"payments app to {addr}.\n\nThank you,\n{vendor}", at, labels=["finance"],
                       attachments=[{"name": f"invoice_{inv}.txt", "content": content}])
            self.invoices.append((vendor, addr, amount, inv, due))
        # Trips: flight + hotel confirmations, matching calendar events and a trip file.
        self.trips: list[tuple[Any, ...]] = []
        for _ in range(r.randint(1, 2)):
            city = r.choice([c for c in TRAVEL_CITIES if c not in [x[0] for x in self.trips]])
            depart = self.slot(r.randint(6, 45), r.choice((7, 9, 12, 15, 18)), r.choice((0, 15, 40)))
            nights = r.randint(2, 7)
            back = depart + timedelta(days=nights)
            flight = f"SK{r.randint(100, 999)}"
            code = "".join(r.choice("ABCDEFGHJKLMNPQRSTUVWXYZ23456789") for _ in range(6))
            price = round(r.uniform(180, 900), 2)
            at = self.past(25, 2)
            self.email(thread(), AIRLINE_EMAIL, AIRLINE, [me], f"Your flight to {city} is confirmed ({code})",
                       f"Hello {my},\n\nYour booking {code} is confirmed.\nFlight {flight} to {city}\nDeparts: "
                       f"{_iso(depart)}\nReturn: {_iso(back)}\nTotal paid: ${price:.2f}\n\nHave a great trip!\n"
                       f"{AIRLINE}", at, labels=["travel"], read=True)
            hotel_price = round(nights * r.uniform(90, 260), 2)
            self.email(thread(), HOTEL_EMAIL, HOTEL, [me], f"Reservation confirmed: {city}, {nights} nights",
                       f"Hi {fu},\n\nYour stay in {city} from {depart.date()} to {back.date()} ({nights} nights) is "
                       f"booked. Total: ${hotel_price:.2f}.\n\n{HOTEL}", self.past(24, 1), labels=["travel"])
            self.trips.append((city, depart, back, flight, code, price, hotel_price))
        # Birthday party invitations from friends (matching calendar events).
        self.parties: list[tuple[Any, ...]] = []
        for _ in range(r.randint(1, 2)):
            c = self.pick("friend", "sibling")
            party_at = self.slot(r.randint(3, 25), r.choice((18, 19, 20)))
            place = r.choice(RESTAURANTS)
            guests = [x["email"] for x in self.sample(self.by_rel.get("friend", self.contacts), 2) if x is not c]
            self.email(thread(), c["email"], c["name"], [me], f"Party at {place}!",
                       f"Hey {fu}!\n\nI'm celebrating my birthday on {party_at.strftime('%A %B %d')} at {place}, "
                       f"starting {party_at.strftime('%I %p').lstrip('0')}. Hope you can make it!\n\n{c['first_name']}",
                       self.past(10, 0.5), cc=guests)
            self.parties.append((c, party_at, place, guests))
        # Dinner splits: friend says they sent a payment request (matching payments.requests).
        self.splits: list[tuple[Any, ...]] = []
        for _ in range(self.n(2, 3)):
            c = self.pick("friend", "roommate", "coworker")
            place = r.choice(RESTAURANTS)
            total = round(r.uniform(60, 240), 2)
            people = r.randint(2, 4)
            share = round(total / people, 2)
            at = self.past(12, 1)
            self.email(thread(), c["email"], c["name"], [me], f"Dinner at {place}",
                       f"Hi {fu},\n\nThanks for coming! The bill was ${total:.2f} for {people} of us, so your share is "
                       f"${share:.2f}. I sent you a request on the payments app.\n\n{c['first_name']}", at)
            self.splits.append((c, place, share, at))
        # Family.
        for _ in range(r.randint(1, 2)):
            c = self.pick("parent", "sibling")
            t = thread()
            at = self.past(14, 1)
            topic = r.choice([("Sunday lunch?", "Are you free for lunch this Sunday? Dad is making lasagna."),
                              ("Photos from the holidays", "I finally uploaded the photos. Let me know which ones "
                                                           "you want printed."),
                              ("Grandma's 90th", "We're planning something for Grandma's 90th. Ideas welcome!")])
            self.email(t, c["email"], c["name"], [me], topic[0], f"Hi {fu},\n\n{topic[1]}\n\nLove,\n{c['first_name']}",
                       at, labels=["family"])
            if r.random() < 0.5:
                self.email(t, me, my, [c["email"]], f"Re: {topic[0]}", "Sounds lovely, count me in!",
                           _iso(datetime.fromisoformat(at) + timedelta(hours=r.randint(1, 20))))
        # Manager asks for a report.
        mgr = self.pick("manager")
        proj = r.choice(PROJECTS)
        self.report_due = (NOW + timedelta(days=r.randint(2, 10))).date().isoformat()
        self.email(thread(), mgr["email"], mgr["name"], [me], f"{proj} quarterly report due {self.report_due}",
                   f"Hi {fu},\n\nReminder that the {proj} quarterly report is due on {self.report_due}. Please include:"
                   "\n- progress against goals\n- budget status\n- risks\n\nThanks,\n"
                   f"{mgr['first_name']}", self.past(6, 1, work_hours=True), labels=["work"], starred=True)
        self.report_project = proj
        # Newsletters (mostly unread noise).
        for i in range(self.n(3, 5)):
            pct = r.choice((10, 15, 20, 25, 30, 40))
            cat = r.choice(list(PRODUCTS))
            self.email(thread(), SHOP_DEALS, f"{SHOP_NAME} Deals", [me], f"{pct}% off {cat} this week",
                       f"Save {pct}% on {cat.lower()} until Sunday. Use code SAVE{pct}.\n\nUnsubscribe anytime.",
                       self.past(7 * (i + 1), 7 * i + 0.5), read=r.random() < 0.3)
        # Everyday conversations, some answered.
        chats = [("Weekend plans?", "Want to go hiking on Saturday? The weather looks great.", ("friend", "roommate")),
                 ("Book recommendation", "Just finished {book}. I think you'd love it!", ("friend", "classmate")),
                 ("Slides for the all-hands", "Attached are my slides for the all-hands; comments welcome.",
                  ("coworker",)),
                 ("Lost my charger", "Did I leave my laptop charger at your place?", ("friend", "neighbor")),
                 ("Package for you", "A package for you was delivered to my door, I'll drop it off tonight.",
                  ("neighbor",)),
                 ("Reunion this summer", "We're organizing a class reunion in July. Are you in?", ("classmate",)),
                 ("Code review", "Could you take a look at my {project} change before Friday?", ("coworker",))]
        for subject, text, rels in self.sample(chats, self.n(3, 5)):
            c = self.pick(*rels)
            t = thread()
            at = self.past(30, 0.5)
            body = text.format(book=r.choice(BOOKS), project=r.choice(PROJECTS))
            attach = ([{"name": "all_hands_slides.txt", "content": f"All-hands slides by {c['name']}\n1. Wins\n"
                                                                  "2. Metrics\n3. Next quarter\n"}]
                      if "slides" in subject.lower() else None)
            self.email(t, c["email"], c["name"], [me], subject, f"Hi {fu},\n\n{body}\n\n{c['first_name']}", at,
                       attachments=attach, labels=["work"] if "coworker" in rels else None)
            if r.random() < 0.5:
                reply = r.choice(("Sure, sounds good!", "Thanks, will do.", "Let me check and get back to you."))
                self.email(t, me, my, [c["email"]], f"Re: {subject}", reply,
                           _iso(datetime.fromisoformat(at) + timedelta(hours=r.randint(1, 30))))
        # A friend recommends a song (filled in after the music catalog exists).
        self.reco_friend = self.pick("friend")
        self.user_threads = thread

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

    # ------------------------------------------------------------------------------------------------- payments
    def payments(self) -> None:
        r, me = self.rng, self.user["email"]
        accounts = [{"id": 1, "email": me, "name": self.user["name"], "balance": round(r.uniform(60, 900), 2)}]
        for c in self.contacts:
            if c["relationships"] != ["parent", "family"] or r.random() < 0.5:
                accounts.append({"id": len(accounts) + 1, "email": c["email"], "name": c["name"],
                                 "balance": round(r.uniform(0, 1500), 2)})
        for vendor, addr, *_ in VENDORS:
            accounts.append({"id": len(accounts) + 1, "email": addr, "name": vendor,
                             "balance": round(r.uniform(5000, 50000), 2)})
        has_acct = {a["email"] for a in accounts}
        people = [c for c in self.contacts if c["email"] in has_acct]
        nets = [("visa", "Visa"), ("mastercard", "Mastercard"), ("amex", "Amex")]
        cards: list[dict[str, Any]] = []
        names = self.sample(["Everyday Debit", "Travel Rewards", "Cashback Card", "Business Card", "Student Card"],
                         r.randint(2, 3))
        for i, name in enumerate(names):
            net = r.choice(nets)
            year = NOW.year + r.randint(1, 4)
            cards.append({"id": i + 1, "card_name": name, "network": net[0], "last_four": f"{r.randint(0, 9999):04d}",
                          "expiry_date": f"{year}-{r.randint(1, 12):02d}", "balance": round(r.uniform(300, 4000), 2),
                          "owner_name": self.user["name"]})
        if r.random() < 0.5:  # an expired card, so that using it is an error
            cards.append({"id": len(cards) + 1, "card_name": "Old Debit", "network": "visa",
                          "last_four": f"{r.randint(0, 9999):04d}",
                          "expiry_date": f"{NOW.year - 1}-{r.randint(1, 12):02d}",
                          "balance": round(r.uniform(50, 300), 2), "owner_name": self.user["name"]})
        txs: list[dict[str, Any]] = []
        for _ in range(self.n(30, 45)):
            c = r.choice(people)
            desc, lo, hi = r.choice(P2P)
            if desc == "Rent share" and "roommate" not in c["relationships"] and "partner" not in c["relationships"]:
                desc, lo, hi = P2P[1]
            desc = desc.format(r=r.choice(RESTAURANTS), p=r.choice(self.contacts)["first_name"])
            sent = r.random() < 0.55
            card = r.choice(cards)["id"] if sent and r.random() < 0.3 else None
            txs.append({"id": 0, "sender_email": me if sent else c["email"],
                        "receiver_email": c["email"] if sent else me,
                        "amount": round(r.uniform(lo, hi), 2), "description": desc, "created_at": self.past(95, 0.3),
                        "payment_method": ("card" if card else "balance") if sent else "balance",
                        "payment_card_id": card})
        reqs: list[dict[str, Any]] = []
        for c, place, share, at in self.splits:
            if c["email"] not in has_acct:
                continue
            reqs.append({"id": 0, "requester_email": c["email"], "payer_email": me, "amount": share,
                         "description": f"Dinner at {place}", "status": "pending",
                         "created_at": _iso(datetime.fromisoformat(at) + timedelta(minutes=r.randint(2, 50))),
                         "resolved_at": None, "transaction_id": None})
        for _ in range(self.n(4, 7)):
            c = r.choice(people)
            desc, lo, hi = r.choice(P2P)
            desc = desc.format(r=r.choice(RESTAURANTS), p=r.choice(self.contacts)["first_name"])
            incoming = r.random() < 0.5
            status = r.choice(("pending", "pending", "paid", "declined", "cancelled" if not incoming else "paid"))
            created = self.past(40, 0.5)
            req = {"id": 0, "requester_email": c["email"] if incoming else me,
                   "payer_email": me if incoming else c["email"], "amount": round(r.uniform(lo, min(hi, 200)), 2),
                   "description": desc, "status": status, "created_at": created, "resolved_at": None,
                   "transaction_id": None}
            if status != "pending":
                resolved = _iso(datetime.fromisoformat(created) + timedelta(hours=r.randint(1, 72)))
                req["resolved_at"] = min(resolved, DEFAULT_NOW)
                if status == "paid":
                    txs.append({"id": 0, "sender_email": req["payer_email"], "receiver_email": req["requester_email"],
                                "amount": req["amount"], "description": desc, "created_at": req["resolved_at"],
                                "payment_method": "balance", "payment_card_id": None})
                    req["transaction_id"] = txs[-1]
            reqs.append(req)
        txs.sort(key=lambda t: t["created_at"])
        for i, t in enumerate(txs, 1):
            t["id"] = i
        reqs.sort(key=lambda q: q["created_at"])
        for i, q in enumerate(reqs, 1):
            q["id"] = i
            if isinstance(q["transaction_id"], dict):
                q["transaction_id"] = q["transaction_id"]["id"]
        self.cards = cards
        self.s["payments"] = {"accounts": accounts, "cards": cards, "transactions": txs, "requests": reqs,
                              "transfers": []}
        self.ids.update(accounts=len(accounts), cards=len(cards), transactions=len(txs), requests=len(reqs))

    # ------------------------------------------------------------------------------------------------- shop
    def shop(self) -> None:
        r = self.rng
        products: list[dict[str, Any]] = []
        names: set[str] = set()
        for cat, items in PRODUCTS.items():
            for item, lo, hi in items:
                if r.random() < 0.4 * (2 - self.k) and len(products) > 20:
                    continue
                for _ in range(1 if self.k < 1.5 else 2):
                    brand = r.choice(BRANDS[cat])
                    adj = r.choice(PRODUCT_ADJ)
                    name = " ".join(x for x in (brand, item, adj) if x)
                    if name in names:
                        continue
                    names.add(name)
                    products.append({"id": len(products) + 1, "name": name, "brand": brand, "category": cat,
                                     "price": round(r.uniform(lo, hi), 0) - 0.01,
                                     "rating": round(r.triangular(2.5, 5.0, 4.3), 1),
                                     "num_ratings": r.randint(0, 2500), "stock": r.choice((0, 3, 8, 15, 25, 40, 60)),
                                     "description": f"{item} by {brand}. {r.choice(self._blurbs)}"})
        orders: list[dict[str, Any]] = []
        reviews: list[dict[str, Any]] = []
        addr = self.user["address"]
        card_ids = [c["id"] for c in self.cards if c["expiry_date"] >= DEFAULT_NOW[:7]]
        for _ in range(self.n(6, 9)):
            picks = self.sample(products, r.randint(1, 3))
            bought: list[dict[str, Any]] = [{"product_id": p["id"], "name": p["name"], "unit_price": p["price"],
                                             "quantity": r.choice((1, 1, 1, 2))} for p in picks]
            sub = round(sum(i["unit_price"] * i["quantity"] for i in bought), 2)
            ship = 0.0 if sub >= 35 else 4.99
            created = datetime.fromisoformat(self.past(75, 0.2))
            age = (NOW - created).days
            status = ("placed" if age < 2 else "shipped" if age < 5 else
                      r.choice(("delivered", "delivered", "delivered", "returned", "cancelled")))
            delivered = _iso(created + timedelta(days=r.randint(2, 4))) if status in ("delivered", "returned") else None
            if delivered and delivered > DEFAULT_NOW:
                delivered = DEFAULT_NOW
            orders.append({"id": 0, "items": bought, "subtotal": sub, "shipping_fee": ship,
                           "total": round(sub + ship, 2), "payment_card_id": r.choice(card_ids),
                           "shipping_address": addr, "status": status, "created_at": _iso(created),
                           "delivered_at": delivered, "updated_at": delivered or _iso(created)})
        orders.sort(key=lambda o: o["created_at"])
        for i, o in enumerate(orders, 1):
            o["id"] = i
            if o["status"] in ("shipped", "delivered", "returned"):
                self.email(self.user_threads(), SHOP_EMAIL, SHOP_NAME, [self.user["email"]],
                           f"Your {SHOP_NAME} order #{i} has shipped",
                           f"Good news! Order #{i} ({', '.join(it['name'] for it in o['items'])}) is on its way.\n"
                           f"Total charged: ${o['total']:.2f}.", _iso(datetime.fromisoformat(o["created_at"])
                                                                     + timedelta(hours=r.randint(6, 30))),
                           labels=["receipts"] if r.random() < 0.5 else [])
        for p in self.sample(products, self.n(8, 12)):
            for _ in range(r.randint(1, 2)):
                reviews.append({"id": len(reviews) + 1, "product_id": p["id"],
                                "author_name": f"{r.choice(FIRST_NAMES)} {r.choice(LAST_NAMES)[0]}.",
                                "rating": max(1, min(5, round(r.gauss(p["rating"], 0.8)))),
                                "text": r.choice(("Works great.", "Exactly as described.", "Good value for the price.",
                                                  "Broke after a month.", "Would buy again!", "Shipping was slow.")),
                                "created_at": self.past(300, 1), "by_user": False})
        in_stock = [p for p in products if p["stock"] > 0]
        cart = [{"id": i + 1, "product_id": p["id"], "quantity": 1, "added_at": self.past(5, 0.1)}
                for i, p in enumerate(self.sample(in_stock, r.randint(0, 2)))]
        wish = [{"id": i + 1, "product_id": p["id"], "added_at": self.past(60, 1)}
                for i, p in enumerate(self.sample(products, r.randint(2, 5)))]
        self.products = products
        self.s["shop"] = {"products": products, "cart": cart, "orders": orders, "wishlist": wish, "reviews": reviews}
        self.ids.update(products=len(products), cart=len(cart), orders=len(orders), wishlist=len(wish),
                        reviews=len(reviews))

    _blurbs = ("Customers love its build quality.", "A bestseller in its category.", "Compact and easy to use.",
               "Backed by a 2-year warranty.", "Eco-friendly materials.", "New for this season.")

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

    # ------------------------------------------------------------------------------------------------- music
    def music(self) -> None:
        r = self.rng
        artists: list[dict[str, Any]] = []
        albums: list[dict[str, Any]] = []
        songs: list[dict[str, Any]] = []
        names: set[str] = set()
        titles: set[str] = set()
        for _ in range(self.n(10, 13)):
            while True:
                name = (f"The {r.choice(BAND_ADJ)} {r.choice(BAND_NOUN)}" if r.random() < 0.55
                        else f"{r.choice(FIRST_NAMES)} {r.choice(LAST_NAMES)}")
                if name not in names:
                    break
            names.add(name)
            genre = r.choice(GENRES)
            aid = len(artists) + 1
            artists.append({"id": aid, "name": name, "genre": genre, "country": r.choice(COUNTRIES),
                            "follower_count": r.randint(500, 2_000_000)})
            for _ in range(r.randint(1, 2)):
                year = r.randint(1975, 2025)
                album: dict[str, Any] = {"id": len(albums) + 1, "title": self._title(r, titles), "artist_id": aid,
                                         "genre": genre, "release_year": year, "song_ids": []}
                albums.append(album)
                for _ in range(r.randint(3, 6)):
                    sid = len(songs) + 1
                    songs.append({"id": sid, "title": self._title(r, titles), "artist_id": aid,
                                  "album_id": album["id"], "genre": genre,
                                  "duration_seconds": int(r.triangular(110, 480, 215)), "release_year": year,
                                  "play_count": int(r.paretovariate(1.2) * 2000)})
                    album["song_ids"].append(sid)
        ids = [s["id"] for s in songs]
        playlists: list[dict[str, Any]] = []
        for title in self.sample(["Morning Run", "Focus", "Road Trip", "Chill Evening", "Party Mix", "Rainy Day",
                               "Throwbacks", "Dinner Jazz"], self.n(3, 5)):
            created = self.past(200, 10)
            playlists.append({"id": len(playlists) + 1, "title": title, "description": f"My {title.lower()} songs",
                              "is_public": r.random() < 0.4, "song_ids": self.sample(ids, r.randint(5, 14)),
                              "created_at": created, "updated_at": max(created, self.past(10, 0.5))})
        liked = [{"id": i + 1, "song_id": s, "liked_at": self.past(180, 0.5)}
                 for i, s in enumerate(self.sample(ids, self.n(10, 18)))]
        library = [{"id": i + 1, "song_id": s, "added_at": self.past(300, 1)}
                   for i, s in enumerate(self.sample(ids, self.n(15, 25)))]
        fav = self.sample(ids, 12)
        history = sorted((self.past(14, 0.05), r.choice(fav) if r.random() < 0.6 else r.choice(ids))
                         for _ in range(self.n(30, 50)))
        play = [{"id": i + 1, "song_id": s, "played_at": t} for i, (t, s) in enumerate(history)]
        follows = [{"id": i + 1, "artist_id": a["id"], "followed_at": self.past(365, 5)}
                   for i, a in enumerate(self.sample(artists, r.randint(2, 4)))]
        self.s["music"] = {"artists": artists, "albums": albums, "songs": songs, "playlists": playlists,
                           "liked_songs": liked, "library": library, "play_history": play,
                           "followed_artists": follows}
        self.ids.update(artists=len(artists), albums=len(albums), songs=len(songs), playlists=len(playlists),
                        liked_songs=len(liked), library=len(library), play_history=len(play),
                        followed_artists=len(follows))
        # The friend's song recommendation email.
        s = r.choice(songs)
        c = self.reco_friend
        self.email(self.user_threads(), c["email"], c["name"], [self.user["email"]], "You have to hear this",
                   f"Hey {self.user['first_name']}, you have to listen to \"{s['title']}\" by "
                   f"{artists[s['artist_id'] - 1]['name']}. Perfect for your {playlists[0]['title']} playlist!\n\n"
                   f"{c['first_name']}", self.past(5, 0.2))

    @staticmethod
    def _title(r: random.Random, taken: set[str]) -> str:
        while True:
            a, n = r.choice(TITLE_A), r.choice(TITLE_N)
            t = r.choice((f"{a} {n}", f"{n} of {r.choice(TITLE_N)}", f"The {a} {n}", f"{a} {n} {r.choice(TITLE_N)}"))
            if t not in taken:
                taken.add(t)
                return t

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
