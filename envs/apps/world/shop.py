"""World generator for the shop app: products, orders (matching the shipping emails) and reviews."""

from datetime import datetime, timedelta
from typing import Any

from distillgym.envs.apps.base import DEFAULT_NOW
from distillgym.envs.apps.world.base import WorldGen, _iso
from distillgym.envs.apps.world.catalog import (
    BRANDS,
    FIRST_NAMES,
    LAST_NAMES,
    NOW,
    PRODUCT_ADJ,
    PRODUCTS,
    SHOP_EMAIL,
    SHOP_NAME,
)


class ShopGen(WorldGen):
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
