"""Files app: a virtual file tree of text documents kept in the state (never the real file system)."""

import typing

from distillgym.envs.apps.base import ApiError, App, matches, paginate

_HINT = "Use apis.files.list_directory(directory_path=...) or apis.files.search_files(query=...) to find paths."


def norm_path(path: str, pname: str = "file_path") -> str:
    """Normalize an absolute path: '/a//b/' -> '/a/b'; rejects relative paths and '..'."""
    p = path.strip()
    if not p.startswith("/"):
        raise ApiError(f"Argument {pname!r} must be an absolute path starting with '/', got {path!r}.")
    parts = [x for x in p.split("/") if x and x != "."]
    if any(x == ".." for x in parts):
        raise ApiError(f"Argument {pname!r} must not contain '..', got {path!r}.")
    return "/" + "/".join(parts)


def write_file(state: dict, path: str, content: str, *, overwrite: bool = False) -> str:
    """Create or replace a file (creating missing parent directories); used by other apps too."""
    return Files(state)._write(path, content, overwrite=overwrite)


def _parent(path: str) -> str:
    return path.rsplit("/", 1)[0] or "/"


class Files(App):
    """Virtual file system."""

    name = "files"
    description = "Files: a personal file tree of text documents (receipts, recipes, trip plans, reports...)."
    schema: typing.ClassVar[dict] = {"files": [], "directories": []}

    def _file(self, path: str, pname: str = "file_path") -> dict:
        p = norm_path(path, pname)
        for f in self._db["files"]:
            if f["path"] == p:
                return f
        if self._is_dir(p):
            raise ApiError(f"{p!r} is a directory, not a file. {_HINT}")
        raise ApiError(f"No file at {p!r}. {_HINT}")

    def _is_dir(self, p: str) -> bool:
        return p == "/" or any(d["path"] == p for d in self._db["directories"])

    def _mkdirs(self, p: str) -> None:
        if p == "/" or self._is_dir(p):
            return
        if any(f["path"] == p for f in self._db["files"]):
            raise ApiError(f"{p!r} is a file, so it cannot be used as a directory.")
        self._mkdirs(_parent(p))
        self._db["directories"].append({"id": self._new_id("directories"), "path": p, "created_at": self._now})

    def _write(self, path: str, content: str, *, overwrite: bool) -> str:
        p = norm_path(path)
        if p == "/" or self._is_dir(p):
            raise ApiError(f"{p!r} is a directory; give a file path inside it, e.g. {p.rstrip('/')}/name.txt.")
        existing = next((f for f in self._db["files"] if f["path"] == p), None)
        if existing is not None:
            if not overwrite:
                raise ApiError(f"A file already exists at {p!r}. Pass overwrite=True to replace it, or use "
                               "apis.files.update_file.")
            existing["content"] = content
            existing["updated_at"] = self._now
            return p
        self._mkdirs(_parent(p))
        self._db["files"].append({"id": self._new_id("files"), "path": p, "content": content,
                                  "created_at": self._now, "updated_at": self._now})
        return p

    @staticmethod
    def _info(f: dict) -> dict:
        return {"path": f["path"], "name": f["path"].rsplit("/", 1)[-1], "type": "file", "size": len(f["content"]),
                "created_at": f["created_at"], "updated_at": f["updated_at"]}

    def list_directory(self, directory_path: str = "/", page_index: int = 0, page_limit: int = 5) -> list[dict]:
        """List the entries (sub-directories first, then files, each alphabetically) directly inside a directory.

        Args:
            directory_path: Absolute path of the directory, e.g. "/" or "/documents".

        Returns: a list of {"path", "name", "type": "directory"|"file"} dicts; files also have size (characters),
            created_at and updated_at.
        """
        d = norm_path(directory_path, "directory_path")
        if not self._is_dir(d):
            raise ApiError(f"No directory at {d!r}. {_HINT}")
        dirs = sorted(x["path"] for x in self._db["directories"] if _parent(x["path"]) == d and x["path"] != "/")
        files = sorted((f for f in self._db["files"] if _parent(f["path"]) == d), key=lambda f: f["path"])
        out = [{"path": p, "name": p.rsplit("/", 1)[-1], "type": "directory"} for p in dirs]
        out += [self._info(f) for f in files]
        return paginate(out, page_index, page_limit)

    def show_file(self, file_path: str) -> dict:
        """Show a file with its full text content.

        Args:
            file_path: Absolute path of the file.

        Returns: {"path", "name", "type", "size", "created_at", "updated_at", "content"}.
        """
        f = self._file(file_path)
        return {**self._info(f), "content": f["content"]}

    def create_file(self, file_path: str, content: str = "", overwrite: bool = False) -> dict:
        """Create a text file; missing parent directories are created.

        Args:
            file_path: Absolute path of the new file, e.g. "/documents/todo.txt".
            content: Text content.
            overwrite: Replace the file if it already exists (otherwise that is an error).

        Returns: {"file_path": ..., "message": ...}.
        """
        p = self._write(file_path, content, overwrite=overwrite)
        return {"file_path": p, "message": f"Wrote {len(content)} characters to {p}."}

    def update_file(self, file_path: str, content: str) -> dict:
        """Replace the content of an existing file.

        Args:
            file_path: Absolute path of the file.
            content: The new text content.

        Returns: {"file_path": ..., "message": ...}.
        """
        f = self._file(file_path)
        f["content"] = content
        f["updated_at"] = self._now
        return {"file_path": f["path"], "message": "File updated."}

    def append_to_file(self, file_path: str, content: str) -> dict:
        """Append text at the end of an existing file (no newline is added for you).

        Args:
            file_path: Absolute path of the file.
            content: Text to append.

        Returns: {"file_path": ..., "size": new size}.
        """
        f = self._file(file_path)
        f["content"] += content
        f["updated_at"] = self._now
        return {"file_path": f["path"], "size": len(f["content"])}

    def delete_file(self, file_path: str) -> dict:
        """Delete a file.

        Args:
            file_path: Absolute path of the file.

        Returns: {"message": ...}.
        """
        f = self._file(file_path)
        self._remove("files", f["id"])
        return {"message": f"Deleted {f['path']}."}

    def _destination(self, source: str, destination_path: str) -> str:
        dest = norm_path(destination_path, "destination_path")
        if self._is_dir(dest):
            dest = (dest.rstrip("/") + "/" + source.rsplit("/", 1)[-1])
        return dest

    def move_file(self, source_path: str, destination_path: str, overwrite: bool = False) -> dict:
        """Move or rename a file. If the destination is an existing directory, the file keeps its name inside it.

        Args:
            source_path: Absolute path of the file to move.
            destination_path: New absolute path, or an existing directory.
            overwrite: Replace a file already at the destination.

        Returns: {"file_path": new path, "message": ...}.
        """
        f = self._file(source_path, "source_path")
        dest = self._destination(f["path"], destination_path)
        if dest == f["path"]:
            return {"file_path": dest, "message": "Source and destination are the same."}
        self._write(dest, f["content"], overwrite=overwrite)
        self._remove("files", f["id"])
        return {"file_path": dest, "message": f"Moved {f['path']} to {dest}."}

    def copy_file(self, source_path: str, destination_path: str, overwrite: bool = False) -> dict:
        """Copy a file. If the destination is an existing directory, the copy keeps the name inside it.

        Args:
            source_path: Absolute path of the file to copy.
            destination_path: Absolute path of the copy, or an existing directory.
            overwrite: Replace a file already at the destination.

        Returns: {"file_path": path of the copy, "message": ...}.
        """
        f = self._file(source_path, "source_path")
        dest = self._destination(f["path"], destination_path)
        if dest == f["path"]:
            raise ApiError("Cannot copy a file onto itself; give another destination_path.")
        self._write(dest, f["content"], overwrite=overwrite)
        return {"file_path": dest, "message": f"Copied {f['path']} to {dest}."}

    def create_directory(self, directory_path: str) -> dict:
        """Create a directory (and any missing parents).

        Args:
            directory_path: Absolute path of the directory.

        Returns: {"directory_path": ..., "message": ...}.
        """
        d = norm_path(directory_path, "directory_path")
        if self._is_dir(d):
            raise ApiError(f"Directory {d!r} already exists.")
        self._mkdirs(d)
        return {"directory_path": d, "message": f"Created {d}."}

    def delete_directory(self, directory_path: str, recursive: bool = False) -> dict:
        """Delete a directory. A non-empty directory is only deleted with recursive=True (with everything in it).

        Args:
            directory_path: Absolute path of the directory (not "/").
            recursive: Also delete its files and sub-directories.

        Returns: {"deleted_files": n, "message": ...}.
        """
        d = norm_path(directory_path, "directory_path")
        if d == "/":
            raise ApiError("The root directory cannot be deleted.")
        if not self._is_dir(d):
            raise ApiError(f"No directory at {d!r}. {_HINT}")
        prefix = d + "/"
        inner_files = [f for f in self._db["files"] if f["path"].startswith(prefix)]
        inner_dirs = [x for x in self._db["directories"] if x["path"].startswith(prefix)]
        if (inner_files or inner_dirs) and not recursive:
            raise ApiError(f"Directory {d!r} is not empty ({len(inner_files)} files inside); pass recursive=True to "
                           "delete it with its contents.")
        self._db["files"] = [f for f in self._db["files"] if not f["path"].startswith(prefix)]
        self._db["directories"] = [x for x in self._db["directories"]
                                   if x["path"] != d and not x["path"].startswith(prefix)]
        return {"deleted_files": len(inner_files), "message": f"Deleted {d}."}

    def search_files(self, query: str = "", directory_path: str = "/", search_content: bool = True,
                     page_index: int = 0, page_limit: int = 5) -> list[dict]:
        """Search files anywhere under a directory by words in their path (and content), sorted by path.

        Args:
            query: Words to match against the file path and, if search_content, the text; empty matches all files.
            directory_path: Only search under this directory.
            search_content: Also match words in the file contents.

        Returns: a list of file infos (path, name, type, size, created_at, updated_at), without contents.
        """
        d = norm_path(directory_path, "directory_path")
        if not self._is_dir(d):
            raise ApiError(f"No directory at {d!r}. {_HINT}")
        prefix = "/" if d == "/" else d + "/"
        out = [f for f in self._db["files"] if f["path"].startswith(prefix)
               and matches(query, f["path"], f["content"] if search_content else None)]
        out.sort(key=lambda f: f["path"])
        return [self._info(f) for f in paginate(out, page_index, page_limit)]
