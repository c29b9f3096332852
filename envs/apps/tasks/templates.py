"""The task templates: 35 everyday tasks over the simulated apps, at three difficulty levels.

Each template reads the seeded world to pick its particulars (a person, a playlist, an amount), writes the
instruction, a ground-truth solution program over `apis` (the expert; AppWorld-style code with pagination), and the
grading: the answer to compare and the state changes to require (any other change fails the task).
Level 1: one app, a lookup or a single change. Level 2: filters, pagination, several changes. Level 3: workflows
across apps with conditions.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

from distillgym.envs.apps.evaluation import Change, Expect
from distillgym.envs.apps.tasks.base import Task, template

# a helper every solution may start with: all pages of a paginated endpoint
FETCH = """def fetch(fn, **kw):
    out, page = [], 0
    while True:
        batch = fn(page_index=page, page_limit=20, **kw)
        out += batch
        if len(batch) < 20:
            return out
        page += 1
"""
MONEY_BOOKKEEPING = (("payments", "accounts", "balance"), ("payments", "cards", "balance"))


def _me(w: dict) -> dict:
    return w["_supervisor"]["profile"]


def _now(w: dict) -> datetime:
    return datetime.fromisoformat(w["_meta"]["now"])


def _contacts(w: dict, rel: str | None = None) -> list[dict]:
    return [c for c in w["contacts"]["contacts"] if rel is None or rel in c.get("relationships", [])]


def _unique(rows: list[dict], key: str) -> list[dict]:
    """Rows whose `key` value no other row shares (so a task can name one unambiguously)."""
    counts = Counter(r.get(key) for r in rows)
    return [r for r in rows if counts[r.get(key)] == 1 and r.get(key)]


def _q(text: str) -> str:
    return repr(text)


def _task(name: str, level: int, instruction: str, solution: str, **kw: Any) -> Task:
    return Task(template=name, difficulty=level, instruction=instruction, solution=solution, **kw)


def _added(
    app: str, table: str, where: Callable[[Change], bool] = lambda c: True, count: int = 1, label: str = ""
) -> Expect:
    return Expect(app, table, "added", where, count, None, label)


def _changed(
    app: str,
    table: str,
    where: Callable[[Change], bool] = lambda c: True,
    count: int = 1,
    fields: set[str] | None = None,
    label: str = "",
) -> Expect:
    return Expect(app, table, "changed", where, count, None if fields is None else frozenset(fields), label)


def _removed(
    app: str, table: str, where: Callable[[Change], bool] = lambda c: True, count: int = 1, label: str = ""
) -> Expect:
    return Expect(app, table, "removed", where, count, None, label)


def _after(c: Change, key: str) -> Any:
    """The changed row's value of `key` after the change (None where it has none)."""
    return (c.after or {}).get(key)


# ================================================================================================ level 1
@template("contact_phone", 1, ("contacts",), pool="train")
def contact_phone(rng: random.Random, w: dict) -> Task | None:
    people = _unique(_contacts(w), "name")
    if not people:
        return None
    p = rng.choice(people)
    return _task(
        "contact_phone",
        1,
        f"What is the phone number of {p['name']}?",
        f"c = apis.contacts.search_contacts(query={_q(p['name'])})[0]\n"
        "apis.supervisor.complete_task(answer=c['phone'])",
        answer=p["phone"],
        check_answer=True,
    )


@template("count_relationship", 1, ("contacts",), pool="train")
def count_relationship(rng: random.Random, w: dict) -> Task | None:
    rels = Counter(r for c in _contacts(w) for r in c.get("relationships", []))
    rel = rng.choice(sorted(r for r, n in rels.items() if n >= 1))
    return _task(
        "count_relationship",
        1,
        f"How many of my contacts are tagged as {rel}?",
        FETCH + f"apis.supervisor.complete_task(answer=len(fetch(apis.contacts.search_contacts, "
        f"relationship={_q(rel)})))",
        answer=rels[rel],
        check_answer=True,
    )


@template("wallet_balance", 1, ("payments",), pool="dev")
def wallet_balance(rng: random.Random, w: dict) -> Task | None:
    me = _me(w)["email"]
    acct = next(a for a in w["payments"]["accounts"] if a["email"] == me)
    return _task(
        "wallet_balance",
        1,
        "What is the balance of my payments wallet, in dollars?",
        "apis.supervisor.complete_task(answer=apis.payments.show_balance()['balance'])",
        answer=acct["balance"],
        check_answer=True,
    )


