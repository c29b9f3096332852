"""A model's JSON skill, repaired where it is safe: the reply's fenced or bare JSON object, single quotes and
trailing commas fixed, accepted only with all three fields (what worked, mistakes, workflow)."""

from __future__ import annotations

import ast
import json
import re
from typing import Any

from distillgym.skills.records import split_steps, strip_numbering
from distillgym.skills.summarize import FIELDS

_FENCE = re.compile(r"```[ \t]*(?:json|JSON|javascript|js)?[ \t]*\n?(.*?)(?:```|$)", re.DOTALL)


def _scan(text: str, start: int) -> tuple[int | None, list[str], bool]:
    """From the '{' at `start`: (index just past its matching '}' or None, open brackets at the end, in a string)."""
    stack: list[str] = []
    quote: str | None = None
    i = start
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 2
                continue
            if ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch in "{[":
            stack.append(ch)
        elif ch in "}]":
            if not stack:
                return None, stack, False
            stack.pop()
            if not stack:
                return i + 1, [], False
        i += 1
    return None, stack, quote is not None


def _single_to_double(text: str) -> str:
    """JSON-ish text with single-quoted strings rewritten as double-quoted ones (escapes kept valid)."""
    out: list[str] = []
    quote: str | None = None
    i = 0
    while i < len(text):
        ch = text[i]
        if quote is None:
            if ch in "\"'":
                quote = ch
                out.append('"')
            else:
                out.append(ch)
        elif ch == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            out.append("'" if nxt == "'" else ch + nxt)
            i += 2
            continue
        elif ch == quote:
            quote = None
            out.append('"')
        elif ch == '"':
            out.append('\\"')
        else:
            out.append(ch)
        i += 1
    return "".join(out)


_TRAILING_COMMA = re.compile(r",(\s*[}\]])")


def _loads(candidate: str) -> Any:
    """json.loads, then with trailing commas dropped, then with single quotes converted, then a Python literal."""
    attempts = [candidate, _TRAILING_COMMA.sub(r"\1", candidate)]
    attempts.append(_TRAILING_COMMA.sub(r"\1", _single_to_double(candidate)))
    for a in attempts:
        try:
            return json.loads(a)
        except (json.JSONDecodeError, RecursionError):
            pass
    try:
        return ast.literal_eval(candidate)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None


def _candidates(text: str) -> list[str]:
    """JSON object texts to try: inside code fences first, then the whole reply; each balanced object, or a
    truncated one whose only missing part is closing braces (never an unterminated string or list)."""
    sources = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    out: list[str] = []
    for src in sources:
        start = src.find("{")
        while start != -1:
            end, stack, in_string = _scan(src, start)
            if end is not None:
                out.append(src[start:end])
            elif not in_string and stack and all(b == "{" for b in stack):
                body = src[start:].rstrip().rstrip(",").rstrip()
                if body and body[-1] not in ":{[":
                    out.append(body + "}" * len(stack))
                break
            else:
                break
            start = src.find("{", end)
    return out


def _validate(obj: Any) -> dict[str, Any] | None:
    """The three skill fields with the right types, or None."""
    if not isinstance(obj, dict):
        return None
    norm = {str(k).strip().lower().replace(" ", "_").replace("-", "_"): v for k, v in obj.items()}
    if not all(f in norm for f in FIELDS):
        inner = [v for v in obj.values() if isinstance(v, dict)]
        return _validate(inner[0]) if len(inner) == 1 else None
    sa, ma, wf = (norm[f] for f in FIELDS)
    if not isinstance(sa, str) or not isinstance(ma, str):
        return None
    if isinstance(wf, str):
        steps = split_steps(wf)
    elif isinstance(wf, list) and all(isinstance(s, str) for s in wf):
        steps = [s for s in (strip_numbering(s) for s in wf) if s]
    else:
        return None
    if not steps and not sa.strip() and not ma.strip():
        return None
    return {"success_analysis": sa.strip(), "mistake_analysis": ma.strip(), "golden_workflow": steps}


def parse_skill_json(text: str | None) -> dict[str, Any] | None:
    """The skill object in a model's reply, or None.

    Finds the JSON object (in ```json fences, amid prose), repairs what is safely repairable (trailing commas,
    single quotes, missing closing braces at the very end) and checks the three fields: success_analysis and
    mistake_analysis strings, golden_workflow a list of strings or a newline/numbered string (made a list).
    Anything else, a truncated string or list included, is rejected whole rather than half-parsed.
    """
    if not text or not isinstance(text, str):
        return None
    for cand in _candidates(text):
        parsed = _validate(_loads(cand))
        if parsed is not None:
            return parsed
    return None


# ---------------------------------------------------------------------------------------------------- LLM
