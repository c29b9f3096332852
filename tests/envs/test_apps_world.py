"""Apps-v0 simulated apps: the seeded world, the `apis` object, every endpoint's docs, behaviour and robustness."""

import copy
import json
import random
import time

import pytest

from distillgym.envs.apps.api import endpoints as all_endpoints
from distillgym.envs.apps.api import make_apis
from distillgym.envs.apps.base import ApiError
from distillgym.envs.apps.world import generate_world

APPS = {"mail", "contacts", "calendar", "notes", "todo", "payments", "shop", "files", "music"}


@pytest.fixture
def world() -> dict:
    return generate_world(11)


@pytest.fixture
def apis(world):
    return make_apis(world)


def roundtrip(state: dict) -> None:
    assert json.loads(json.dumps(state)) == state


def all_pages(fn, **kw) -> list:
    out, i = [], 0
    while True:
        page = fn(page_index=i, page_limit=kw.pop("page_limit", 3), **kw)
        if not page:
            return out
        out += page
        i += 1


# ------------------------------------------------------------------------------------------------------------ world


def test_world_is_deterministic_and_json():
    a, b = generate_world(7), generate_world(7)
    assert json.dumps(a) == json.dumps(b)
    assert json.dumps(generate_world(8)) != json.dumps(a)
    roundtrip(a)
    assert a["_meta"]["now"] == "2026-03-14T10:00:00"
    assert set(a) - {"_meta", "_supervisor"} == APPS


def test_world_tables_have_unique_int_ids_and_counters():
    for seed in range(5):
        w = generate_world(seed)
        for app in APPS:
            for table, rows in w[app].items():
                ids = [r["id"] for r in rows]
                assert all(type(i) is int for i in ids), (app, table)
                assert len(ids) == len(set(ids)), (app, table)
                assert w["_meta"]["next_ids"][f"{app}.{table}"] > max(ids, default=0)


def test_world_has_variety():
    w = generate_world(3)
    assert 15 <= len(w["contacts"]["contacts"]) <= 30
    rels = {r for c in w["contacts"]["contacts"] for r in c["relationships"]}
    assert {"friend", "coworker", "family", "manager"} <= rels
    assert len(w["mail"]["emails"]) >= 20
    assert any(e["attachments"] for e in w["mail"]["emails"])
    assert len(w["payments"]["transactions"]) >= 20
    assert any(r["status"] == "pending" and r["payer_email"] == w["_supervisor"]["profile"]["email"]
               for r in w["payments"]["requests"])
    assert any(s["duration_seconds"] > 240 for s in w["music"]["songs"])
    assert {o["status"] for o in w["shop"]["orders"]} & {"delivered", "returned", "cancelled"}
    assert len(w["files"]["files"]) >= 10
    big = generate_world(3, size="large")
    assert len(big["music"]["songs"]) > len(w["music"]["songs"])


def test_world_generation_is_fast_and_small():
    t = time.perf_counter()
    sizes = [len(json.dumps(generate_world(s))) for s in range(20)]
    per_world = (time.perf_counter() - t) / 20
    assert per_world < 0.05  # measured ~3 ms (generation) on one core; slack for loaded CI machines
    assert max(sizes) < 200_000


def test_make_apis_does_not_change_the_world(world):
    before = copy.deepcopy(world)
    make_apis(world)
    assert world == before


# ------------------------------------------------------------------------------------------------------------ docs


def test_every_endpoint_is_documented(apis):
    eps = all_endpoints()
    assert len(eps) >= 80
    assert len({a for a, _ in eps} & APPS) >= 6
    apps = {d["name"] for d in apis.api_docs.show_app_descriptions()}
    assert APPS | {"supervisor", "api_docs"} == apps
    for app in apps:
        listed = [d["name"] for d in apis.api_docs.show_api_descriptions(app_name=app)]
        assert listed == [api for a, api in eps if a == app]
    for app, api in eps:
        doc = apis.api_docs.show_api_doc(app_name=app, api_name=api)
        assert doc["description"] and doc["returns"], (app, api)
        for p in doc["parameters"]:
            assert p["type"] and p["description"], (app, api, p["name"])
        assert callable(getattr(getattr(apis, app), api))
    with pytest.raises(ApiError, match="show_app_descriptions"):
        apis.api_docs.show_api_descriptions(app_name="nope")
    with pytest.raises(ApiError, match="send_email"):
        apis.api_docs.show_api_doc(app_name="mail", api_name="nope")