@template("count_unread", 1, ("mail",), pool="train")
def count_unread(rng: random.Random, w: dict) -> Task | None:
    n = sum(1 for e in w["mail"]["emails"] if e["folder"] == "inbox" and not e["read"])
    return _task(
        "count_unread",
        1,
        "How many unread emails are in my inbox?",
        FETCH + "apis.supervisor.complete_task(answer=len(fetch(apis.mail.list_emails, folder='inbox', "
        "unread_only=True)))",
        answer=n,
        check_answer=True,
    )


_NOTE_TOPICS = [("Gift ideas", "scarf for mom, board game for Sam"), ("Packing list", "passport, charger, socks"),
                ("Book club", "read chapters 4 to 6 by Friday"), ("Garden", "water the tomatoes every other day"),
                ("Car", "oil change due at 45,000 miles")]


@template("create_note", 1, ("notes",), pool="train")
def create_note(rng: random.Random, w: dict) -> Task | None:
    title, content = rng.choice(_NOTE_TOPICS)
    if any(n["title"] == title for n in w["notes"]["notes"]):
        return None
    return _task(
        "create_note",
        1,
        f"Create a note titled {title!r} with the content {content!r}.",
        f"apis.notes.create_note(title={_q(title)}, content={_q(content)})\napis.supervisor.complete_task()",
        expects=(
            _added(
                "notes",
                "notes",
                lambda c: _after(c, "title") == title and str(_after(c, "content")).strip() == content,
                label=f"note {title!r}",
            ),
        ),
    )


_TASK_TITLES = ["Call the plumber", "Book dentist appointment", "Buy printer ink", "Return library books",
                "Renew car registration", "Send thank-you cards"]


@template("add_todo", 1, ("todo",), pool="train")
def add_todo(rng: random.Random, w: dict) -> Task | None:
    lists = _unique(w["todo"]["lists"], "name")
    if not lists:
        return None
    lst = rng.choice(lists)
    title = rng.choice(_TASK_TITLES)
    due = (_now(w).date() + timedelta(days=rng.randint(1, 20))).isoformat()
    prio = rng.choice(["low", "medium", "high"])
    sol = (
        f"lst = [x for x in apis.todo.list_task_lists() if x['name'] == {_q(lst['name'])}][0]\n"
        f"apis.todo.add_task(list_id=lst['id'], title={_q(title)}, due_date={_q(due)}, priority={_q(prio)})\n"
        "apis.supervisor.complete_task()"
    )
    return _task("add_todo", 1, f"Add a task {title!r} to my {lst['name']!r} to-do list, due {due}, with {prio} "
                 "priority.", sol, expects=(_added("todo", "tasks", lambda c: _after(c, "title") == title and
                 _after(c, "list_id") == lst["id"] and _after(c, "due_date") == due and _after(c, "priority") == prio,
                 label=f"task {title!r}"),))


def _artist(w: dict, artist_id: int) -> dict:
    return next(a for a in w["music"]["artists"] if a["id"] == artist_id)


@template("like_song", 1, ("music",), pool="train")
def like_song(rng: random.Random, w: dict) -> Task | None:
    liked = {x["song_id"] for x in w["music"]["liked_songs"]}
    songs = [s for s in _unique(w["music"]["songs"], "title") if s["id"] not in liked]
    if not songs:
        return None
    s = rng.choice(songs)
    artist = _artist(w, s["artist_id"])["name"]
    sol = (
        FETCH + f"song = [s for s in fetch(apis.music.search_songs, query={_q(s['title'])}) "
        f"if s['title'] == {_q(s['title'])}][0]\napis.music.like_song(song_id=song['id'])\n"
        "apis.supervisor.complete_task()"
    )
    return _task(
        "like_song",
        1,
        f"Like the song {s['title']!r} by {artist}.",
        sol,
        expects=(_added("music", "liked_songs", lambda c: _after(c, "song_id") == s["id"]),),
    )


