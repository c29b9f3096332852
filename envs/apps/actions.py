"""The two action formats of Apps-v0: a Python code cell (AppWorld's convention) or a JSON tool call.

Both become a code cell for the sandbox: a tool call `{"name": "mail.send_email", "arguments": {...}}` turns into
`print(apis.mail.send_email(**{...}))`, so both formats share one execution path and one grading path.
"""

from __future__ import annotations

import json
import re
from typing import Any

#: Longer cells are invalid actions (a solution program is a few hundred characters; AppWorld's are under 4k).
MAX_CODE_CHARS = 16_000
_FENCE = re.compile(r"```(?:python|py)?[ \t]*\n(.*?)```", re.DOTALL | re.IGNORECASE)
_OPEN_FENCE = re.compile(r"```(?:python|py)?[ \t]*\n(.*)$", re.DOTALL | re.IGNORECASE)
_TAG = re.compile(r"<(action|code|tool_call)>(.*?)</\1>", re.DOTALL | re.IGNORECASE)
_OPEN_TAG = re.compile(r"<(action|code|tool_call)>(.*)$", re.DOTALL | re.IGNORECASE)
_IDENT = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def extract_code(text: object) -> str | None:
    """The code cell in a reply: the last ```python fence (inside an <action> tag or not), else the last
    <action>/<code> tag, else the whole text; None when empty, not a string or over `MAX_CODE_CHARS`."""
    if not isinstance(text, str) or len(text) > 4 * MAX_CODE_CHARS:
        return None
    tags = _TAG.findall(text)
    body = tags[-1][1] if tags else (m.group(2) if (m := _OPEN_TAG.search(text)) else text)
    fences = _FENCE.findall(body)
    if fences:
        body = fences[-1]
    elif m := _OPEN_FENCE.search(body):
        body = m.group(1)
    body = body.strip("\n").rstrip()
    if not body.strip() or len(body) > MAX_CODE_CHARS:
        return None
    return _dedent(body)


def _dedent(code: str) -> str:
    import textwrap

    return textwrap.dedent(code)


def tool_call_to_code(text: object) -> str | None:
    """A JSON tool call as a code cell, or None when `text` is not one.

    Accepted: `{"name": "app.api", "arguments": {...}}`, `{"app": ..., "api": ..., "arguments": {...}}`, either
    inside <tool_call> or <action> tags or a ```json fence; "arguments" may be a JSON string (OpenAI's format).
    """
    if not isinstance(text, str) or len(text) > 4 * MAX_CODE_CHARS:
        return None
    tags = _TAG.findall(text)
    body = tags[-1][1] if tags else text
    fence = re.search(r"```(?:json)?\s*\n?(.*?)```", body, re.DOTALL)
    if fence:
        body = fence.group(1)
    try:
        call = json.loads(body.strip())
    except (json.JSONDecodeError, RecursionError):
        return None
    if isinstance(call, dict) and isinstance(call.get("function"), dict):  # {"type": "function", "function": {...}}
        call = call["function"]
    if not isinstance(call, dict):
        return None
    name = call.get("name")
    app, api = (name.split(".", 1) if isinstance(name, str) and "." in name else (call.get("app"), call.get("api")))
    args: Any = call.get("arguments", call.get("parameters", {}))
    if isinstance(args, str):
        try:
            args = json.loads(args) if args.strip() else {}
        except json.JSONDecodeError:
            return None
    if not (isinstance(app, str) and isinstance(api, str) and _IDENT.match(app) and _IDENT.match(api)):
        return None
    if not isinstance(args, dict) or not all(isinstance(k, str) and _IDENT.match(k) for k in args):
        return None
    # repr of JSON values (dict/list/str/int/float/bool/None) is a Python literal: no code can be smuggled in
    return f"print(apis.{app}.{api}(**{args!r}))"
