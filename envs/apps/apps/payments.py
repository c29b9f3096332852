"""Payments app (Venmo-like): wallet balance, money transfers with people, payment requests and payment cards."""

import typing

from distillgym.envs.apps.apps.contacts import find_contact_by_email
from distillgym.envs.apps.base import (
    ApiError,
    App,
    check_email,
    matches,
    money,
    paginate,
    parse_time,
    positive_amount,
)

_CARD_HINT = "Use apis.payments.list_payment_cards() to see card ids and balances."
_TX_HINT = "Use apis.payments.list_transactions(...) to find transaction ids."
_REQ_HINT = "Use apis.payments.list_payment_requests(...) to find request ids."


def find_card(state: dict, card_id: int) -> dict:
    """The payment card record with this id (shared with the shop app)."""
    for c in state.get("payments", {}).get("cards", []):
        if c["id"] == card_id:
            return c
    raise ApiError(f"No payment card with id {card_id}. {_CARD_HINT}")


def charge_card(state: dict, card_id: int, amount: float) -> dict:
    """Take `amount` from a card's available balance, or raise ApiError if it is expired or lacks funds."""
    card = find_card(state, card_id)
    now = state["_meta"]["now"]
    if card["expiry_date"] < now[:7]:
        raise ApiError(f"Payment card {card_id} ({card['card_name']}) expired on {card['expiry_date']}. Use another "
                       f"card. {_CARD_HINT}")
    if card["balance"] + 1e-9 < amount:
        raise ApiError(f"Payment card {card_id} ({card['card_name']}) has only ${card['balance']:.2f} available, "
                       f"not enough for ${amount:.2f}. Use another card. {_CARD_HINT}")
    card["balance"] = money(card["balance"] - amount)
    return card