@template("cheapest_in_category", 1, ("shop",), pool="test")
def cheapest_in_category(rng: random.Random, w: dict) -> Task | None:
    cats = sorted({p["category"] for p in w["shop"]["products"]})
    cat = rng.choice(cats)
    price = min(p["price"] for p in w["shop"]["products"] if p["category"] == cat)
    sol = (
        FETCH + f"ps = fetch(apis.shop.search_products, category={_q(cat)})\n"
        "apis.supervisor.complete_task(answer=min(p['price'] for p in ps))"
    )
    return _task(
        "cheapest_in_category",
        1,
        f"What is the price of the cheapest product in the shop's {cat} category?",
        sol,
        answer=price,
        check_answer=True,
    )


@template("count_files", 1, ("files",), pool="train")
def count_files(rng: random.Random, w: dict) -> Task | None:
    dirs = sorted({f["path"].rsplit("/", 1)[0] for f in w["files"]["files"] if f["path"].count("/") >= 2})
    if not dirs:
        return None
    d = rng.choice(dirs)
    n = sum(1 for f in w["files"]["files"] if f["path"].rsplit("/", 1)[0] == d)
    sol = (
        FETCH + f"items = fetch(apis.files.list_directory, directory_path={_q(d)})\n"
        "apis.supervisor.complete_task(answer=len([x for x in items if x['type'] == 'file']))"
    )
    return _task(
        "count_files",
        1,
        f"How many files (not folders) are directly inside the folder {d} of my files?",
        sol,
        answer=n,
        check_answer=True,
    )


@template("event_location", 1, ("calendar",), pool="dev")
def event_location(rng: random.Random, w: dict) -> Task | None:
    events = [e for e in _unique(w["calendar"]["events"], "title") if e.get("location")]
    if not events:
        return None
    e = rng.choice(events)
    sol = (
        FETCH + f"ev = [e for e in fetch(apis.calendar.search_events, query={_q(e['title'])}) "
        f"if e['title'] == {_q(e['title'])}][0]\napis.supervisor.complete_task(answer=ev['location'])"
    )
    return _task(
        "event_location",
        1,
        f"Where does the calendar event {e['title']!r} take place?",
        sol,
        answer=e["location"],
        check_answer=True,
    )


@template("pin_note", 1, ("notes",), pool="test")
def pin_note(rng: random.Random, w: dict) -> Task | None:
    notes = [n for n in _unique(w["notes"]["notes"], "title") if not n.get("pinned")]
    if not notes:
        return None
    n = rng.choice(notes)
    sol = (
        FETCH + f"n = [x for x in fetch(apis.notes.search_notes, query={_q(n['title'])}) "
        f"if x['title'] == {_q(n['title'])}][0]\napis.notes.pin_note(note_id=n['id'])\napis.supervisor.complete_task()"
    )
    return _task("pin_note", 1, f"Pin my note titled {n['title']!r}.", sol,
                 expects=(_changed("notes", "notes", lambda c: c.id == n["id"] and _after(c, "pinned") is True,
                                   fields={"pinned", "updated_at"}),))


# ================================================================================================ level 2
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


# ================================================================================================ level 3
@template("birthday_gifts", 3, ("contacts", "payments"), pool="train")
def birthday_gifts(rng: random.Random, w: dict) -> Task | None:
    today = _now(w).date()
    days = rng.choice([14, 21, 30])
    accounts = {a["email"] for a in w["payments"]["accounts"]}

    def upcoming(c: dict) -> bool:
        if not c.get("birthday"):
            return False
        b = date.fromisoformat(c["birthday"])
        nxt = b.replace(year=today.year)
        if nxt < today:
            nxt = nxt.replace(year=today.year + 1)
        return (nxt - today).days <= days

    who = [c for c in _contacts(w) if upcoming(c)]
    if not who or len(who) > 4 or any(c["email"] not in accounts for c in who):
        return None
    amount = rng.choice([15.0, 20.0, 25.0])
    emails = Counter(c["email"] for c in who)
    sol = (
        FETCH + f"for c in fetch(apis.contacts.list_upcoming_birthdays, days={days}):\n"
        f"    apis.payments.send_money(receiver_email=c['email'], amount={amount}, description='Happy birthday!')\n"
        "apis.supervisor.complete_task()"
    )
    return _task("birthday_gifts", 3, f"Send ${amount:.0f} with the description 'Happy birthday!' to every contact "
                 f"whose birthday is within the next {days} days (today included).", sol, ignore=MONEY_BOOKKEEPING,
                 expects=tuple(_added("payments", "transactions", lambda c, e=e: _after(c, "receiver_email") == e and  # type: ignore[misc]
                                      abs(float(_after(c, "amount")) - amount) < 0.005, count=n,
                                      label=f"gift to {e}") for e, n in emails.items()))


