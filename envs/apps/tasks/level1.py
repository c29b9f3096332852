"""Level-1 task templates of Apps-v0 (registered in `TEMPLATES` on import)."""

from __future__ import annotations

import random
from collections import Counter
from datetime import timedelta

from distillgym.envs.apps.tasks.base import Task, template
from distillgym.envs.apps.tasks.common import FETCH, _added, _after, _changed, _contacts, _me, _now, _q, _task, _unique


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
