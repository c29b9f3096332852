"""Contacts app: the user's address book, with relationships (friend, coworker, family...) and birthdays."""

import typing
from datetime import date, datetime

from distillgym.envs.apps.base import ApiError, App, check_email, matches, nonempty, paginate, parse_date

RELATIONSHIPS = ["friend", "coworker", "manager", "family", "sibling", "parent", "partner", "roommate", "neighbor",
                 "classmate"]
Relationship = typing.Literal["friend", "coworker", "manager", "family", "sibling", "parent", "partner", "roommate",
                              "neighbor", "classmate"]
_HINT = "Use apis.contacts.search_contacts(query=...) to find contact ids."


def find_contact_by_email(state: dict, email: str) -> dict | None:
    """The contact record with this email, if any (used by other apps to show names)."""
    for c in state.get("contacts", {}).get("contacts", []):
        if c.get("email") == email:
            return c
    return None


def next_birthday(birthday: str, today: date) -> date:
    """Next occurrence (today included) of a 'YYYY-MM-DD' birthday; Feb 29 falls on Feb 28 in common years."""
    b = date.fromisoformat(birthday)
    for year in (today.year, today.year + 1):
        try:
            d = date(year, b.month, b.day)
        except ValueError:
            d = date(year, 2, 28)
        if d >= today:
            return d
    raise AssertionError("unreachable")