@template("invite_relationship", 3, ("contacts", "calendar"), pool="train")
def invite_relationship(rng: random.Random, w: dict) -> Task | None:
    now = w["_meta"]["now"]
    events = [
        e
        for e in _unique(w["calendar"]["events"], "title")
        if e["start_time"] > now and e["organizer_email"] == _me(w)["email"]
    ]  # only the organizer invites
    rels = sorted({r for c in _contacts(w) for r in c.get("relationships", [])})
    if not events or not rels:
        return None
    ev, rel = rng.choice(events), rng.choice(rels)
    have = {a["email"] for a in ev["attendees"]}
    new = {c["email"] for c in _contacts(w, rel)} - have
    if not new or len(new) > 8:
        return None
    sol = (
        FETCH + f"people = fetch(apis.contacts.search_contacts, relationship={_q(rel)})\n"
        f"ev = [e for e in fetch(apis.calendar.search_events, query={_q(ev['title'])}) if e['title'] == "
        f"{_q(ev['title'])}][0]\nev = apis.calendar.show_event(event_id=ev['id'])\n"
        "have = [a['email'] for a in ev['attendees']]\n"
        "missing = [p['email'] for p in people if p['email'] not in have]\n"
        "apis.calendar.add_attendees(event_id=ev['id'], attendee_emails=missing)\napis.supervisor.complete_task()"
    )

    def ok(c: Change) -> bool:
        emails = {a["email"] for a in _after(c, "attendees") or []}
        return c.id == ev["id"] and emails == have | new

    return _task(
        "invite_relationship",
        3,
        f"Invite every contact tagged {rel} to my event {ev['title']!r} (those not invited yet).",
        sol,
        expects=(_changed("calendar", "events", ok, fields={"attendees", "updated_at"}),),
    )


@template("pay_requests_by_relationship", 3, ("contacts", "payments"), pool="dev")
def pay_requests_by_relationship(rng: random.Random, w: dict) -> Task | None:
    pend = _pending_incoming(w)
    rel_of: dict[str, set[str]] = defaultdict(set)
    for c in _contacts(w):
        for r in c.get("relationships", []):
            rel_of[r].add(c["email"])
    rels = sorted(r for r, es in rel_of.items() if any(q["requester_email"] in es for q in pend))
    if not rels:
        return None
    rel = rng.choice(rels)
    ids = {q["id"] for q in pend if q["requester_email"] in rel_of[rel]}
    if sum(q["amount"] for q in pend if q["id"] in ids) > _wallet(w):
        return None
    sol = (
        FETCH + f"emails = [c['email'] for c in fetch(apis.contacts.search_contacts, relationship={_q(rel)})]\n"
        "for r in fetch(apis.payments.list_payment_requests, direction='incoming', status='pending'):\n"
        "    if r['requester_email'] in emails:\n        apis.payments.pay_payment_request(request_id=r['id'])\n"
        "apis.supervisor.complete_task()"
    )
    return _task(
        "pay_requests_by_relationship",
        3,
        f"Pay every pending payment request I received from contacts tagged {rel}; leave the others alone.",
        sol,
        ignore=MONEY_BOOKKEEPING,
        expects=(
            _changed(
                "payments",
                "requests",
                lambda c: c.id in ids and _after(c, "status") == "paid",
                count=len(ids),
                label="requests paid",
            ),
            _added("payments", "transactions", count=len(ids), label="payments"),
        ),
    )


