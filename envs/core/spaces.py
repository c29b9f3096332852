"""Text spaces for LLM environments: any printable text (unicode included) up to a maximum length."""

from __future__ import annotations

import string
from typing import Any

from gymnasium.spaces import Text

# Characters used when *sampling* (what check_env and random agents send). Membership is wider: see contains().
SAMPLE_CHARSET = string.ascii_letters + string.digits + string.punctuation + " " + "√éü→♦"
_ALLOWED_WHITESPACE = frozenset("\n\t")


def is_printable_text(x: str) -> bool:
    """True when every character is printable (any script) or a newline/tab."""
    return x.isprintable() or all(c.isprintable() or c in _ALLOWED_WHITESPACE for c in x)


class TextSpace(Text):
    """A gymnasium `Text` space that accepts any printable text, not just a fixed charset.

    gymnasium's `Text` only contains strings over its charset (alphanumerics by default), which rejects the
    punctuation, newlines and unicode that text games and LLM replies are made of. Sampling still draws from a
    fixed charset so that sampled actions are reproducible.
    """

    def __init__(self, max_length: int, *, min_length: int = 0, seed: Any = None) -> None:
        super().__init__(max_length, min_length=min_length, charset=SAMPLE_CHARSET, seed=seed)

    def contains(self, x: Any) -> bool:
        return isinstance(x, str) and self.min_length <= len(x) <= self.max_length and is_printable_text(x)

    def __repr__(self) -> str:
        return f"TextSpace(min_length={self.min_length}, max_length={self.max_length}, printable)"

    def __eq__(self, other: Any) -> bool:
        return (
            isinstance(other, TextSpace)
            and self.min_length == other.min_length
            and self.max_length == other.max_length
        )

    def __hash__(self) -> int:
        return hash(("TextSpace", self.min_length, self.max_length))