def test_exposed_objects_hide_the_state(apis):
    for app in APPS:
        obj = getattr(apis, app)
        for name in dir(obj):
            assert not name.startswith("_")
            fn = getattr(obj, name)
            assert callable(fn)
            assert [n for n in dir(fn) if not n.startswith("_")] == []
    with pytest.raises(AttributeError, match="Apps:"):
        apis.bank  # noqa: B018
    with pytest.raises(ApiError, match="send_email"):
        apis.mail.send  # noqa: B018
    assert not hasattr(apis.mail, "nope")


# ------------------------------------------------------------------------------------------------------------ apps


def test_supervisor(apis, world):
    me = apis.supervisor.show_profile()
    assert me["email"] == world["_supervisor"]["profile"]["email"]
    assert apis.supervisor.complete_task(answer=[1, "a"])["completed"]
    assert (world["_supervisor"]["completed"], world["_supervisor"]["answer"]) == (True, [1, "a"])
    with pytest.raises(ApiError, match="answer"):
        apis.supervisor.complete_task(answer={1, 2})


def test_contacts(apis, world):
    out = apis.contacts.add_contact(first_name="Ada", last_name="Lovelace", email="ada@math.org",
                                    relationships=["friend"], birthday="1990-03-20")
    c = apis.contacts.show_contact(contact_id=out["contact_id"])
    assert c["name"] == "Ada Lovelace" and c["relationships"] == ["friend"]
    assert apis.contacts.find_contact_by_email(email="ADA@math.org")["id"] == c["id"]
    assert [x["id"] for x in apis.contacts.search_contacts(query="lovelace")] == [c["id"]]
    apis.contacts.update_contact(contact_id=c["id"], phone="+1-555-0000")
    apis.contacts.add_relationship(contact_id=c["id"], relationship="coworker")
    assert apis.contacts.show_contact(contact_id=c["id"])["relationships"] == ["coworker", "friend"]
    with pytest.raises(ApiError, match="already has the email"):
        apis.contacts.add_contact(first_name="X", last_name="Y", email="ada@math.org")
    soon = apis.contacts.list_upcoming_birthdays(days=10, page_limit=20)
    assert c["id"] in [x["contact_id"] for x in soon]
    assert [x["days_until"] for x in soon] == sorted(x["days_until"] for x in soon)
    friends = all_pages(apis.contacts.search_contacts, relationship="friend")
    assert len(friends) == sum("friend" in x["relationships"] for x in world["contacts"]["contacts"])
    apis.contacts.delete_contact(contact_id=c["id"])
    with pytest.raises(ApiError, match=r"search_contacts\(query="):
        apis.contacts.show_contact(contact_id=c["id"])
    roundtrip(world)


def test_mail(apis, world):
    me = world["_supervisor"]["profile"]["email"]
    inbox = all_pages(apis.mail.list_emails, folder="inbox")
    assert len(inbox) == sum(e["folder"] == "inbox" for e in world["mail"]["emails"])
    assert [e["sent_at"] for e in inbox] == sorted((e["sent_at"] for e in inbox), reverse=True)
    sent = apis.mail.send_email(recipients=["friend@example.com"], subject="Hello there", body="Lunch tomorrow?")
    e = apis.mail.show_email(email_id=sent["email_id"])
    assert e["folder"] == "sent" and e["sender"] == me and e["recipients"] == ["friend@example.com"]
    assert apis.mail.search_emails(query="lunch tomorrow")[0]["id"] == e["id"]
    first = inbox[0]
    reply = apis.mail.reply_to_email(email_id=first["id"], body="Thanks!")
    r = apis.mail.show_email(email_id=reply["email_id"])
    assert r["thread_id"] == first["thread_id"] and r["recipients"] == [first["sender"]]
    assert r["subject"].startswith("Re:")
    thread = apis.mail.show_thread(thread_id=first["thread_id"])
    assert thread[-1]["id"] == r["id"]
    fwd = apis.mail.forward_email(email_id=first["id"], recipients=["boss@example.com"], body="FYI")
    assert "Forwarded message" in apis.mail.show_email(email_id=fwd["email_id"])["body"]
    apis.mail.mark_as_unread(email_id=first["id"])
    assert first["id"] in [x["id"] for x in all_pages(apis.mail.list_emails, unread_only=True)]
    apis.mail.mark_as_read(email_id=first["id"])
    apis.mail.star_email(email_id=first["id"])
    apis.mail.create_label(label="later")
    apis.mail.add_label(email_id=first["id"], label="later")
    assert [x["id"] for x in apis.mail.list_emails(label="later")] == [first["id"]]
    with pytest.raises(ApiError, match="create_label"):
        apis.mail.add_label(email_id=first["id"], label="nope")
    apis.mail.delete_email(email_id=first["id"])
    assert first["id"] not in [x["id"] for x in all_pages(apis.mail.list_emails)]
    assert first["id"] in [x["id"] for x in all_pages(apis.mail.list_emails, folder="trash")]
    apis.mail.restore_email(email_id=first["id"])
    assert apis.mail.show_email(email_id=first["id"])["folder"] == "inbox"
    apis.mail.delete_email(email_id=first["id"])
    assert apis.mail.empty_trash()["deleted_count"] == 1
    with pytest.raises(ApiError, match="search_emails"):
        apis.mail.show_email(email_id=first["id"])
    with_att = next(x for x in world["mail"]["emails"] if x["attachments"])
    name = with_att["attachments"][0]["name"]
    apis.mail.download_attachment(email_id=with_att["id"], attachment_name=name, file_path=f"/downloads/{name}")
    assert apis.files.show_file(file_path=f"/downloads/{name}")["content"] == with_att["attachments"][0]["content"]
    with pytest.raises(ApiError, match="email address"):
        apis.mail.send_email(recipients=["not-an-email"], subject="x", body="y")
    roundtrip(world)


