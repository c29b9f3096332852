"""Mail app: the user's mailbox (inbox, sent, archive, trash), threads, labels and attachments."""

import typing

from distillgym.envs.apps.apps.contacts import find_contact_by_email
from distillgym.envs.apps.apps.files import write_file
from distillgym.envs.apps.base import ApiError, App, check_email, matches, nonempty, paginate, parse_time

Folder = typing.Literal["inbox", "sent", "archive", "trash"]
_HINT = "Use apis.mail.list_emails(...) or apis.mail.search_emails(query=...) to find email ids."


def _summary(e: dict) -> dict:
    return {"id": e["id"], "thread_id": e["thread_id"], "folder": e["folder"], "sender": e["sender"],
            "sender_name": e["sender_name"], "recipients": e["recipients"], "subject": e["subject"],
            "sent_at": e["sent_at"], "read": e["read"], "starred": e["starred"], "labels": e["labels"],
            "attachment_names": [a["name"] for a in e["attachments"]],
            "snippet": e["body"][:80].replace("\n", " ")}


class Mail(App):
    """Mailbox."""

    name = "mail"
    description = "Email: read, search, send, reply to and forward emails; folders, labels, stars and attachments."
    schema: typing.ClassVar[dict] = {"emails": [], "labels": []}

    def _email(self, email_id: int) -> dict:
        return self._find("emails", email_id, "email", _HINT)

    def _name_of(self, email: str) -> str:
        if email == self._user_email:
            return self._state.get("_supervisor", {}).get("profile", {}).get("name", "Me")
        c = find_contact_by_email(self._state, email)
        return c["name"] if c else email.split("@")[0]

    def _new_thread_id(self) -> int:
        return self._new_id("threads", (e["thread_id"] for e in self._db["emails"]))

    def _deliver(self, recipients: list[str], cc: list[str], subject: str, body: str, thread_id: int,
                 attachments: list[dict]) -> dict:
        if not recipients:
            raise ApiError("An email needs at least one recipient in 'recipients'.")
        rec = {"id": self._new_id("emails"), "thread_id": thread_id, "folder": "sent", "sender": self._user_email,
               "sender_name": self._name_of(self._user_email), "recipients": recipients, "cc": cc,
               "subject": subject, "body": body, "sent_at": self._now, "read": True, "starred": False, "labels": [],
               "attachments": attachments}
        self._db["emails"].append(rec)
        return rec

    @staticmethod
    def _ordered(emails: list[dict]) -> list[dict]:
        return sorted(emails, key=lambda e: (e["sent_at"], e["id"]), reverse=True)

    def list_emails(self, folder: Folder = "inbox", unread_only: bool = False, starred_only: bool = False,
                    label: str | None = None, page_index: int = 0, page_limit: int = 5) -> list[dict]:
        """List the emails of one folder, newest first, without their bodies (use show_email for the full text).

        Args:
            folder: "inbox" (received), "sent", "archive" or "trash".
            unread_only: Only unread emails.
            starred_only: Only starred emails.
            label: Only emails with this label.

        Returns: a list of email summaries (id, thread_id, folder, sender, sender_name, recipients, subject, sent_at,
            read, starred, labels, attachment_names, snippet).
        """
        out = [e for e in self._db["emails"] if e["folder"] == folder
               and (not unread_only or not e["read"]) and (not starred_only or e["starred"])
               and (label is None or label in e["labels"])]
        return [_summary(e) for e in paginate(self._ordered(out), page_index, page_limit)]

    def search_emails(self, query: str = "", sender: str | None = None, recipient: str | None = None,
                      start_date: str | None = None, end_date: str | None = None, folder: Folder | None = None,
                      page_index: int = 0, page_limit: int = 5) -> list[dict]:
        """Search emails in all folders (or one) by words in the subject, body, sender or recipients, sender or
        recipient address, and date range. Newest first.

        Args:
            query: Words to match in subject, body, sender and recipients; empty matches all.
            sender: Only emails sent by this email address.
            recipient: Only emails with this address among recipients or cc.
            folder: Only this folder; None searches every folder except trash.

        Returns: a list of email summaries as in list_emails.
        """
        lo = parse_time(start_date, "start_date") if start_date else None
        hi = parse_time(end_date, "end_date", end_of_day=True) if end_date else None
        sender = check_email(sender, "sender") if sender else None
        recipient = check_email(recipient, "recipient") if recipient else None
        out = []
        for e in self._db["emails"]:
            if (folder is None and e["folder"] == "trash") or (folder is not None and e["folder"] != folder):
                continue
            if sender and e["sender"] != sender:
                continue
            if recipient and recipient not in e["recipients"] and recipient not in e["cc"]:
                continue
            if (lo and e["sent_at"] < lo) or (hi and e["sent_at"] > hi):
                continue
            if matches(query, e["subject"], e["body"], e["sender"], e["sender_name"], *e["recipients"]):
                out.append(e)
        return [_summary(e) for e in paginate(self._ordered(out), page_index, page_limit)]

    def show_email(self, email_id: int) -> dict:
        """Show one email in full (body, cc, attachment names). Showing does not mark it as read; use mark_as_read.

        Args:
            email_id: Id of the email.

        Returns: the email dict (id, thread_id, folder, sender, sender_name, recipients, cc, subject, body, sent_at,
            read, starred, labels, attachment_names).
        """
        e = self._email(email_id)
        out = {k: v for k, v in e.items() if k not in ("attachments", "folder_before_trash")}
        out["attachment_names"] = [a["name"] for a in e["attachments"]]
        return out

    def show_thread(self, thread_id: int) -> list[dict]:
        """Show every email of a conversation thread, oldest first, with bodies.

        Args:
            thread_id: Id of the thread (the thread_id field of an email).

        Returns: a list of email dicts as in show_email.
        """
        es = sorted((e for e in self._db["emails"] if e["thread_id"] == thread_id),
                    key=lambda e: (e["sent_at"], e["id"]))
        if not es:
            raise ApiError(f"No thread with id {thread_id}. {_HINT}")
        return [self.show_email(e["id"]) for e in es]

    def send_email(self, recipients: list[str], subject: str, body: str, cc: list[str] | None = None,
                   attachment_file_paths: list[str] | None = None) -> dict:
        """Send a new email (it is stored in the "sent" folder), optionally attaching files from the files app.

        Args:
            recipients: Email addresses to send to (at least one).
            subject: Subject line.
            body: Text of the email.
            cc: Email addresses to copy.
            attachment_file_paths: Paths of files in the files app to attach, e.g. ["/documents/report.txt"].

        Returns: {"email_id": ..., "thread_id": ..., "message": ...}.
        """
        recipients = [check_email(r, "recipients") for r in recipients]
        cc = [check_email(r, "cc") for r in cc or []]
        attachments = []
        for path in attachment_file_paths or []:
            f = next((f for f in self._state.get("files", {}).get("files", []) if f["path"] == path), None)
            if f is None:
                raise ApiError(f"No file at {path!r} to attach. Use apis.files.list_directory(path=...) or "
                               "apis.files.search_files(query=...) to find file paths.")
            attachments.append({"name": path.rsplit("/", 1)[-1], "content": f["content"]})
        rec = self._deliver(recipients, cc, nonempty(subject, "subject"), body, self._new_thread_id(), attachments)
        return {"email_id": rec["id"], "thread_id": rec["thread_id"], "message": "Email sent."}

    def reply_to_email(self, email_id: int, body: str, reply_all: bool = False) -> dict:
        """Reply to an email in the same thread. The reply goes to the sender (or, for an email the user sent, to its
        recipients); with reply_all, also to the other recipients and cc.

        Args:
            email_id: Id of the email to reply to.
            body: Text of the reply.
            reply_all: Also reply to every other recipient.

        Returns: {"email_id": ..., "thread_id": ..., "message": ...}.
        """
        e = self._email(email_id)
        me = self._user_email
        to = list(e["recipients"]) if e["sender"] == me else [e["sender"]]
        cc: list[str] = []
        if reply_all:
            others = [x for x in e["recipients"] + e["cc"] if x != me and x not in to]
            cc = list(dict.fromkeys(others))
        subject = e["subject"] if e["subject"].lower().startswith("re:") else f"Re: {e['subject']}"
        rec = self._deliver(to, cc, subject, body, e["thread_id"], [])
        return {"email_id": rec["id"], "thread_id": rec["thread_id"], "message": "Reply sent."}

    def forward_email(self, email_id: int, recipients: list[str], body: str = "") -> dict:
        """Forward an email (with its attachments) to other people, with an optional note on top.

        Args:
            email_id: Id of the email to forward.
            recipients: Email addresses to forward to.
            body: Optional text added above the forwarded message.

        Returns: {"email_id": ..., "thread_id": ..., "message": ...}.
        """
        e = self._email(email_id)
        recipients = [check_email(r, "recipients") for r in recipients]
        text = (f"{body}\n\n---------- Forwarded message ----------\nFrom: {e['sender_name']} <{e['sender']}>\n"
                f"Date: {e['sent_at']}\nSubject: {e['subject']}\n\n{e['body']}")
        subject = e["subject"] if e["subject"].lower().startswith("fwd:") else f"Fwd: {e['subject']}"
        rec = self._deliver(recipients, [], subject, text.lstrip("\n"), self._new_thread_id(),
                            [dict(a) for a in e["attachments"]])
        return {"email_id": rec["id"], "thread_id": rec["thread_id"], "message": "Email forwarded."}

    def mark_as_read(self, email_id: int) -> dict:
        """Mark an email as read.

        Args:
            email_id: Id of the email.

        Returns: {"message": ...}.
        """
        self._email(email_id)["read"] = True
        return {"message": f"Email {email_id} marked as read."}

    def mark_as_unread(self, email_id: int) -> dict:
        """Mark an email as unread.

        Args:
            email_id: Id of the email.

        Returns: {"message": ...}.
        """
        self._email(email_id)["read"] = False
        return {"message": f"Email {email_id} marked as unread."}

    def star_email(self, email_id: int, starred: bool = True) -> dict:
        """Star (or, with starred=False, unstar) an email.

        Args:
            email_id: Id of the email.
            starred: True to star, False to remove the star.

        Returns: {"message": ...}.
        """
        self._email(email_id)["starred"] = starred
        return {"message": f"Email {email_id} {'starred' if starred else 'unstarred'}."}

    def archive_email(self, email_id: int) -> dict:
        """Move an email to the archive folder.

        Args:
            email_id: Id of the email.

        Returns: {"message": ...}.
        """
        e = self._email(email_id)
        if e["folder"] == "trash":
            raise ApiError(f"Email {email_id} is in the trash; restore it first with apis.mail.restore_email.")
        e["folder"] = "archive"
        return {"message": f"Email {email_id} archived."}

    def delete_email(self, email_id: int) -> dict:
        """Move an email to the trash (restore_email brings it back; empty_trash deletes it for good).

        Args:
            email_id: Id of the email.

        Returns: {"message": ...}.
        """
        e = self._email(email_id)
        if e["folder"] != "trash":
            e["folder_before_trash"] = e["folder"]
            e["folder"] = "trash"
        return {"message": f"Email {email_id} moved to trash."}

    def restore_email(self, email_id: int) -> dict:
        """Move an email out of the trash, back to the folder it was in.

        Args:
            email_id: Id of an email in the trash.

        Returns: {"message": ...}.
        """
        e = self._email(email_id)
        if e["folder"] != "trash":
            raise ApiError(f"Email {email_id} is not in the trash (it is in {e['folder']!r}).")
        e["folder"] = e.pop("folder_before_trash", "inbox")
        return {"message": f"Email {email_id} restored to {e['folder']}."}

    def empty_trash(self) -> dict:
        """Permanently delete every email in the trash.

        Returns: {"deleted_count": n}.
        """
        before = len(self._db["emails"])
        self._db["emails"] = [e for e in self._db["emails"] if e["folder"] != "trash"]
        return {"deleted_count": before - len(self._db["emails"])}

    def _label_names(self) -> list[str]:
        return [x["name"] for x in self._db["labels"]]

    def _label(self, label: str) -> str:
        if label not in self._label_names():
            raise ApiError(f"No label named {label!r}. Labels: {self._label_names()}. Create one with "
                           "apis.mail.create_label(label=...).")
        return label

    def list_labels(self) -> list[dict]:
        """List the user's email labels with how many emails carry each.

        Returns: a list of {"name", "email_count"}.
        """
        return [{"name": x["name"], "email_count": sum(x["name"] in e["labels"] for e in self._db["emails"])}
                for x in self._db["labels"]]

    def create_label(self, label: str) -> dict:
        """Create a new email label.

        Args:
            label: Name of the label (unique).

        Returns: {"message": ...}.
        """
        label = nonempty(label, "label")
        if label in self._label_names():
            raise ApiError(f"Label {label!r} already exists.")
        self._db["labels"].append({"id": self._new_id("labels"), "name": label, "created_at": self._now})
        return {"message": f"Label {label!r} created."}

    def delete_label(self, label: str) -> dict:
        """Delete a label and remove it from every email.

        Args:
            label: Name of the label.

        Returns: {"message": ...}.
        """
        self._label(label)
        self._db["labels"] = [x for x in self._db["labels"] if x["name"] != label]
        for e in self._db["emails"]:
            if label in e["labels"]:
                e["labels"] = [x for x in e["labels"] if x != label]
        return {"message": f"Label {label!r} deleted."}

    def add_label(self, email_id: int, label: str) -> dict:
        """Put an existing label on an email.

        Args:
            email_id: Id of the email.
            label: Name of an existing label (see list_labels; create_label makes new ones).

        Returns: {"message": ...}.
        """
        e = self._email(email_id)
        self._label(label)
        if label not in e["labels"]:
            e["labels"] = [*e["labels"], label]
        return {"message": f"Label {label!r} added to email {email_id}."}

    def remove_label(self, email_id: int, label: str) -> dict:
        """Take a label off an email.

        Args:
            email_id: Id of the email.
            label: Name of the label.

        Returns: {"message": ...}.
        """
        e = self._email(email_id)
        if label not in e["labels"]:
            raise ApiError(f"Email {email_id} does not have the label {label!r}; it has {e['labels']}.")
        e["labels"] = [x for x in e["labels"] if x != label]
        return {"message": f"Label {label!r} removed from email {email_id}."}

    def show_attachment(self, email_id: int, attachment_name: str) -> dict:
        """Show the text content of an email's attachment.

        Args:
            email_id: Id of the email.
            attachment_name: Name of the attachment (see attachment_names in show_email).

        Returns: {"name": ..., "content": ...}.
        """
        e = self._email(email_id)
        for a in e["attachments"]:
            if a["name"] == attachment_name:
                return a
        raise ApiError(f"Email {email_id} has no attachment named {attachment_name!r}; its attachments are "
                       f"{[a['name'] for a in e['attachments']]}.")

    def download_attachment(self, email_id: int, attachment_name: str, file_path: str,
                            overwrite: bool = False) -> dict:
        """Save an email attachment as a file in the files app.

        Args:
            email_id: Id of the email.
            attachment_name: Name of the attachment.
            file_path: Absolute path of the file to create, e.g. "/downloads/invoice.txt".
            overwrite: Replace the file if it already exists.

        Returns: {"file_path": ..., "message": ...}.
        """
        a = self.show_attachment(email_id, attachment_name)
        path = write_file(self._state, file_path, a["content"], overwrite=overwrite)
        return {"file_path": path, "message": f"Saved {attachment_name!r} to {path}."}
