"""Notes app: free-text notes with titles, tags and pins."""

import typing

from distillgym.envs.apps.base import ApiError, App, matches, nonempty, paginate

_HINT = "Use apis.notes.list_notes() or apis.notes.search_notes(query=...) to find note ids."


class Notes(App):
    """Notes."""

    name = "notes"
    description = "Notes: write, search, edit and tag free-text notes (recipes, lists, meeting notes, ideas)."
    schema: typing.ClassVar[dict] = {"notes": []}

    def _note(self, note_id: int) -> dict:
        return self._find("notes", note_id, "note", _HINT)

    @staticmethod
    def _summary(n: dict) -> dict:
        return {k: n[k] for k in ("id", "title", "tags", "pinned", "created_at", "updated_at")} | {
            "snippet": n["content"][:80].replace("\n", " ")}

    def _order(self, notes: list[dict]) -> list[dict]:
        # Pinned first, then most recently updated first.
        by_time = sorted(notes, key=lambda n: (n["updated_at"], n["id"]), reverse=True)
        return [n for n in by_time if n["pinned"]] + [n for n in by_time if not n["pinned"]]

    def list_notes(self, tag: str | None = None, pinned_only: bool = False, page_index: int = 0,
                   page_limit: int = 5) -> list[dict]:
        """List notes (pinned first, then most recently updated), without their full content.

        Args:
            tag: Only notes with this tag.
            pinned_only: Only pinned notes.

        Returns: a list of {id, title, tags, pinned, created_at, updated_at, snippet}.
        """
        out = [n for n in self._db["notes"] if (tag is None or tag in n["tags"]) and (not pinned_only or n["pinned"])]
        return [self._summary(n) for n in paginate(self._order(out), page_index, page_limit)]

    def search_notes(self, query: str = "", tag: str | None = None, page_index: int = 0,
                     page_limit: int = 5) -> list[dict]:
        """Search notes by words in their title, content or tags.

        Args:
            tag: Only notes with this tag.

        Returns: a list of note summaries as in list_notes.
        """
        out = [n for n in self._db["notes"] if (tag is None or tag in n["tags"])
               and matches(query, n["title"], n["content"], *n["tags"])]
        return [self._summary(n) for n in paginate(self._order(out), page_index, page_limit)]

    def show_note(self, note_id: int) -> dict:
        """Show one note with its full content.

        Args:
            note_id: Id of the note.

        Returns: {id, title, content, tags, pinned, created_at, updated_at}.
        """
        return self._note(note_id)

    def create_note(self, title: str, content: str = "", tags: list[str] | None = None, pinned: bool = False) -> dict:
        """Create a note.

        Args:
            title: Title of the note.
            content: Text of the note.
            tags: Tags, e.g. ["recipes"].
            pinned: Pin it to the top of the list.

        Returns: {"note_id": ..., "message": ...}.
        """
        rec = {"id": self._new_id("notes"), "title": nonempty(title, "title"), "content": content,
               "tags": sorted({t.strip().lower() for t in tags or [] if t.strip()}), "pinned": pinned,
               "created_at": self._now, "updated_at": self._now}
        self._db["notes"].append(rec)
        return {"note_id": rec["id"], "message": f"Created note {rec['title']!r}."}

    def update_note(self, note_id: int, title: str | None = None, content: str | None = None) -> dict:
        """Replace the title and/or the content of a note.

        Args:
            note_id: Id of the note.
            title: New title (None keeps it).
            content: New content, replacing the old one (None keeps it; see append_to_note to add text).

        Returns: the updated note.
        """
        n = self._note(note_id)
        if title is not None:
            n["title"] = nonempty(title, "title")
        if content is not None:
            n["content"] = content
        n["updated_at"] = self._now
        return n

    def append_to_note(self, note_id: int, text: str) -> dict:
        """Add text at the end of a note, on a new line.

        Args:
            note_id: Id of the note.
            text: Text to add.

        Returns: the updated note.
        """
        n = self._note(note_id)
        n["content"] = f"{n['content']}\n{text}" if n["content"] else text
        n["updated_at"] = self._now
        return n

    def delete_note(self, note_id: int) -> dict:
        """Delete a note.

        Args:
            note_id: Id of the note.

        Returns: {"message": ...}.
        """
        n = self._note(note_id)
        self._remove("notes", note_id)
        return {"message": f"Deleted note {n['title']!r}."}

    def add_tag(self, note_id: int, tag: str) -> dict:
        """Add a tag to a note (tags are lower-case).

        Args:
            note_id: Id of the note.
            tag: The tag.

        Returns: the updated note.
        """
        n = self._note(note_id)
        t = nonempty(tag, "tag").lower()
        if t not in n["tags"]:
            n["tags"] = sorted([*n["tags"], t])
        return n

    def remove_tag(self, note_id: int, tag: str) -> dict:
        """Remove a tag from a note.

        Args:
            note_id: Id of the note.
            tag: The tag.

        Returns: the updated note.
        """
        n = self._note(note_id)
        t = tag.strip().lower()
        if t not in n["tags"]:
            raise ApiError(f"Note {note_id} has no tag {tag!r}; its tags are {n['tags']}.")
        n["tags"] = [x for x in n["tags"] if x != t]
        return n

    def list_tags(self) -> list[dict]:
        """List every tag used on notes, with how many notes have it.

        Returns: a list of {"tag", "note_count"} sorted by tag.
        """
        counts: dict[str, int] = {}
        for n in self._db["notes"]:
            for t in n["tags"]:
                counts[t] = counts.get(t, 0) + 1
        return [{"tag": t, "note_count": c} for t, c in sorted(counts.items())]

    def pin_note(self, note_id: int, pinned: bool = True) -> dict:
        """Pin a note to the top of the list (or unpin it with pinned=False).

        Args:
            note_id: Id of the note.
            pinned: True to pin, False to unpin.

        Returns: the updated note.
        """
        n = self._note(note_id)
        n["pinned"] = pinned
        return n
