"""Shop app: product catalog, cart, checkout with a payment card, orders (cancel/return), wishlist and reviews."""

import typing
from datetime import datetime

from distillgym.envs.apps.apps.payments import charge_card, find_card
from distillgym.envs.apps.base import ApiError, App, matches, money, paginate

SHIPPING_FEE = 4.99
FREE_SHIPPING_FROM = 35.0
RETURN_DAYS = 30
_PRODUCT_HINT = "Use apis.shop.search_products(query=...) to find product ids."
_ORDER_HINT = "Use apis.shop.list_orders() to find order ids."


class Shop(App):
    """Online store."""

    name = "shop"
    description = "Online shop: search products, manage the cart, check out with a payment card, track, cancel " \
                  "or return orders, wishlist and reviews."
    schema: typing.ClassVar[dict] = {"products": [], "cart": [], "orders": [], "wishlist": [], "reviews": []}

    def _product(self, product_id: int) -> dict:
        return self._find("products", product_id, "product", _PRODUCT_HINT)

    def _order(self, order_id: int) -> dict:
        return self._find("orders", order_id, "order", _ORDER_HINT)

    def search_products(self, query: str = "", category: str | None = None, min_price: float | None = None,
                        max_price: float | None = None, min_rating: float | None = None,
                        sort_by: typing.Literal["relevance", "price_asc", "price_desc", "rating"] = "relevance",
                        page_index: int = 0, page_limit: int = 5) -> list[dict]:
        """Search the product catalog by words in the name, brand, category or description, with filters.

        Args:
            category: Only products of this category (see list_categories).
            min_price: Only products costing at least this.
            max_price: Only products costing at most this.
            min_rating: Only products rated at least this (0 to 5).
            sort_by: "relevance" (catalog order), "price_asc", "price_desc" or "rating" (best first).

        Returns: a list of products (id, name, brand, category, price, rating, num_ratings, stock, description).
        """
        out = [p for p in self._db["products"]
               if (category is None or p["category"].lower() == category.lower())
               and (min_price is None or p["price"] >= min_price) and (max_price is None or p["price"] <= max_price)
               and (min_rating is None or p["rating"] >= min_rating)
               and matches(query, p["name"], p["brand"], p["category"], p["description"])]
        if sort_by == "price_asc":
            out.sort(key=lambda p: (p["price"], p["id"]))
        elif sort_by == "price_desc":
            out.sort(key=lambda p: (-p["price"], p["id"]))
        elif sort_by == "rating":
            out.sort(key=lambda p: (-p["rating"], -p["num_ratings"], p["id"]))
        return paginate(out, page_index, page_limit)

    def show_product(self, product_id: int) -> dict:
        """Show one product.

        Args:
            product_id: Id of the product.

        Returns: the product dict.
        """
        return self._product(product_id)

    def list_categories(self) -> list[dict]:
        """List the product categories with how many products each has.

        Returns: a list of {"category", "product_count"} sorted by name.
        """
        counts: dict[str, int] = {}
        for p in self._db["products"]:
            counts[p["category"]] = counts.get(p["category"], 0) + 1
        return [{"category": c, "product_count": n} for c, n in sorted(counts.items())]

    def _cart_view(self) -> dict:
        items = []
        for it in self._db["cart"]:
            p = self._product(it["product_id"])
            items.append({"product_id": p["id"], "name": p["name"], "unit_price": p["price"],
                          "quantity": it["quantity"], "line_total": money(p["price"] * it["quantity"])})
        subtotal = money(sum(i["line_total"] for i in items))
        shipping = 0.0 if subtotal >= FREE_SHIPPING_FROM or not items else SHIPPING_FEE
        return {"items": items, "subtotal": subtotal, "shipping_fee": shipping, "total": money(subtotal + shipping)}

    def show_cart(self) -> dict:
        """Show the cart with the price of each line, subtotal, shipping fee ($4.99, free from $35) and total.

        Returns: {"items": [{product_id, name, unit_price, quantity, line_total}], "subtotal", "shipping_fee",
            "total"}.
        """
        return self._cart_view()

    def _check_stock(self, p: dict, quantity: int) -> None:
        if quantity < 1:
            raise ApiError(f"quantity must be at least 1, got {quantity}. Use remove_from_cart to remove an item.")
        if quantity > p["stock"]:
            raise ApiError(f"Only {p['stock']} of product {p['id']} ({p['name']}) in stock; cannot have {quantity}.")

    def add_to_cart(self, product_id: int, quantity: int = 1) -> dict:
        """Add a product to the cart (adds to the quantity if it is already there).

        Args:
            product_id: Id of the product.
            quantity: How many to add.

        Returns: the cart as in show_cart.
        """
        p = self._product(product_id)
        it = next((x for x in self._db["cart"] if x["product_id"] == product_id), None)
        new_q = quantity + (it["quantity"] if it else 0)
        if quantity < 1:
            raise ApiError(f"quantity must be at least 1, got {quantity}.")
        self._check_stock(p, new_q)
        if it:
            it["quantity"] = new_q
        else:
            self._db["cart"].append({"id": self._new_id("cart"), "product_id": product_id, "quantity": quantity,
                                     "added_at": self._now})
        return self._cart_view()

    def update_cart_quantity(self, product_id: int, quantity: int) -> dict:
        """Set the quantity of a product already in the cart.

        Args:
            product_id: Id of a product in the cart.
            quantity: New quantity (at least 1).

        Returns: the cart as in show_cart.
        """
        it = self._cart_item(product_id)
        self._check_stock(self._product(product_id), quantity)
        it["quantity"] = quantity
        return self._cart_view()

    def _cart_item(self, product_id: int) -> dict:
        it = next((x for x in self._db["cart"] if x["product_id"] == product_id), None)
        if it is None:
            raise ApiError(f"Product {product_id} is not in the cart. Use apis.shop.show_cart() to see it.")
        return it

    def remove_from_cart(self, product_id: int) -> dict:
        """Remove a product from the cart.

        Args:
            product_id: Id of a product in the cart.

        Returns: the cart as in show_cart.
        """
        it = self._cart_item(product_id)
        self._remove("cart", it["id"])
        return self._cart_view()

    def clear_cart(self) -> dict:
        """Remove everything from the cart.

        Returns: {"message": ...}.
        """
        self._db["cart"] = []
        return {"message": "Cart emptied."}

    def checkout(self, payment_card_id: int, shipping_address: str | None = None) -> dict:
        """Buy everything in the cart: charges the total to a payment card (see apis.payments.list_payment_cards),
        creates an order with status "placed" and empties the cart.

        Args:
            payment_card_id: Id of the payment card to charge.
            shipping_address: Where to ship; defaults to the user's home address.

        Returns: {"order_id": ..., "total": ..., "message": ...}.
        """
        cart = self._cart_view()
        if not cart["items"]:
            raise ApiError("The cart is empty. Add products with apis.shop.add_to_cart(product_id=..., quantity=...).")
        for i in cart["items"]:
            self._check_stock(self._product(i["product_id"]), i["quantity"])
        find_card(self._state, payment_card_id)
        charge_card(self._state, payment_card_id, cart["total"])
        for i in cart["items"]:
            self._product(i["product_id"])["stock"] -= i["quantity"]
        address = shipping_address or self._state.get("_supervisor", {}).get("profile", {}).get("address", "")
        order = {"id": self._new_id("orders"), "items": [{k: i[k] for k in ("product_id", "name", "unit_price",
                                                                             "quantity")} for i in cart["items"]],
                 "subtotal": cart["subtotal"], "shipping_fee": cart["shipping_fee"], "total": cart["total"],
                 "payment_card_id": payment_card_id, "shipping_address": address, "status": "placed",
                 "created_at": self._now, "delivered_at": None, "updated_at": self._now}
        self._db["orders"].append(order)
        self._db["cart"] = []
        return {"order_id": order["id"], "total": order["total"], "message": f"Order {order['id']} placed."}

    def list_orders(self, status: typing.Literal["placed", "shipped", "delivered", "cancelled", "returned"] | None
                    = None, page_index: int = 0, page_limit: int = 5) -> list[dict]:
        """List the user's orders, newest first.

        Args:
            status: Only orders with this status.

        Returns: a list of orders (id, items [{product_id, name, unit_price, quantity}], subtotal, shipping_fee,
            total, payment_card_id, shipping_address, status, created_at, delivered_at, updated_at).
        """
        out = [o for o in self._db["orders"] if status is None or o["status"] == status]
        out.sort(key=lambda o: (o["created_at"], o["id"]), reverse=True)
        return paginate(out, page_index, page_limit)

    def show_order(self, order_id: int) -> dict:
        """Show one order.

        Args:
            order_id: Id of the order.

        Returns: the order dict as in list_orders.
        """
        return self._order(order_id)

    def _refund(self, o: dict, status: str) -> dict:
        card = next((c for c in self._state.get("payments", {}).get("cards", []) if c["id"] == o["payment_card_id"]),
                    None)
        if card is not None:
            card["balance"] = money(card["balance"] + o["total"])
        for i in o["items"]:
            p = next((p for p in self._db["products"] if p["id"] == i["product_id"]), None)
            if p is not None:
                p["stock"] += i["quantity"]
        o["status"] = status
        o["updated_at"] = self._now
        return {"order_id": o["id"], "refunded": o["total"], "message": f"Order {o['id']} {status}; "
                                                                        f"${o['total']:.2f} refunded to the card."}

    def cancel_order(self, order_id: int) -> dict:
        """Cancel an order that has not shipped yet (status "placed"); the total is refunded to its card.

        Args:
            order_id: Id of the order.

        Returns: {"order_id", "refunded", "message"}.
        """
        o = self._order(order_id)
        if o["status"] != "placed":
            hint = " Delivered orders can be returned with apis.shop.return_order." if o["status"] == "delivered" \
                else ""
            raise ApiError(f"Order {order_id} is {o['status']}; only orders with status 'placed' can be "
                           f"cancelled.{hint}")
        return self._refund(o, "cancelled")

    def return_order(self, order_id: int) -> dict:
        """Return a delivered order within 30 days of delivery; the total is refunded to its card.

        Args:
            order_id: Id of the order.

        Returns: {"order_id", "refunded", "message"}.
        """
        o = self._order(order_id)
        if o["status"] != "delivered":
            hint = " Use apis.shop.cancel_order instead." if o["status"] == "placed" else ""
            raise ApiError(f"Order {order_id} is {o['status']}; only delivered orders can be returned.{hint}")
        days = (datetime.fromisoformat(self._now) - datetime.fromisoformat(o["delivered_at"])).days
        if days > RETURN_DAYS:
            raise ApiError(f"Order {order_id} was delivered {days} days ago; returns are only accepted within "
                           f"{RETURN_DAYS} days.")
        return self._refund(o, "returned")

    def show_wishlist(self) -> list[dict]:
        """Show the products on the user's wishlist, in the order they were added.

        Returns: a list of products, each with an added_at field.
        """
        out = []
        for w in self._db["wishlist"]:
            p = next((p for p in self._db["products"] if p["id"] == w["product_id"]), None)
            if p is not None:
                out.append({**p, "added_at": w["added_at"]})
        return out

    def add_to_wishlist(self, product_id: int) -> dict:
        """Add a product to the wishlist.

        Args:
            product_id: Id of the product.

        Returns: {"message": ...}.
        """
        p = self._product(product_id)
        if any(w["product_id"] == product_id for w in self._db["wishlist"]):
            raise ApiError(f"Product {product_id} is already on the wishlist.")
        self._db["wishlist"].append({"id": self._new_id("wishlist"), "product_id": product_id,
                                     "added_at": self._now})
        return {"message": f"Added {p['name']!r} to the wishlist."}

    def remove_from_wishlist(self, product_id: int) -> dict:
        """Remove a product from the wishlist.

        Args:
            product_id: Id of the product.

        Returns: {"message": ...}.
        """
        w = next((w for w in self._db["wishlist"] if w["product_id"] == product_id), None)
        if w is None:
            raise ApiError(f"Product {product_id} is not on the wishlist. Use apis.shop.show_wishlist().")
        self._remove("wishlist", w["id"])
        return {"message": f"Removed product {product_id} from the wishlist."}

    def list_product_reviews(self, product_id: int, page_index: int = 0, page_limit: int = 5) -> list[dict]:
        """List the reviews of a product, newest first.

        Args:
            product_id: Id of the product.

        Returns: a list of {id, product_id, author_name, rating, text, created_at}.
        """
        self._product(product_id)
        out = sorted((r for r in self._db["reviews"] if r["product_id"] == product_id),
                     key=lambda r: (r["created_at"], r["id"]), reverse=True)
        return paginate(out, page_index, page_limit)

    def write_review(self, product_id: int, rating: int, text: str = "") -> dict:
        """Review a product the user has received (in a delivered order). One review per product; writing again
        replaces it.

        Args:
            product_id: Id of the product.
            rating: Stars from 1 to 5.
            text: The review text.

        Returns: {"review_id": ..., "message": ...}.
        """
        p = self._product(product_id)
        if not 1 <= rating <= 5:
            raise ApiError(f"rating must be between 1 and 5, got {rating}.")
        if not any(o["status"] in ("delivered", "returned") and any(i["product_id"] == product_id for i in o["items"])
                   for o in self._db["orders"]):
            raise ApiError(f"You can only review products you have received; product {product_id} is in no delivered "
                           "order.")
        me = self._state.get("_supervisor", {}).get("profile", {}).get("name", "Me")
        for r in self._db["reviews"]:
            if r["product_id"] == product_id and r.get("by_user"):
                r.update(rating=rating, text=text, created_at=self._now)
                return {"review_id": r["id"], "message": "Review updated."}
        r = {"id": self._new_id("reviews"), "product_id": product_id, "author_name": me, "rating": rating,
             "text": text, "created_at": self._now, "by_user": True}
        self._db["reviews"].append(r)
        total = p["rating"] * p["num_ratings"] + rating
        p["num_ratings"] += 1
        p["rating"] = round(total / p["num_ratings"], 1)
        return {"review_id": r["id"], "message": "Review posted."}