@template("wishlist_to_cart", 3, ("shop",), pool="train")
def wishlist_to_cart(rng: random.Random, w: dict) -> Task | None:
    prods = {p["id"]: p for p in w["shop"]["products"]}
    wl = [x for x in w["shop"]["wishlist"] if x["product_id"] in prods and prods[x["product_id"]]["stock"] > 0]
    if not wl:
        return None
    best = sorted(wl, key=lambda x: (-prods[x["product_id"]]["rating"], prods[x["product_id"]]["price"]))
    if len(best) > 1 and prods[best[0]["product_id"]]["rating"] == prods[best[1]["product_id"]]["rating"]:
        return None
    pid = best[0]["product_id"]
    if any(c["product_id"] == pid for c in w["shop"]["cart"]):
        return None
    sol = (
        "wl = [p for p in apis.shop.show_wishlist() if p['stock'] > 0]\nbest = max(wl, key=lambda p: p['rating'])\n"
        "apis.shop.add_to_cart(product_id=best['id'])\n"
        "apis.shop.remove_from_wishlist(product_id=best['id'])\napis.supervisor.complete_task()"
    )
    return _task(
        "wishlist_to_cart",
        3,
        "Move the highest-rated in-stock product on my wishlist into my shopping cart: add it "
        "to the cart (quantity 1) and remove it from the wishlist.",
        sol,
        expects=(
            _added("shop", "cart", lambda c: _after(c, "product_id") == pid),
            _removed("shop", "wishlist", lambda c: (c.before or {}).get("product_id") == pid),
        ),
    )


@template("email_playlist", 3, ("music", "mail", "contacts"), pool="train")
def email_playlist(rng: random.Random, w: dict) -> Task | None:
    pls = [p for p in _unique(w["music"]["playlists"], "title") if p["song_ids"]]
    people = _unique(_contacts(w), "name")
    if not pls or not people:
        return None
    pl, p = rng.choice(pls), rng.choice(people)
    titles = [s["title"] for s in _playlist_songs(w, pl)]
    subject = f"Playlist: {pl['title']}"
    sol = (
        FETCH + f"pl = [x for x in fetch(apis.music.list_playlists) if x['title'] == {_q(pl['title'])}][0]\n"
        "pl = apis.music.show_playlist(playlist_id=pl['id'])\n"
        "titles = [apis.music.show_song(song_id=i)['title'] for i in pl['song_ids']]\n"
        f"c = apis.contacts.search_contacts(query={_q(p['name'])})[0]\n"
        f"apis.mail.send_email(recipients=[c['email']], subject={_q(subject)}, body='\\n'.join(titles))\n"
        "apis.supervisor.complete_task()"
    )
    return _task("email_playlist", 3, f"Email {p['name']} the titles of the songs in my playlist {pl['title']!r}, "
                 f"one per line in playlist order, with the subject {subject!r}.", sol,
                 expects=(_added("mail", "emails", lambda c: _after(c, "recipients") == [p["email"]] and
                                 _after(c, "subject") == subject and
                                 [ln.strip() for ln in str(_after(c, "body")).strip().splitlines()] == titles,
                                 label="the email"),))


@template("thank_top_payee", 3, ("payments", "mail"), pool="test")
def thank_top_payee(rng: random.Random, w: dict) -> Task | None:
    me = _me(w)["email"]
    sent: Counter[str] = Counter()
    for t in w["payments"]["transactions"]:
        if t["sender_email"] == me:
            sent[t["receiver_email"]] += t["amount"]
    top = sent.most_common(2)
    if not top or (len(top) > 1 and abs(top[0][1] - top[1][1]) < 0.01):
        return None
    email = top[0][0]
    sol = (
        FETCH + "totals = {}\nfor t in fetch(apis.payments.list_transactions, direction='sent'):\n"
        "    totals[t['receiver_email']] = totals.get(t['receiver_email'], 0) + t['amount']\n"
        "top = max(totals, key=totals.get)\n"
        "apis.mail.send_email(recipients=[top], subject='Thanks!', body='Thank you for everything.')\n"
        "apis.supervisor.complete_task()"
    )
    return _task("thank_top_payee", 3, "Find the person I have sent the most money to in total through the payments "
                 "app, and email them with the subject 'Thanks!' and the body 'Thank you for everything.'", sol,
                 expects=(_added("mail", "emails", lambda c: _after(c, "recipients") == [email] and
                                 _after(c, "subject") == "Thanks!", label="the thank-you email"),))


