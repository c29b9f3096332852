"""World generator for the payments app: accounts, cards, transactions and payment requests (the dinner splits)."""

from datetime import datetime, timedelta
from typing import Any

from distillgym.envs.apps.base import DEFAULT_NOW
from distillgym.envs.apps.world.base import WorldGen, _iso
from distillgym.envs.apps.world.catalog import NOW, P2P, RESTAURANTS, VENDORS


class PaymentsGen(WorldGen):
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