def test_pagination_limits(apis):
    with pytest.raises(ApiError, match="page_limit must be between 1 and 20"):
        apis.music.search_songs(page_limit=50)
    with pytest.raises(ApiError, match="page_index"):
        apis.music.search_songs(page_index=-1)
    assert len(apis.music.search_songs()) == 5
    assert apis.music.search_songs(page_index=10_000) == []


def test_payments_send_money_and_requests(apis, world):
    me = world["_supervisor"]["profile"]["email"]
    accounts = {a["email"]: a for a in world["payments"]["accounts"]}
    friend = next(c for c in world["contacts"]["contacts"] if c["email"] in accounts)
    bal, theirs = accounts[me]["balance"], accounts[friend["email"]]["balance"]
    n = len(world["payments"]["transactions"])
    out = apis.payments.send_money(receiver_email=friend["email"], amount=12.5, description="Pizza")
    assert apis.payments.show_balance()["balance"] == pytest.approx(bal - 12.5)
    assert accounts[friend["email"]]["balance"] == pytest.approx(theirs + 12.5)
    assert len(world["payments"]["transactions"]) == n + 1
    t = apis.payments.show_transaction(transaction_id=out["transaction_id"])
    assert (t["direction"], t["counterparty_email"], t["amount"]) == ("sent", friend["email"], 12.5)
    assert apis.payments.list_transactions(counterparty_email=friend["email"])[0]["id"] == t["id"]
    everything = all_pages(apis.payments.list_transactions)
    assert len(everything) == n + 1
    with pytest.raises(ApiError, match="payment_card_id"):
        apis.payments.send_money(receiver_email=friend["email"], amount=1_000_000)
    card = next(c for c in world["payments"]["cards"] if c["expiry_date"] >= "2026-03")
    cb = card["balance"]
    apis.payments.send_money(receiver_email=friend["email"], amount=5, payment_card_id=card["id"])
    assert card["balance"] == pytest.approx(cb - 5)
    with pytest.raises(ApiError, match="No payments account"):
        apis.payments.send_money(receiver_email="stranger@nowhere.org", amount=5)
    with pytest.raises(ApiError, match="cents"):
        apis.payments.send_money(receiver_email=friend["email"], amount=1.234)
    incoming = apis.payments.list_payment_requests(direction="incoming", status="pending")
    assert incoming
    apis.payments.add_money_from_card(amount=500, payment_card_id=card["id"])
    paid = apis.payments.pay_payment_request(request_id=incoming[0]["id"])
    assert apis.payments.show_payment_request(request_id=incoming[0]["id"])["status"] == "paid"
    assert apis.payments.show_transaction(transaction_id=paid["transaction_id"])["amount"] == incoming[0]["amount"]
    with pytest.raises(ApiError, match="already paid"):
        apis.payments.decline_payment_request(request_id=incoming[0]["id"])
    req = apis.payments.request_money(payer_email=friend["email"], amount=20, description="Tickets")
    with pytest.raises(ApiError, match="sent by you"):
        apis.payments.pay_payment_request(request_id=req["request_id"])
    apis.payments.cancel_payment_request(request_id=req["request_id"])
    expired = [c for c in world["payments"]["cards"] if c["expiry_date"] < "2026-03"]
    if expired:
        with pytest.raises(ApiError, match="expired"):
            apis.payments.send_money(receiver_email=friend["email"], amount=1, payment_card_id=expired[0]["id"])
    roundtrip(world)