class Contacts(App):
    """Address book."""

    name = "contacts"
    description = "Address book: people the user knows, with emails, phone numbers, relationships and birthdays."
    schema: typing.ClassVar[dict] = {"contacts": []}

    def _contact(self, contact_id: int) -> dict:
        return self._find("contacts", contact_id, "contact", _HINT)

    def _check_unique_email(self, email: str, except_id: int | None = None) -> None:
        for c in self._db["contacts"]:
            if c["email"] == email and c["id"] != except_id:
                raise ApiError(f"Contact {c['id']} ({c['name']}) already has the email {email!r}. Update that contact "
                               "instead with apis.contacts.update_contact(contact_id=...).")

    def search_contacts(self, query: str = "", relationship: Relationship | None = None, page_index: int = 0,
                        page_limit: int = 5) -> list[dict]:
        """Search the address book by name, email, phone, company or city, optionally only contacts with a given
        relationship to the user. Results are sorted by name and paginated.

        Args:
            query: Words to match against name, email, phone number, company, job title and address; empty lists all.
            relationship: Only return contacts with this relationship to the user (e.g. "coworker").

        Returns: a list of contact dicts (id, first_name, last_name, name, email, phone, relationships, birthday,
            address, company, job_title, notes).
        """
        out = [c for c in self._db["contacts"]
               if (relationship is None or relationship in c["relationships"])
               and matches(query, c["name"], c["email"], c["phone"], c.get("company"), c.get("job_title"),
                           c.get("address"))]
        out.sort(key=lambda c: (c["name"].lower(), c["id"]))
        return paginate(out, page_index, page_limit)

    def show_contact(self, contact_id: int) -> dict:
        """Show one contact in full.

        Args:
            contact_id: Id of the contact.

        Returns: the contact dict.
        """
        return self._contact(contact_id)

    def find_contact_by_email(self, email: str) -> dict:
        """Find the contact that has exactly this email address.

        Args:
            email: The email address to look up.

        Returns: the contact dict; raises an error if no contact has that email.
        """
        email = check_email(email)
        c = find_contact_by_email(self._state, email)
        if c is None:
            raise ApiError(f"No contact has the email {email!r}. {_HINT}")
        return c

    def add_contact(self, first_name: str, last_name: str, email: str, phone: str | None = None,
                    relationships: list[Relationship] | None = None, birthday: str | None = None,
                    address: str | None = None, company: str | None = None, job_title: str | None = None,
                    notes: str = "") -> dict:
        """Add a new person to the address book. The email must not belong to another contact.

        Args:
            first_name: First name.
            last_name: Last name.
            email: Email address (unique among contacts).
            phone: Phone number, e.g. "+1-555-0142".
            relationships: Relationships of this person to the user, e.g. ["friend", "coworker"].
            birthday: Birthday as 'YYYY-MM-DD'.
            address: Postal address.
            company: Employer.
            job_title: Job title.
            notes: Free-text notes about the person.

        Returns: {"contact_id": new id, "message": ...}.
        """
        first, last = nonempty(first_name, "first_name"), nonempty(last_name, "last_name")
        email = check_email(email)
        self._check_unique_email(email)
        rec = {"id": self._new_id("contacts"), "first_name": first, "last_name": last, "name": f"{first} {last}",
               "email": email, "phone": phone, "relationships": sorted(set(relationships or [])),
               "birthday": parse_date(birthday, "birthday") if birthday else None, "address": address,
               "company": company, "job_title": job_title, "notes": notes, "created_at": self._now}
        self._db["contacts"].append(rec)
        return {"contact_id": rec["id"], "message": f"Added contact {rec['name']}."}

    def update_contact(self, contact_id: int, first_name: str | None = None, last_name: str | None = None,
                       email: str | None = None, phone: str | None = None, birthday: str | None = None,
                       address: str | None = None, company: str | None = None, job_title: str | None = None,
                       notes: str | None = None) -> dict:
        """Change some fields of a contact; fields left as None keep their value. Use add_relationship and
        remove_relationship to change relationships.

        Args:
            contact_id: Id of the contact to change.
            birthday: New birthday as 'YYYY-MM-DD'.

        Returns: the updated contact dict.
        """
        c = self._contact(contact_id)
        if email is not None:
            email = check_email(email)
            self._check_unique_email(email, contact_id)
            c["email"] = email
        if first_name is not None:
            c["first_name"] = nonempty(first_name, "first_name")
        if last_name is not None:
            c["last_name"] = nonempty(last_name, "last_name")
        c["name"] = f"{c['first_name']} {c['last_name']}"
        if birthday is not None:
            c["birthday"] = parse_date(birthday, "birthday")
        for field, value in (("phone", phone), ("address", address), ("company", company),
                             ("job_title", job_title), ("notes", notes)):
            if value is not None:
                c[field] = value
        return c

    def delete_contact(self, contact_id: int) -> dict:
        """Delete a contact from the address book.

        Args:
            contact_id: Id of the contact to delete.

        Returns: {"message": ...}.
        """
        c = self._contact(contact_id)
        self._remove("contacts", contact_id)
        return {"message": f"Deleted contact {c['name']}."}

    def list_relationship_types(self) -> list[str]:
        """List the relationship types a contact can have to the user.

        Returns: a list of strings such as "friend", "coworker", "family".
        """
        return list(RELATIONSHIPS)

    def add_relationship(self, contact_id: int, relationship: Relationship) -> dict:
        """Add a relationship (e.g. "friend") between the user and a contact.

        Args:
            contact_id: Id of the contact.
            relationship: One of list_relationship_types().

        Returns: the updated contact dict.
        """
        c = self._contact(contact_id)
        if relationship not in c["relationships"]:
            c["relationships"] = sorted([*c["relationships"], relationship])
        return c

    def remove_relationship(self, contact_id: int, relationship: Relationship) -> dict:
        """Remove a relationship from a contact.

        Args:
            contact_id: Id of the contact.
            relationship: The relationship to remove.

        Returns: the updated contact dict.
        """
        c = self._contact(contact_id)
        if relationship not in c["relationships"]:
            raise ApiError(f"Contact {contact_id} ({c['name']}) does not have the relationship {relationship!r}; "
                           f"it has {c['relationships']}.")
        c["relationships"] = [r for r in c["relationships"] if r != relationship]
        return c

    def list_upcoming_birthdays(self, days: int = 30, page_index: int = 0, page_limit: int = 5) -> list[dict]:
        """List contacts whose birthday falls within the next `days` days (today included), soonest first.

        Args:
            days: How many days ahead to look (0 to 366); 0 means only today.

        Returns: a list of {contact_id, name, email, birthday, next_birthday, turning_age, days_until}.
        """
        if not 0 <= days <= 366:
            raise ApiError(f"days must be between 0 and 366, got {days}.")
        today = datetime.fromisoformat(self._now).date()
        out = []
        for c in self._db["contacts"]:
            if not c.get("birthday"):
                continue
            nb = next_birthday(c["birthday"], today)
            delta = (nb - today).days
            if delta <= days:
                out.append({"contact_id": c["id"], "name": c["name"], "email": c["email"], "birthday": c["birthday"],
                            "next_birthday": nb.isoformat(), "turning_age": nb.year - int(c["birthday"][:4]),
                            "days_until": delta})
        out.sort(key=lambda x: (x["days_until"], x["contact_id"]))
        return paginate(out, page_index, page_limit)
