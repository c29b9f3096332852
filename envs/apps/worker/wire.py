"""The worker channel's framing and JSON (shared by the worker and its parent)."""

from __future__ import annotations

import json
import os
import struct
from typing import Any

FRAME_HEADER = struct.Struct(">I")
MAX_REQUEST_HEADER = 1 << 22  # code is capped by the parent far below this
MAX_CONFIG = 1 << 24


def read_frame(fd: int, max_len: int) -> bytes | None:
    """One length-prefixed frame from `fd`; None on EOF; ValueError past `max_len`."""
    head = _read_exact(fd, FRAME_HEADER.size)
    if head is None:
        return None
    (n,) = FRAME_HEADER.unpack(head)
    if n > max_len:
        raise ValueError(f"frame of {n} bytes exceeds {max_len}")
    body = _read_exact(fd, n)
    if body is None:
        return None
    return body


def _read_exact(fd: int, n: int) -> bytes | None:
    chunks: list[bytes] = []
    while n:
        chunk = os.read(fd, min(n, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def frame(data: bytes) -> bytes:
    """`data` with its length prefix."""
    return FRAME_HEADER.pack(len(data)) + data


def write_all(fd: int, data: bytes) -> None:
    """Write all of `data` to `fd` (a pipe)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _not_serializable(obj: Any) -> Any:
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


# The protocol's JSON goes straight to the C accelerators, bound here at import: agent code can patch json's Python
# classes (`json.JSONEncoder.encode = ...`), and must not reach the worker's own encoding and decoding that way.
# (CPython's private accelerators: typeshed does not declare them)
_C_ENCODER = json.encoder.c_make_encoder  # type: ignore[attr-defined]
_C_ENCODE_STR = json.encoder.c_encode_basestring  # type: ignore[attr-defined]
_SCAN = json.JSONDecoder().scan_once  # type: ignore[attr-defined]  # a C scanner holding its own parse settings


def dumps(obj: Any) -> bytes:
    """Compact JSON, the one encoding both sides use (equal states give equal text; same as json.dumps with
    separators=(",", ":"), ensure_ascii=False). Lone surrogates become JSON escapes, so any str survives the trip.
    """
    if _C_ENCODER is None or _C_ENCODE_STR is None:  # no C accelerator (not CPython): the pure-Python encoder
        text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    else:
        encode = _C_ENCODER({}, _not_serializable, _C_ENCODE_STR, None, ":", ",", False, False, True)
        text = "".join(encode(obj, 0))
    return text.encode("utf-8", "backslashreplace")


def loads(data: bytes) -> Any:
    """Parse one JSON document (as `dumps` writes it) with the C scanner bound at import."""
    text = data.decode("utf-8")
    try:
        obj, end = _SCAN(text, 0)
    except StopIteration as exc:
        raise ValueError(f"invalid JSON at offset {exc.value}") from None
    if end != len(text):
        raise ValueError(f"extra data after JSON at offset {end}")
    return obj