@template("note_from_file", 3, ("files", "notes"), pool="train")
def note_from_file(rng: random.Random, w: dict) -> Task | None:
    files = [f for f in _unique(w["files"]["files"], "path") if f["path"].endswith(".txt") and f["content"].strip()]
    if not files:
        return None
    f = rng.choice(files)
    title = f"Copy of {f['path'].rsplit('/', 1)[1]}"
    sol = (
        f"f = apis.files.show_file(file_path={_q(f['path'])})\n"
        f"apis.notes.create_note(title={_q(title)}, content=f['content'])\napis.supervisor.complete_task()"
    )
    return _task(
        "note_from_file",
        3,
        f"Create a note titled {title!r} whose content is the full text of the file {f['path']}.",
        sol,
        expects=(
            _added(
                "notes",
                "notes",
                lambda c: _after(c, "title") == title and str(_after(c, "content")).strip() == f["content"].strip(),
            ),
        ),
    )


@template("prep_tasks_for_day", 3, ("calendar", "todo"), pool="train")
def prep_tasks_for_day(rng: random.Random, w: dict) -> Task | None:
    now = w["_meta"]["now"]
    by: dict[str, list[dict]] = defaultdict(list)
    for e in w["calendar"]["events"]:
        if e["start_time"][:10] >= now[:10]:  # every event of the day, earlier ones of today included
            by[e["start_time"][:10]].append(e)
    lists = _unique(w["todo"]["lists"], "name")
    days = sorted(d for d, es in by.items() if len({e["title"] for e in es}) == len(es))
    if not days or not lists:
        return None
    day, lst = rng.choice(days), rng.choice(lists)
    titles = Counter(f"Prepare for {e['title']}" for e in by[day])
    sol = (
        FETCH + f"lst = [x for x in apis.todo.list_task_lists() if x['name'] == {_q(lst['name'])}][0]\n"
        f"for e in fetch(apis.calendar.list_events, start_date={_q(day)}, end_date={_q(day)}):\n"
        f"    apis.todo.add_task(list_id=lst['id'], title='Prepare for ' + e['title'], due_date={_q(day)})\n"
        "apis.supervisor.complete_task()"
    )
    return _task("prep_tasks_for_day", 3, f"For each event on my calendar on {day}, add a task titled "
                 f"'Prepare for <event title>' to my {lst['name']!r} to-do list, due {day}.", sol,
                 expects=tuple(_added("todo", "tasks", lambda c, t=t: _after(c, "title") == t and  # type: ignore[misc]
                                      _after(c, "list_id") == lst["id"] and _after(c, "due_date") == day, count=n,
                                      label=t) for t, n in titles.items()))


@template("playlist_from_history", 3, ("music",), pool="dev")
def playlist_from_history(rng: random.Random, w: dict) -> Task | None:
    by: dict[str, list[int]] = defaultdict(list)
    for p in w["music"]["play_history"]:
        if p["song_id"] not in by[p["played_at"][:10]]:
            by[p["played_at"][:10]].append(p["song_id"])
    days = sorted(d for d, ids in by.items() if len(ids) >= 2)
    if not days:
        return None
    day = rng.choice(days)
    title = f"Replay {day}"
    want = set(by[day])
    sol = (
        FETCH + f"plays = fetch(apis.music.list_play_history, start_date={_q(day)}, end_date={_q(day)})\n"
        "ids = []\nfor p in plays:\n    if p['song_id'] not in ids:\n        ids.append(p['song_id'])\n"
        f"apis.music.create_playlist(title={_q(title)}, song_ids=ids)\napis.supervisor.complete_task()"
    )
    return _task("playlist_from_history", 3, f"Create a playlist titled {title!r} with every song I played on {day}, "
                 "each song once.", sol,
                 expects=(_added("music", "playlists", lambda c: _after(c, "title") == title
                                 and sorted(_after(c, "song_ids") or []) == sorted(want),
                                 label="the playlist"),))