def test_shop_checkout_and_orders(apis, world):
    p = next(x for x in world["shop"]["products"] if x["stock"] >= 2 and x["price"] < 200)
    card = next(c for c in world["payments"]["cards"] if c["expiry_date"] >= "2026-03")
    card["balance"] = 5000.0
    apis.shop.clear_cart()
    cart = apis.shop.add_to_cart(product_id=p["id"], quantity=2)
    assert cart["subtotal"] == pytest.approx(2 * p["price"])
    stock = p["stock"]
    out = apis.shop.checkout(payment_card_id=card["id"])
    assert card["balance"] == pytest.approx(5000 - out["total"])
    order = apis.shop.show_order(order_id=out["order_id"])
    assert order["status"] == "placed" and order["items"][0]["quantity"] == 2
    assert apis.shop.show_cart()["items"] == [] and p["stock"] == stock - 2
    assert apis.shop.list_orders()[0]["id"] == order["id"]
    apis.shop.cancel_order(order_id=order["id"])
    assert card["balance"] == pytest.approx(5000) and p["stock"] == stock
    with pytest.raises(ApiError, match="cart is empty"):
        apis.shop.checkout(payment_card_id=card["id"])
    with pytest.raises(ApiError, match="search_products"):
        apis.shop.add_to_cart(product_id=99999)
    found = all_pages(apis.shop.search_products, max_price=50, sort_by="price_asc")
    assert found == sorted(found, key=lambda x: x["price"]) and all(x["price"] <= 50 for x in found)
    assert len(found) == sum(x["price"] <= 50 for x in world["shop"]["products"])
    out_of_stock = [x for x in world["shop"]["products"] if x["stock"] == 0]
    if out_of_stock:
        with pytest.raises(ApiError, match="in stock"):
            apis.shop.add_to_cart(product_id=out_of_stock[0]["id"])
    roundtrip(world)


def test_calendar(apis, world):
    ev = apis.calendar.create_event(title="Dentist", start_time="2026-03-17T09:00:00", end_time="2026-03-17T10:00",
                                    attendee_emails=["pal@example.com"])
    e = apis.calendar.show_event(event_id=ev["event_id"])
    assert e["my_response"] == "organizer" and e["attendees"][0]["response"] == "pending"
    day = apis.calendar.show_availability(date="2026-03-17")
    assert any(b["event_id"] == e["id"] for b in day["busy"])
    assert all(s["end_time"] <= "2026-03-17T09:00:00" or s["start_time"] >= "2026-03-17T10:00:00"
               for s in day["free_slots"])
    apis.calendar.update_event(event_id=e["id"], location="Main St")
    assert apis.calendar.search_events(query="dentist main")[0]["id"] == e["id"]
    with pytest.raises(ApiError, match="after start_time"):
        apis.calendar.update_event(event_id=e["id"], end_time="2026-03-17T08:00:00")
    theirs = next(x for x in world["calendar"]["events"] if x["organizer_email"] != world["_supervisor"]["profile"][
        "email"])
    with pytest.raises(ApiError, match="respond_to_invitation"):
        apis.calendar.delete_event(event_id=theirs["id"])
    assert apis.calendar.respond_to_invitation(event_id=theirs["id"], response="declined")["my_response"] == "declined"
    march = all_pages(apis.calendar.list_events, start_date="2026-03-01", end_date="2026-03-31")
    assert [x["start_time"] for x in march] == sorted(x["start_time"] for x in march)
    apis.calendar.delete_event(event_id=e["id"])
    with pytest.raises(ApiError, match="list_events"):
        apis.calendar.show_event(event_id=e["id"])
    roundtrip(world)


