"""World generator for the mail app: work threads, invoices, trips, party invitations, dinner splits, newsletters."""

from datetime import datetime, timedelta
from typing import Any

from distillgym.envs.apps.world.base import WorldGen, _iso
from distillgym.envs.apps.world.catalog import (
    AIRLINE,
    AIRLINE_EMAIL,
    BOOKS,
    HOTEL,
    HOTEL_EMAIL,
    NOW,
    PRODUCTS,
    PROJECTS,
    RESTAURANTS,
    SHOP_DEALS,
    SHOP_NAME,
    TRAVEL_CITIES,
    VENDORS,
)


class MailGen(WorldGen):
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