class Payments(App):
    """Wallet and peer-to-peer transfers."""

    name = "payments"
    description = "Payments: wallet balance, send money to people, request money, pay or decline requests, " \
                  "payment cards and transfers between the wallet and cards."
    schema: typing.ClassVar[dict] = {"accounts": [], "cards": [], "transactions": [], "requests": [], "transfers": []}

    def _account(self, email: str, *, create: bool = False) -> dict | None:
        for a in self._db["accounts"]:
            if a["email"] == email:
                return a
        if not create:
            return None
        a = {"id": self._new_id("accounts"), "email": email, "name": self._name_of(email), "balance": 0.0}
        self._db["accounts"].append(a)
        return a

    def _receiver(self, email: str, pname: str) -> str:
        email = check_email(email, pname)
        if email == self._user_email:
            raise ApiError("You cannot send money to or request money from yourself; use add_money_from_card to move "
                           "money into the wallet.")
        if self._account(email) is None:
            raise ApiError(f"No payments account uses the email {email!r}. Check the person's email with "
                           "apis.contacts.search_contacts(query=...).")
        return email

    @property
    def _balance(self) -> float:
        me = self._account(self._user_email)
        return me["balance"] if me else 0.0

    def _add_balance(self, email: str, delta: float) -> None:
        a = self._account(email, create=True)
        assert a is not None  # create=True always returns the account
        a["balance"] = money(a["balance"] + delta)

    def _name_of(self, email: str) -> str:
        if email == self._user_email:
            return "me"
        c = find_contact_by_email(self._state, email)
        return c["name"] if c else email

    def _tx_view(self, t: dict) -> dict:
        me = self._user_email
        other = t["receiver_email"] if t["sender_email"] == me else t["sender_email"]
        return {**t, "direction": "sent" if t["sender_email"] == me else "received", "counterparty_email": other,
                "counterparty_name": self._name_of(other)}

    def _pay(self, receiver: str, amount: float, description: str, card_id: int | None) -> dict:
        if card_id is None:
            bal = self._balance
            if bal + 1e-9 < amount:
                raise ApiError(f"Your wallet balance is ${bal:.2f}, not enough for ${amount:.2f}. Pass "
                               f"payment_card_id to pay with a card, or add money with "
                               f"apis.payments.add_money_from_card. {_CARD_HINT}")
            self._add_balance(self._user_email, -amount)
        else:
            charge_card(self._state, card_id, amount)
        self._add_balance(receiver, amount)
        t = {"id": self._new_id("transactions"), "sender_email": self._user_email, "receiver_email": receiver,
             "amount": amount, "description": description, "created_at": self._now,
             "payment_method": "balance" if card_id is None else "card", "payment_card_id": card_id}
        self._db["transactions"].append(t)
        return t

    def show_balance(self) -> dict:
        """Show the user's wallet balance (money available to send without using a card).

        Returns: {"balance": amount in dollars}.
        """
        return {"balance": self._balance}

    def list_transactions(self, query: str = "", counterparty_email: str | None = None,
                          direction: typing.Literal["sent", "received"] | None = None,
                          min_amount: float | None = None, max_amount: float | None = None,
                          start_date: str | None = None, end_date: str | None = None, page_index: int = 0,
                          page_limit: int = 5) -> list[dict]:
        """List the user's money transfers with other people, newest first, with optional filters.

        Args:
            query: Words to match in the description or the other person's name/email.
            counterparty_email: Only transfers with this person (sender or receiver).
            direction: "sent" (money the user paid) or "received".
            min_amount: Only amounts >= this.
            max_amount: Only amounts <= this.

        Returns: a list of transactions (id, sender_email, receiver_email, amount, description, created_at,
            payment_method, payment_card_id, direction, counterparty_email, counterparty_name).
        """
        lo = parse_time(start_date, "start_date") if start_date else None
        hi = parse_time(end_date, "end_date", end_of_day=True) if end_date else None
        cp = check_email(counterparty_email, "counterparty_email") if counterparty_email else None
        out = []
        for t in self._db["transactions"]:
            v = self._tx_view(t)
            if (cp and v["counterparty_email"] != cp) or (direction and v["direction"] != direction):
                continue
            if (min_amount is not None and t["amount"] < min_amount) or (max_amount is not None
                                                                          and t["amount"] > max_amount):
                continue
            if (lo and t["created_at"] < lo) or (hi and t["created_at"] > hi):
                continue
            if matches(query, t["description"], v["counterparty_email"], v["counterparty_name"]):
                out.append(v)
        out.sort(key=lambda t: (t["created_at"], t["id"]), reverse=True)
        return paginate(out, page_index, page_limit)

    def show_transaction(self, transaction_id: int) -> dict:
        """Show one money transfer.

        Args:
            transaction_id: Id of the transaction.

        Returns: the transaction dict as in list_transactions.
        """
        return self._tx_view(self._find("transactions", transaction_id, "transaction", _TX_HINT))

    def send_money(self, receiver_email: str, amount: float, description: str = "",
                   payment_card_id: int | None = None) -> dict:
        """Send money to someone's payments account (identified by their email): it leaves the user's wallet balance
        or, if payment_card_id is given, that card, and is added to the receiver's balance.

        Args:
            receiver_email: Email of the person to pay.
            amount: Amount in dollars (positive, at most 2 decimals).
            description: What the payment is for, e.g. "Dinner at Luigi's".
            payment_card_id: Pay with this card instead of the wallet balance.

        Returns: {"transaction_id": ..., "message": ...}.
        """
        receiver = self._receiver(receiver_email, "receiver_email")
        t = self._pay(receiver, positive_amount(amount), description, payment_card_id)
        return {"transaction_id": t["id"], "message": f"Sent ${t['amount']:.2f} to {self._name_of(receiver)}."}

    def list_payment_requests(self, direction: typing.Literal["incoming", "outgoing"] | None = None,
                              status: typing.Literal["pending", "paid", "declined", "cancelled"] | None = None,
                              page_index: int = 0, page_limit: int = 5) -> list[dict]:
        """List payment requests, newest first: incoming ones (someone asks the user to pay) and outgoing ones (the
        user asked someone to pay).

        Args:
            direction: "incoming" or "outgoing"; None for both.
            status: Only requests with this status.

        Returns: a list of requests (id, requester_email, payer_email, amount, description, status, created_at,
            resolved_at, transaction_id, direction, counterparty_name).
        """
        out = []
        for r in self._db["requests"]:
            v = self._req_view(r)
            if (direction and v["direction"] != direction) or (status and r["status"] != status):
                continue
            out.append(v)
        out.sort(key=lambda r: (r["created_at"], r["id"]), reverse=True)
        return paginate(out, page_index, page_limit)

    def _req_view(self, r: dict) -> dict:
        incoming = r["payer_email"] == self._user_email
        other = r["requester_email"] if incoming else r["payer_email"]
        return {**r, "direction": "incoming" if incoming else "outgoing", "counterparty_name": self._name_of(other)}

    def show_payment_request(self, request_id: int) -> dict:
        """Show one payment request.

        Args:
            request_id: Id of the request.

        Returns: the request dict as in list_payment_requests.
        """
        return self._req_view(self._find("requests", request_id, "payment request", _REQ_HINT))

    def request_money(self, payer_email: str, amount: float, description: str = "") -> dict:
        """Ask someone to pay the user an amount (creates a pending outgoing request).

        Args:
            payer_email: Email of the person who should pay.
            amount: Amount in dollars.
            description: What it is for.

        Returns: {"request_id": ..., "message": ...}.
        """
        payer = self._receiver(payer_email, "payer_email")
        r = {"id": self._new_id("requests"), "requester_email": self._user_email, "payer_email": payer,
             "amount": positive_amount(amount), "description": description, "status": "pending",
             "created_at": self._now, "resolved_at": None, "transaction_id": None}
        self._db["requests"].append(r)
        return {"request_id": r["id"], "message": f"Requested ${r['amount']:.2f} from {self._name_of(payer)}."}

    def _pending(self, request_id: int, direction: str) -> dict:
        r = self._find("requests", request_id, "payment request", _REQ_HINT)
        v = self._req_view(r)
        if v["direction"] != direction:
            which = "sent by you" if direction == "incoming" else "sent to you"
            raise ApiError(f"Payment request {request_id} was {which}, so this action does not apply to it.")
        if r["status"] != "pending":
            raise ApiError(f"Payment request {request_id} is already {r['status']}.")
        return r

    def pay_payment_request(self, request_id: int, payment_card_id: int | None = None) -> dict:
        """Pay an incoming pending request, from the wallet balance or from a card.

        Args:
            request_id: Id of an incoming pending request.
            payment_card_id: Pay with this card instead of the wallet balance.

        Returns: {"transaction_id": ..., "message": ...}.
        """
        r = self._pending(request_id, "incoming")
        t = self._pay(r["requester_email"], r["amount"], r["description"], payment_card_id)
        r.update(status="paid", resolved_at=self._now, transaction_id=t["id"])
        return {"transaction_id": t["id"], "message": f"Paid ${r['amount']:.2f} to "
                                                      f"{self._name_of(r['requester_email'])}."}

    def decline_payment_request(self, request_id: int) -> dict:
        """Decline an incoming pending request.

        Args:
            request_id: Id of an incoming pending request.

        Returns: {"message": ...}.
        """
        r = self._pending(request_id, "incoming")
        r.update(status="declined", resolved_at=self._now)
        return {"message": f"Declined request {request_id}."}

    def cancel_payment_request(self, request_id: int) -> dict:
        """Cancel a pending request the user sent.

        Args:
            request_id: Id of an outgoing pending request.

        Returns: {"message": ...}.
        """
        r = self._pending(request_id, "outgoing")
        r.update(status="cancelled", resolved_at=self._now)
        return {"message": f"Cancelled request {request_id}."}

    def list_payment_cards(self) -> list[dict]:
        """List the user's payment cards with their available balances and expiry dates.

        Returns: a list of cards (id, card_name, network, last_four, expiry_date 'YYYY-MM', balance, owner_name).
        """
        return list(self._db["cards"])

    def show_payment_card(self, payment_card_id: int) -> dict:
        """Show one payment card.

        Args:
            payment_card_id: Id of the card.

        Returns: the card dict.
        """
        return find_card(self._state, payment_card_id)

    def add_money_from_card(self, amount: float, payment_card_id: int) -> dict:
        """Move money from a payment card into the wallet balance.

        Args:
            amount: Amount in dollars.
            payment_card_id: Card to take the money from.

        Returns: {"balance": new wallet balance, "message": ...}.
        """
        amount = positive_amount(amount)
        charge_card(self._state, payment_card_id, amount)
        self._add_balance(self._user_email, amount)
        self._db["transfers"].append({"id": self._new_id("transfers"), "kind": "add_money", "amount": amount,
                                      "payment_card_id": payment_card_id, "created_at": self._now})
        return {"balance": self._balance, "message": f"Added ${amount:.2f} to the wallet."}

    def withdraw_to_card(self, amount: float, payment_card_id: int) -> dict:
        """Move money from the wallet balance onto a payment card.

        Args:
            amount: Amount in dollars.
            payment_card_id: Card to receive the money.

        Returns: {"balance": new wallet balance, "message": ...}.
        """
        amount = positive_amount(amount)
        card = find_card(self._state, payment_card_id)
        bal = self._balance
        if bal + 1e-9 < amount:
            raise ApiError(f"Your wallet balance is ${bal:.2f}, less than ${amount:.2f}.")
        self._add_balance(self._user_email, -amount)
        card["balance"] = money(card["balance"] + amount)
        self._db["transfers"].append({"id": self._new_id("transfers"), "kind": "withdraw", "amount": amount,
                                      "payment_card_id": payment_card_id, "created_at": self._now})
        return {"balance": self._balance, "message": f"Withdrew ${amount:.2f} to card "
                                                                      f"{payment_card_id}."}

    def list_wallet_transfers(self, page_index: int = 0, page_limit: int = 5) -> list[dict]:
        """List moves of money between the wallet and the user's cards, newest first.

        Returns: a list of {id, kind: "add_money"|"withdraw", amount, payment_card_id, created_at}.
        """
        out = sorted(self._db["transfers"], key=lambda t: (t["created_at"], t["id"]), reverse=True)
        return paginate(out, page_index, page_limit)
