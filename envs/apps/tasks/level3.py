"""Level-3 task templates of Apps-v0 (registered in `TEMPLATES` on import)."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from datetime import date

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
from distillgym.envs.apps.tasks.level2 import _pending_incoming, _playlist_songs, _wallet


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