@template("forward_order_email", 3, ("mail", "contacts"), pool="test")
def forward_order_email(rng: random.Random, w: dict) -> Task | None:
    orders = _unique(
        [e for e in w["mail"]["emails"] if e["folder"] == "inbox" and "order" in e["subject"].lower()], "subject"
    )
    people = [c for c in _unique(_contacts(w), "name") if "family" in c.get("relationships", [])
              or "partner" in c.get("relationships", [])]
    if not orders or not people:
        return None
    e, p = rng.choice(orders), rng.choice(people)
    sol = (
        FETCH + f"es = [e for e in fetch(apis.mail.search_emails, query={_q(e['subject'])}, folder='inbox') "
        f"if e['subject'] == {_q(e['subject'])}]\n"
        f"c = apis.contacts.search_contacts(query={_q(p['name'])})[0]\n"
        "apis.mail.forward_email(email_id=es[0]['id'], recipients=[c['email']])\napis.supervisor.complete_task()"
    )
    return _task(
        "forward_order_email",
        3,
        f"Forward the email with the subject {e['subject']!r} to {p['name']}.",
        sol,
        expects=(
            _added(
                "mail",
                "emails",
                lambda c: _after(c, "recipients") == [p["email"]] and e["subject"] in str(_after(c, "subject")),
                label="the forward",
            ),
        ),
    )


@template("largest_received_from_coworker", 3, ("payments", "contacts"), pool="train")
def largest_received(rng: random.Random, w: dict) -> Task | None:
    rels = sorted({r for c in _contacts(w) for r in c.get("relationships", [])})
    rel = rng.choice(rels)
    emails = {c["email"] for c in _contacts(w, rel)}
    me = _me(w)["email"]
    got = [t for t in w["payments"]["transactions"] if t["receiver_email"] == me and t["sender_email"] in emails]
    if not got:
        return None
    top = max(t["amount"] for t in got)
    sol = (
        FETCH + f"emails = [c['email'] for c in fetch(apis.contacts.search_contacts, relationship={_q(rel)})]\n"
        "got = [t for t in fetch(apis.payments.list_transactions, direction='received') "
        "if t['sender_email'] in emails]\n"
        "apis.supervisor.complete_task(answer=max(t['amount'] for t in got))"
    )
    return _task(
        "largest_received_from_coworker",
        3,
        f"What is the largest amount of money, in dollars, that I have "
        f"received through the payments app from a contact tagged {rel}?",
        sol,
        answer=top,
        check_answer=True,
    )


@template("archive_shop_emails", 2, ("mail",), pool="train")
def archive_shop_emails(rng: random.Random, w: dict) -> Task | None:
    senders = sorted({e["sender"] for e in w["mail"]["emails"] if e["folder"] == "inbox"
                      and not any(c["email"] == e["sender"] for c in _contacts(w))})
    if not senders:
        return None
    s = rng.choice(senders)
    ids = {e["id"] for e in w["mail"]["emails"] if e["folder"] == "inbox" and e["sender"] == s}
    sol = (
        FETCH + f"for e in fetch(apis.mail.search_emails, sender={_q(s)}, folder='inbox'):\n"
        "    apis.mail.archive_email(email_id=e['id'])\napis.supervisor.complete_task()"
    )
    return _task(
        "archive_shop_emails",
        2,
        f"Archive every email in my inbox sent by {s}.",
        sol,
        expects=(
            _changed(
                "mail",
                "emails",
                lambda c: c.id in ids and _after(c, "folder") == "archive",
                count=len(ids),
                label="emails archived",
            ),
        ),
    )


@template("budget_month_rent", 2, ("files",), pool="test")
def budget_month_rent(rng: random.Random, w: dict) -> Task | None:
    f = next((f for f in w["files"]["files"] if f["path"].endswith("budget.csv")), None)
    if f is None:
        return None
    rows = [ln.split(",") for ln in f["content"].strip().splitlines()]
    header, data = rows[0], rows[1:]
    if "groceries" not in header or not data:
        return None
    row = rng.choice(data)
    col = header.index("groceries")
    sol = (
        f"text = apis.files.show_file(file_path={_q(f['path'])})['content']\n"
        "rows = [ln.split(',') for ln in text.strip().splitlines()]\ncol = rows[0].index('groceries')\n"
        f"val = [r[col] for r in rows[1:] if r[0] == {_q(row[0])}][0]\n"
        "apis.supervisor.complete_task(answer=float(val))"
    )
    return _task(
        "budget_month_rent",
        2,
        f"According to my budget spreadsheet ({f['path']}), how much did I spend on groceries in {row[0]}?",
        sol,
        answer=float(row[col]),
        check_answer=True,
    )
