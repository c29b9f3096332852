"""Calendar app: events with times, places and attendees; invitations; free/busy for a day."""

import typing

from distillgym.envs.apps.apps.contacts import find_contact_by_email
from distillgym.envs.apps.base import ApiError, App, check_email, matches, nonempty, paginate, parse_date, parse_time

Response = typing.Literal["accepted", "declined", "tentative"]
_HINT = "Use apis.calendar.list_events(start_date=..., end_date=...) or apis.calendar.search_events(query=...) to " \
        "find event ids."


class Calendar(App):
    """Calendar."""

    name = "calendar"
    description = "Calendar: list, search, create, change and delete events, invite attendees, answer invitations " \
                  "and check free time."
    schema: typing.ClassVar[dict] = {"events": []}

    def _event(self, event_id: int) -> dict:
        return self._find("events", event_id, "event", _HINT)

    def _own_event(self, event_id: int, action: str) -> dict:
        e = self._event(event_id)
        if e["organizer_email"] != self._user_email:
            raise ApiError(f"Event {event_id} is organized by {e['organizer_email']}, so only they can {action} it. "
                           "Use apis.calendar.respond_to_invitation(event_id=..., response=...) to accept or decline.")
        return e

    def _attendee(self, email: str, response: str) -> dict:
        c = find_contact_by_email(self._state, email)
        return {"email": email, "name": c["name"] if c else email.split("@")[0], "response": response}

    def _range(self, start_date: str | None, end_date: str | None) -> tuple[str | None, str | None]:
        lo = parse_time(start_date, "start_date") if start_date else None
        hi = parse_time(end_date, "end_date", end_of_day=True) if end_date else None
        if lo and hi and lo > hi:
            raise ApiError(f"start_date {start_date!r} is after end_date {end_date!r}.")
        return lo, hi

    def _my_response(self, e: dict) -> str:
        if e["organizer_email"] == self._user_email:
            return "organizer"
        for a in e["attendees"]:
            if a["email"] == self._user_email:
                return a["response"]
        return "pending"

    def _view(self, e: dict) -> dict:
        return {**e, "my_response": self._my_response(e)}

    @staticmethod
    def _sorted(events: list[dict]) -> list[dict]:
        return sorted(events, key=lambda e: (e["start_time"], e["id"]))

    def list_events(self, start_date: str | None = None, end_date: str | None = None, page_index: int = 0,
                    page_limit: int = 5) -> list[dict]:
        """List calendar events overlapping a date range, in start-time order.

        Returns: a list of events (id, title, description, location, start_time, end_time, organizer_email,
            attendees [{email, name, response}], created_at, my_response: "organizer"|"accepted"|"declined"|
            "tentative"|"pending").
        """
        lo, hi = self._range(start_date, end_date)
        out = [e for e in self._db["events"] if (not lo or e["end_time"] >= lo) and (not hi or e["start_time"] <= hi)]
        return [self._view(e) for e in paginate(self._sorted(out), page_index, page_limit)]

    def search_events(self, query: str = "", attendee_email: str | None = None, start_date: str | None = None,
                      end_date: str | None = None, page_index: int = 0, page_limit: int = 5) -> list[dict]:
        """Search events by words in the title, description or location, and/or by attendee, in start-time order.

        Args:
            attendee_email: Only events with this person as organizer or attendee.

        Returns: a list of events as in list_events.
        """
        lo, hi = self._range(start_date, end_date)
        who = check_email(attendee_email, "attendee_email") if attendee_email else None
        out = []
        for e in self._db["events"]:
            if (lo and e["end_time"] < lo) or (hi and e["start_time"] > hi):
                continue
            if who and who != e["organizer_email"] and all(a["email"] != who for a in e["attendees"]):
                continue
            if matches(query, e["title"], e["description"], e["location"]):
                out.append(e)
        return [self._view(e) for e in paginate(self._sorted(out), page_index, page_limit)]

    def show_event(self, event_id: int) -> dict:
        """Show one event.

        Args:
            event_id: Id of the event.

        Returns: the event as in list_events.
        """
        return self._view(self._event(event_id))

    def _times(self, start_time: str, end_time: str) -> tuple[str, str]:
        s, e = parse_time(start_time, "start_time"), parse_time(end_time, "end_time")
        if e <= s:
            raise ApiError(f"end_time ({e}) must be after start_time ({s}); give both start_time and end_time "
                           "when moving an event.")
        return s, e

    def create_event(self, title: str, start_time: str, end_time: str, description: str = "", location: str = "",
                     attendee_emails: list[str] | None = None) -> dict:
        """Create an event organized by the user; invited attendees start with response "pending".

        Args:
            title: Title of the event.
            start_time: Start, 'YYYY-MM-DDTHH:MM:SS'.
            end_time: End, after the start.
            description: Details.
            location: Where it takes place.
            attendee_emails: Emails of people to invite.

        Returns: {"event_id": ..., "message": ...}.
        """
        s, e = self._times(start_time, end_time)
        emails = list(dict.fromkeys(check_email(x, "attendee_emails") for x in attendee_emails or []))
        rec = {"id": self._new_id("events"), "title": nonempty(title, "title"), "description": description,
               "location": location, "start_time": s, "end_time": e, "organizer_email": self._user_email,
               "attendees": [self._attendee(x, "pending") for x in emails if x != self._user_email],
               "created_at": self._now}
        self._db["events"].append(rec)
        return {"event_id": rec["id"], "message": f"Created event {rec['title']!r}."}

    def update_event(self, event_id: int, title: str | None = None, start_time: str | None = None,
                     end_time: str | None = None, description: str | None = None,
                     location: str | None = None) -> dict:
        """Change an event the user organizes; fields left as None keep their value.

        Args:
            event_id: Id of the event.
            start_time: New start, 'YYYY-MM-DDTHH:MM:SS'.
            end_time: New end.

        Returns: the updated event.
        """
        e = self._own_event(event_id, "change")
        s, en = self._times(start_time or e["start_time"], end_time or e["end_time"])
        e["start_time"], e["end_time"] = s, en
        if title is not None:
            e["title"] = nonempty(title, "title")
        if description is not None:
            e["description"] = description
        if location is not None:
            e["location"] = location
        return self._view(e)

    def delete_event(self, event_id: int) -> dict:
        """Delete an event the user organizes (to skip someone else's event, decline it instead).

        Args:
            event_id: Id of the event.

        Returns: {"message": ...}.
        """
        e = self._own_event(event_id, "delete")
        self._remove("events", event_id)
        return {"message": f"Deleted event {e['title']!r}."}

    def add_attendees(self, event_id: int, attendee_emails: list[str]) -> dict:
        """Invite more people to an event the user organizes.

        Args:
            event_id: Id of the event.
            attendee_emails: Emails to invite (people already invited are skipped).

        Returns: the updated event.
        """
        e = self._own_event(event_id, "change")
        have = {a["email"] for a in e["attendees"]}
        for x in attendee_emails:
            x = check_email(x, "attendee_emails")
            if x not in have and x != self._user_email:
                e["attendees"].append(self._attendee(x, "pending"))
                have.add(x)
        return self._view(e)

    def remove_attendee(self, event_id: int, attendee_email: str) -> dict:
        """Un-invite someone from an event the user organizes.

        Args:
            event_id: Id of the event.
            attendee_email: Email of the attendee to remove.

        Returns: the updated event.
        """
        e = self._own_event(event_id, "change")
        x = check_email(attendee_email, "attendee_email")
        if all(a["email"] != x for a in e["attendees"]):
            raise ApiError(f"{x} is not an attendee of event {event_id}; attendees: "
                           f"{[a['email'] for a in e['attendees']]}.")
        e["attendees"] = [a for a in e["attendees"] if a["email"] != x]
        return self._view(e)

    def respond_to_invitation(self, event_id: int, response: Response) -> dict:
        """Accept, decline or tentatively accept an event someone else organizes.

        Args:
            event_id: Id of the event.
            response: "accepted", "declined" or "tentative".

        Returns: the updated event.
        """
        e = self._event(event_id)
        if e["organizer_email"] == self._user_email:
            raise ApiError(f"You organize event {event_id}; there is no invitation to answer.")
        for a in e["attendees"]:
            if a["email"] == self._user_email:
                a["response"] = response
                break
        else:
            e["attendees"].append(self._attendee(self._user_email, response))
        return self._view(e)

    def show_availability(self, date: str, day_start: str = "09:00", day_end: str = "18:00") -> dict:
        """Show the user's busy times and free slots on one day between day_start and day_end. Declined events do not
        count as busy.

        Args:
            date: The day, 'YYYY-MM-DD'.
            day_start: Start of the day to consider, 'HH:MM'.
            day_end: End of the day to consider, 'HH:MM'.

        Returns: {"date", "busy": [{event_id, title, start_time, end_time}], "free_slots": [{start_time, end_time}]}.
        """
        d = parse_date(date, "date")
        lo = parse_time(f"{d}T{day_start}", "day_start")
        hi = parse_time(f"{d}T{day_end}", "day_end")
        if hi <= lo:
            raise ApiError("day_end must be after day_start.")
        busy = [e for e in self._sorted(self._db["events"]) if e["end_time"] > lo and e["start_time"] < hi
                and self._my_response(e) != "declined"]
        free, cursor = [], lo
        for e in busy:
            if e["start_time"] > cursor:
                free.append({"start_time": cursor, "end_time": e["start_time"]})
            cursor = max(cursor, e["end_time"])
        if cursor < hi:
            free.append({"start_time": cursor, "end_time": hi})
        return {"date": d, "busy": [{"event_id": e["id"], "title": e["title"], "start_time": e["start_time"],
                                     "end_time": e["end_time"]} for e in busy], "free_slots": free}
