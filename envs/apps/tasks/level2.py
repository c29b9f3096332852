"""Level-2 task templates of Apps-v0 (registered in `TEMPLATES` on import)."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from datetime import timedelta

from distillgym.envs.apps.evaluation import Change
from distillgym.envs.apps.tasks.base import Task, template
from distillgym.envs.apps.tasks.common import (
    FETCH,
    MONEY_BOOKKEEPING,
    _added,
    _after,
    _changed,
    _contacts,
    _me,
    _now,
    _q,
    _removed,
    _task,
    _unique,
)


def _tx_with(w: dict, email: str, direction: str) -> list[dict]:
    me = _me(w)["email"]
    if direction == "sent":
        return [t for t in w["payments"]["transactions"] if t["sender_email"] == me and t["receiver_email"] == email]
    return [t for t in w["payments"]["transactions"] if t["receiver_email"] == me and t["sender_email"] == email]


@template("total_sent_to", 2, ("payments", "contacts"), pool="train")
def total_sent_to(rng: random.Random, w: dict) -> Task | None:
    people = [c for c in _unique(_contacts(w), "name") if _tx_with(w, c["email"], "sent")]
    if not people:
        return None
    p = rng.choice(people)
    total = round(sum(t["amount"] for t in _tx_with(w, p["email"], "sent")), 2)
    sol = (
        FETCH + f"c = apis.contacts.search_contacts(query={_q(p['name'])})[0]\n"
        "txs = fetch(apis.payments.list_transactions, counterparty_email=c['email'], direction='sent')\n"
        "apis.supervisor.complete_task(answer=round(sum(t['amount'] for t in txs), 2))"
    )
    return _task(
        "total_sent_to",
        2,
        f"How much money, in dollars, have I sent in total to {p['name']} through the payments app?",
        sol,
        answer=total,
        check_answer=True,
    )


@template("send_money", 2, ("payments", "contacts"), pool="train")
def send_money(rng: random.Random, w: dict) -> Task | None:
    people = [c for c in _unique(_contacts(w), "name")
              if any(a["email"] == c["email"] for a in w["payments"]["accounts"])]
    if not people:
        return None
    p = rng.choice(people)
    amount = rng.choice([12.5, 20.0, 35.0, 48.75, 60.0])
    what = rng.choice(["concert tickets", "lunch", "the taxi", "groceries"])
    sol = (
        f"c = apis.contacts.search_contacts(query={_q(p['name'])})[0]\n"
        f"apis.payments.send_money(receiver_email=c['email'], amount={amount}, description={_q('For ' + what)})\n"
        "apis.supervisor.complete_task()"
    )
    return _task("send_money", 2, f"Send ${amount:.2f} to {p['name']} for {what}, with the description "
                 f"'For {what}'.", sol, ignore=MONEY_BOOKKEEPING,
                 expects=(_added("payments", "transactions", lambda c: _after(c, "receiver_email") == p["email"]
                                 and abs(float(_after(c, "amount")) - amount) < 0.005
                                 and _after(c, "description") == f"For {what}", label="the payment"),))


def _wallet(w: dict) -> float:
    me = _me(w)["email"]
    return next(a["balance"] for a in w["payments"]["accounts"] if a["email"] == me)


def _pending_incoming(w: dict) -> list[dict]:
    me = _me(w)["email"]
    return [r for r in w["payments"]["requests"] if r["status"] == "pending" and r["payer_email"] == me]


@template("pay_request_from", 2, ("payments", "contacts"), pool="train")
def pay_request_from(rng: random.Random, w: dict) -> Task | None:
    by = Counter(r["requester_email"] for r in _pending_incoming(w))
    names = {c["email"]: c["name"] for c in _contacts(w)}
    choices = [e for e, n in by.items() if n == 1 and e in names]
    if not choices:
        return None
    email = rng.choice(sorted(choices))
    req = next(r for r in _pending_incoming(w) if r["requester_email"] == email)
    if req["amount"] > _wallet(w):  # the wallet must cover it (a card would do too, but the task does not say)
        return None
    sol = (
        FETCH + "reqs = fetch(apis.payments.list_payment_requests, direction='incoming', status='pending')\n"
        f"r = [r for r in reqs if r['requester_email'] == {_q(email)}][0]\n"
        "apis.payments.pay_payment_request(request_id=r['id'])\napis.supervisor.complete_task()"
    )
    return _task(
        "pay_request_from",
        2,
        f"Pay the pending payment request from {names[email]}.",
        sol,
        ignore=MONEY_BOOKKEEPING,
        expects=(
            _changed(
                "payments",
                "requests",
                lambda c: c.id == req["id"] and _after(c, "status") == "paid",
                label="request paid",
            ),
            _added("payments", "transactions", lambda c: _after(c, "receiver_email") == email),
        ),
    )


@template("decline_requests_over", 2, ("payments",), pool="dev")
def decline_requests_over(rng: random.Random, w: dict) -> Task | None:
    pend = _pending_incoming(w)
    if len(pend) < 2:
        return None
    amounts = sorted(r["amount"] for r in pend)
    cut = round((amounts[0] + amounts[-1]) / 2)
    over = [r for r in pend if r["amount"] > cut]
    if not over:
        return None
    ids = {r["id"] for r in over}
    sol = (
        FETCH + "reqs = fetch(apis.payments.list_payment_requests, direction='incoming', status='pending')\n"
        f"for r in reqs:\n    if r['amount'] > {cut}:\n"
        "        apis.payments.decline_payment_request(request_id=r['id'])\n"
        "apis.supervisor.complete_task()"
    )
    return _task("decline_requests_over", 2, f"Decline every pending payment request I received for more than "
                 f"${cut}.", sol, expects=(_changed("payments", "requests", lambda c: c.id in ids and
                 _after(c, "status") == "declined", count=len(ids), label="requests declined"),))


def _inbox_from_people(w: dict) -> dict[str, list[dict]]:
    names = {c["email"] for c in _contacts(w)}
    out: dict[str, list[dict]] = defaultdict(list)
    for e in w["mail"]["emails"]:
        if e["folder"] == "inbox" and e["sender"] in names:
            out[e["sender"]].append(e)
    return out


@template("reply_latest", 2, ("mail", "contacts"), pool="train")
def reply_latest(rng: random.Random, w: dict) -> Task | None:
    by = _inbox_from_people(w)
    names = {c["email"]: c["name"] for c in _unique(_contacts(w), "name")}
    choices = sorted(e for e in by if e in names)
    if not choices:
        return None
    email = rng.choice(choices)
    latest = max(by[email], key=lambda e: (e["sent_at"], e["id"]))
    text = rng.choice(["Thanks, sounds good!", "Got it, I'll take a look today.", "Thank you, see you then."])
    sol = (
        FETCH + f"es = fetch(apis.mail.search_emails, sender={_q(email)}, folder='inbox')\n"
        "latest = max(es, key=lambda e: (e['sent_at'], e['id']))\n"
        f"apis.mail.reply_to_email(email_id=latest['id'], body={_q(text)})\napis.supervisor.complete_task()"
    )
    return _task("reply_latest", 2, f"Reply to the most recent email {names[email]} sent me with: {text}", sol,
                 expects=(_added("mail", "emails", lambda c: _after(c, "thread_id") == latest["thread_id"] and
                                 email in (_after(c, "recipients") or []) and
                                 str(_after(c, "body")).strip().startswith(text), label="the reply"),))


@template("star_from_sender", 2, ("mail", "contacts"), pool="train")
def star_from_sender(rng: random.Random, w: dict) -> Task | None:
    by = _inbox_from_people(w)
    names = {c["email"]: c["name"] for c in _unique(_contacts(w), "name")}
    choices = sorted(e for e, es in by.items() if e in names and any(not x["starred"] for x in es))
    if not choices:
        return None
    email = rng.choice(choices)
    ids = {e["id"] for e in by[email] if not e["starred"]}
    sol = (
        FETCH + f"es = fetch(apis.mail.search_emails, sender={_q(email)}, folder='inbox')\n"
        "for e in es:\n    if not e['starred']:\n        apis.mail.star_email(email_id=e['id'])\n"
        "apis.supervisor.complete_task()"
    )
    return _task(
        "star_from_sender",
        2,
        f"Star every email in my inbox from {names[email]}.",
        sol,
        expects=(
            _changed(
                "mail",
                "emails",
                lambda c: c.id in ids and _after(c, "starred") is True,
                count=len(ids),
                fields={"starred"},
                label="emails starred",
            ),
        ),
    )


def _playlist_songs(w: dict, pl: dict) -> list[dict]:
    by = {s["id"]: s for s in w["music"]["songs"]}
    return [by[i] for i in pl["song_ids"] if i in by]


@template("playlist_minutes", 2, ("music",), pool="test")
def playlist_minutes(rng: random.Random, w: dict) -> Task | None:
    pls = [p for p in _unique(w["music"]["playlists"], "title") if p["song_ids"]]
    if not pls:
        return None
    pl = rng.choice(pls)
    total = sum(s["duration_seconds"] for s in _playlist_songs(w, pl))
    sol = (
        FETCH + f"pl = [p for p in fetch(apis.music.list_playlists) if p['title'] == {_q(pl['title'])}][0]\n"
        "pl = apis.music.show_playlist(playlist_id=pl['id'])\n"
        "secs = sum(apis.music.show_song(song_id=i)['duration_seconds'] for i in pl['song_ids'])\n"
        "apis.supervisor.complete_task(answer=round(secs / 60))"
    )
    return _task(
        "playlist_minutes",
        2,
        f"How long is my playlist {pl['title']!r} in total, in minutes rounded to the nearest minute?",
        sol,
        answer=round(total / 60),
        check_answer=True,
    )


@template("complete_overdue", 2, ("todo",), pool="train")
def complete_overdue(rng: random.Random, w: dict) -> Task | None:
    today = _now(w).date().isoformat()
    over = [t for t in w["todo"]["tasks"] if not t["completed"] and t["due_date"] and t["due_date"] < today]
    if not over:
        return None
    ids = {t["id"] for t in over}
    sol = (
        FETCH + f"ts = fetch(apis.todo.list_tasks, completed=False, due_before={_q(today)})\n"
        f"for t in ts:\n    if t['due_date'] and t['due_date'] < {_q(today)}:\n"
        "        apis.todo.mark_task_done(task_id=t['id'])\napis.supervisor.complete_task()"
    )
    return _task(
        "complete_overdue",
        2,
        f"Today is {today}. Mark every overdue task in my to-do lists (due before today and not done) as done.",
        sol,
        expects=(
            _changed(
                "todo",
                "tasks",
                lambda c: c.id in ids and _after(c, "completed") is True,
                count=len(ids),
                fields={"completed", "completed_at"},
                label="overdue tasks done",
            ),
        ),
    )


@template("cart_cheapest_rated", 2, ("shop",), pool="train")
def cart_cheapest_rated(rng: random.Random, w: dict) -> Task | None:
    in_cart = {c["product_id"] for c in w["shop"]["cart"]}
    cats = sorted({p["category"] for p in w["shop"]["products"]})
    cat = rng.choice(cats)
    stars = rng.choice([3.5, 4.0, 4.5])
    ok = sorted((p for p in w["shop"]["products"] if p["category"] == cat and p["rating"] >= stars and p["stock"] > 0),
                key=lambda p: (p["price"], p["id"]))
    if not ok or ok[0]["id"] in in_cart or (len(ok) > 1 and ok[1]["price"] == ok[0]["price"]):
        return None
    pid = ok[0]["id"]
    sol = (
        FETCH + f"ps = [p for p in fetch(apis.shop.search_products, category={_q(cat)}, min_rating={stars}) "
        "if p['stock'] > 0]\n"
        "best = min(ps, key=lambda p: p['price'])\napis.shop.add_to_cart(product_id=best['id'])\n"
        "apis.supervisor.complete_task()"
    )
    return _task(
        "cart_cheapest_rated",
        2,
        f"Add the cheapest in-stock {cat} product rated at least {stars} stars to my shopping cart.",
        sol,
        expects=(_added("shop", "cart", lambda c: _after(c, "product_id") == pid and _after(c, "quantity") == 1),),
    )


@template("update_phone", 2, ("contacts",), pool="dev")
def update_phone(rng: random.Random, w: dict) -> Task | None:
    people = _unique(_contacts(w), "name")
    p = rng.choice(people)
    phone = f"+1-{rng.randint(200, 989)}-555-{rng.randint(1000, 9999)}"
    sol = (
        f"c = apis.contacts.search_contacts(query={_q(p['name'])})[0]\n"
        f"apis.contacts.update_contact(contact_id=c['id'], phone={_q(phone)})\napis.supervisor.complete_task()"
    )
    return _task("update_phone", 2, f"{p['name']} has a new phone number, {phone}. Update their contact.", sol,
                 expects=(_changed("contacts", "contacts", lambda c: c.id == p["id"] and _after(c, "phone") == phone,
                                   fields={"phone", "updated_at"}),))


@template("schedule_meeting", 2, ("calendar", "contacts"), pool="train")
def schedule_meeting(rng: random.Random, w: dict) -> Task | None:
    p = rng.choice(_unique(_contacts(w), "name"))
    day = (_now(w).date() + timedelta(days=rng.randint(2, 20))).isoformat()
    hour = rng.choice([9, 10, 11, 14, 15, 16])
    title = rng.choice(["Project sync", "Coffee chat", "Planning session", "Catch-up"])
    start, end = f"{day}T{hour:02d}:00:00", f"{day}T{hour:02d}:30:00"
    sol = (
        f"c = apis.contacts.search_contacts(query={_q(p['name'])})[0]\n"
        f"apis.calendar.create_event(title={_q(title)}, start_time={_q(start)}, end_time={_q(end)}, "
        "attendee_emails=[c['email']])\napis.supervisor.complete_task()"
    )

    def ok(c: Change) -> bool:
        emails = {a["email"] for a in _after(c, "attendees") or []}
        return (
            _after(c, "title") == title
            and str(_after(c, "start_time"))[:16] == start[:16]
            and str(_after(c, "end_time"))[:16] == end[:16]
            and p["email"] in emails
        )

    return _task(
        "schedule_meeting",
        2,
        f"Schedule a 30-minute meeting titled {title!r} with {p['name']} on {day} at {hour:02d}:00.",
        sol,
        expects=(_added("calendar", "events", ok, label="the meeting"),),
    )


@template("append_to_note", 2, ("notes",), pool="train")
def append_to_note(rng: random.Random, w: dict) -> Task | None:
    notes = _unique(w["notes"]["notes"], "title")
    if not notes:
        return None
    n = rng.choice(notes)
    text = rng.choice(["Remember to confirm by Friday.", "Ask Sam about this.", "Updated: see the new plan."])
    sol = (
        FETCH + f"n = [x for x in fetch(apis.notes.search_notes, query={_q(n['title'])}) "
        f"if x['title'] == {_q(n['title'])}][0]\napis.notes.append_to_note(note_id=n['id'], text={_q(text)})\n"
        "apis.supervisor.complete_task()"
    )
    return _task("append_to_note", 2, f"Add the line {text!r} at the end of my note titled {n['title']!r}.", sol,
                 expects=(_changed("notes", "notes", lambda c: c.id == n["id"] and
                                   str(_after(c, "content")).rstrip().endswith(text) and
                                   str(_after(c, "content")).startswith(n["content"].rstrip()),
                                   fields={"content", "updated_at"}),))


@template("delete_events_with", 2, ("calendar", "contacts"), pool="test")
def delete_events_with(rng: random.Random, w: dict) -> Task | None:
    now = w["_meta"]["now"]
    names = {c["email"]: c["name"] for c in _unique(_contacts(w), "name")}
    by: dict[str, list[int]] = defaultdict(list)
    for e in w["calendar"]["events"]:
        if e["start_time"] > now and e["organizer_email"] == _me(w)["email"]:  # only the organizer can delete
            for a in e["attendees"]:
                if a["email"] in names:
                    by[a["email"]].append(e["id"])
    choices = sorted(by)
    if not choices:
        return None
    email = rng.choice(choices)
    ids = set(by[email])
    sol = (
        FETCH + f"evs = fetch(apis.calendar.search_events, start_date={_q(now[:10])})\n"
        f"for e in evs:\n    ev = apis.calendar.show_event(event_id=e['id'])\n"
        f"    who = [a['email'] for a in ev['attendees']] + [ev['organizer_email']]\n"
        f"    mine = ev['organizer_email'] == {_q(_me(w)['email'])}\n"
        f"    if ev['start_time'] > {_q(now)} and mine and {_q(email)} in who:\n"
        "        apis.calendar.delete_event(event_id=ev['id'])\napis.supervisor.complete_task()"
    )
    return _task(
        "delete_events_with",
        2,
        f"Delete every upcoming event I organize that has {names[email]} as an attendee.",
        sol,
        expects=(_removed("calendar", "events", lambda c: c.id in ids, count=len(ids), label="events deleted"),),
    )