def test_notes_and_todo(apis, world):
    n = apis.notes.create_note(title="Ideas", content="one", tags=["Work"])
    apis.notes.append_to_note(note_id=n["note_id"], text="two")
    apis.notes.add_tag(note_id=n["note_id"], tag="later")
    note = apis.notes.show_note(note_id=n["note_id"])
    assert note["content"] == "one\ntwo" and note["tags"] == ["later", "work"]
    assert apis.notes.search_notes(query="ideas")[0]["id"] == note["id"]
    assert {"tag": "later", "note_count": 1} in apis.notes.list_tags()
    apis.notes.delete_note(note_id=note["id"])
    assert len(all_pages(apis.notes.list_notes)) == len(world["notes"]["notes"])

    lst = apis.todo.create_task_list(name="Trip")
    t = apis.todo.add_task(list_id=lst["list_id"], title="Pack", due_date="2026-03-20", priority="high")
    assert apis.todo.list_tasks(list_id=lst["list_id"])[0]["title"] == "Pack"
    apis.todo.mark_task_done(task_id=t["task_id"])
    assert apis.todo.show_task(task_id=t["task_id"])["completed"]
    assert apis.todo.list_tasks(list_id=lst["list_id"], completed=False) == []
    with pytest.raises(ApiError, match="already exists"):
        apis.todo.create_task_list(name="trip")
    with pytest.raises(ApiError, match="one of"):
        apis.todo.add_task(list_id=lst["list_id"], title="x", priority="urgent")
    assert apis.todo.delete_task_list(list_id=lst["list_id"])["deleted_tasks"] == 1
    roundtrip(world)


def test_files(apis, world):
    apis.files.create_file(file_path="/tmp/a/notes.txt", content="hello world")
    assert apis.files.show_file(file_path="/tmp/a/notes.txt")["content"] == "hello world"
    assert [x["name"] for x in apis.files.list_directory(directory_path="/tmp")] == ["a"]
    with pytest.raises(ApiError, match="overwrite=True"):
        apis.files.create_file(file_path="/tmp/a/notes.txt", content="again")
    apis.files.append_to_file(file_path="/tmp/a/notes.txt", content="!")
    apis.files.move_file(source_path="/tmp/a/notes.txt", destination_path="/documents")
    assert apis.files.show_file(file_path="/documents/notes.txt")["content"] == "hello world!"
    apis.files.copy_file(source_path="/documents/notes.txt", destination_path="/tmp/copy.txt")
    assert apis.files.search_files(query="hello", directory_path="/tmp")[0]["path"] == "/tmp/copy.txt"
    with pytest.raises(ApiError, match="recursive=True"):
        apis.files.delete_directory(directory_path="/tmp")
    assert apis.files.delete_directory(directory_path="/tmp", recursive=True)["deleted_files"] == 1
    with pytest.raises(ApiError, match="absolute path"):
        apis.files.show_file(file_path="documents/notes.txt")
    with pytest.raises(ApiError, match="list_directory"):
        apis.files.show_file(file_path="/nope.txt")
    every = all_pages(apis.files.search_files)
    assert len(every) == len(world["files"]["files"])
    roundtrip(world)


def test_music(apis, world):
    long = all_pages(apis.music.search_songs, min_duration=240)
    assert long and all(s["duration_seconds"] >= 240 for s in long)
    assert len(long) == sum(s["duration_seconds"] >= 240 for s in world["music"]["songs"])
    pl = apis.music.create_playlist(title="Long ones", song_ids=[s["id"] for s in long[:3]])
    apis.music.add_song_to_playlist(playlist_id=pl["playlist_id"], song_id=long[3]["id"] if len(long) > 3
                                    else world["music"]["songs"][0]["id"])
    shown = apis.music.show_playlist(playlist_id=pl["playlist_id"])
    assert len(shown["songs"]) == 4
    assert shown["total_duration_seconds"] == sum(s["duration_seconds"] for s in shown["songs"])
    with pytest.raises(ApiError, match="already in playlist"):
        apis.music.add_song_to_playlist(playlist_id=pl["playlist_id"], song_id=long[0]["id"])
    apis.music.remove_song_from_playlist(playlist_id=pl["playlist_id"], song_id=long[0]["id"])
    song = world["music"]["songs"][0]
    if song["id"] in {x["song_id"] for x in world["music"]["liked_songs"]}:
        apis.music.unlike_song(song_id=song["id"])
    apis.music.like_song(song_id=song["id"])
    assert apis.music.list_liked_songs()[0]["id"] == song["id"]
    apis.music.play_song(song_id=song["id"])
    assert apis.music.list_play_history()[0]["song_id"] == song["id"]
    album = apis.music.show_album(album_id=song["album_id"])
    assert song["id"] in [s["id"] for s in album["songs"]]
    apis.music.delete_playlist(playlist_id=pl["playlist_id"])
    with pytest.raises(ApiError, match="list_playlists"):
        apis.music.show_playlist(playlist_id=pl["playlist_id"])
    roundtrip(world)


# -------------------------------------------------------------------------------------------------------- robustness

BAD_VALUES = [None, "x", "", -1, 0, 10**9, 3.5, True, [], [1, "a"], {"a": 1}, object(), float("nan")]


def test_bad_arguments_raise_api_error_only(world):
    apis = make_apis(world)
    rng = random.Random(0)
    for app, api in all_endpoints():
        if (app, api) == ("supervisor", "complete_task"):
            continue
        fn = getattr(getattr(apis, app), api)
        params = [p["name"] for p in apis.api_docs.show_api_doc(app_name=app, api_name=api)["parameters"]]
        for _ in range(6):
            kwargs = {p: rng.choice(BAD_VALUES) for p in params}
            try:
                fn(**kwargs)
            except ApiError as e:
                assert not str(e).startswith("Internal error"), (app, api, kwargs, e)
        try:
            fn(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11)
        except ApiError as e:
            assert "positional" in str(e)
        with pytest.raises(ApiError, match="unexpected argument"):
            fn(bogus_argument=1)
    roundtrip(world)


def test_random_call_sequences_keep_state_json(world):
    """Random calls with plausible arguments (ids and names from the state): only ApiErrors, state stays JSON."""
    apis = make_apis(world)
    rng = random.Random(1)
    eps = [e for e in all_endpoints() if e != ("supervisor", "complete_task")]

    def value(name: str, typ: str):
        ids = {"email_id": ("mail", "emails"), "thread_id": ("mail", "emails"), "contact_id": ("contacts", "contacts"),
               "event_id": ("calendar", "events"), "note_id": ("notes", "notes"), "list_id": ("todo", "lists"),
               "task_id": ("todo", "tasks"), "transaction_id": ("payments", "transactions"),
               "request_id": ("payments", "requests"), "payment_card_id": ("payments", "cards"),
               "product_id": ("shop", "products"), "order_id": ("shop", "orders"), "song_id": ("music", "songs"),
               "album_id": ("music", "albums"), "artist_id": ("music", "artists"),
               "playlist_id": ("music", "playlists")}
        if name in ids:
            rows = world[ids[name][0]][ids[name][1]]
            return rng.choice(rows)["id"] if rows and rng.random() < 0.9 else rng.randint(1, 300)
        if "email" in name:
            people = [c["email"] for c in world["contacts"]["contacts"]]
            return [rng.choice(people)] if typ.startswith("list") else rng.choice(people)
        if "path" in name:
            paths = [f["path"] for f in world["files"]["files"]] + ["/new/file.txt", "/documents"]
            return [rng.choice(paths)] if typ.startswith("list") else rng.choice(paths)
        if "time" in name or "date" in name or name in ("birthday", "due_before", "due_after"):
            return f"2026-03-{rng.randint(1, 28):02d}" + ("T10:00:00" if "time" in name else "")
        if name == "page_limit":
            return rng.randint(1, 20)
        if typ.startswith("int"):
            return rng.randint(0, 5)
        if typ.startswith("float"):
            return round(rng.uniform(1, 50), 2)
        if typ.startswith("bool"):
            return rng.random() < 0.5
        if typ.startswith("list"):
            return [rng.choice(["friend", "work", "x"])]
        return rng.choice(["friend", "work", "hello", "inbox", "accepted", "medium", "Trip"])

    errors = 0
    for step in range(400):
        app, api = rng.choice(eps)
        doc = apis.api_docs.show_api_doc(app_name=app, api_name=api)
        kwargs = {p["name"]: value(p["name"], p["type"]) for p in doc["parameters"]
                  if p["required"] or rng.random() < 0.4}
        if api == "empty_trash" or (api.startswith("delete_") and rng.random() < 0.7):
            continue
        try:
            getattr(getattr(apis, app), api)(**kwargs)
        except ApiError as e:
            errors += 1
            assert not str(e).startswith("Internal error"), (app, api, kwargs, e)
        if step % 50 == 0:
            roundtrip(world)
    roundtrip(world)
    assert errors < 400
