"""Text spaces for LLM environments: any printable text (unicode included) up to a maximum length."""

from __future__ import annotations

import string
from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium.spaces import Text
from gymnasium.spaces.utils import flatten, unflatten
from gymnasium.vector.utils.shared_memory import read_from_shared_memory, write_to_shared_memory

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

    #: Sampled strings are at most this long (a 1 MiB action limit should not mean 1 MiB random samples).
    sample_max_length: int = 256

    def __init__(self, max_length: int, *, min_length: int = 0, seed: Any = None) -> None:
        super().__init__(max_length, min_length=min_length, charset=SAMPLE_CHARSET, seed=seed)

    def sample(self, mask: Any = None, probability: Any = None) -> str:
        if mask is None and probability is None:
            top = max(self.min_length, min(self.max_length, self.sample_max_length))
            mask = (int(self.np_random.integers(self.min_length, top + 1)), None)
        return super().sample(mask=mask, probability=probability)

    def contains(self, x: Any) -> bool:
        return isinstance(x, str) and self.min_length <= len(x) <= self.max_length and is_printable_text(x)

    def __repr__(self) -> str:
        return f"TextSpace(min_length={self.min_length}, max_length={self.max_length}, printable)"

    def __eq__(self, other: Any) -> bool:
        return (
            isinstance(other, TextSpace) and self.min_length == other.min_length and self.max_length == other.max_length
        )

    def __hash__(self) -> int:
        return hash(("TextSpace", self.min_length, self.max_length))


# gymnasium encodes `Text` values as indices into the space's charset (for `flatten` and for AsyncVectorEnv's
# shared memory), which cannot hold arbitrary unicode. A TextSpace stores unicode code points instead (0 = padding;
# NUL is never printable, so it never occurs in a value).
def _to_code_points(space: TextSpace, x: str) -> np.ndarray:
    out = np.zeros(space.max_length, dtype=np.int32)
    codes = np.frombuffer(x.encode("utf-32-le"), dtype="<u4")[: space.max_length]
    out[: codes.size] = codes
    return out


def _from_code_points(codes: np.ndarray) -> str:
    codes = np.asarray(codes, dtype=np.int32)
    return codes[codes > 0].astype("<u4").tobytes().decode("utf-32-le")


# gymnasium types the dispatch fallback over Space[T], which mypy cannot match with a subclass
@flatten.register(TextSpace)
def _flatten_text_space(space: TextSpace, x: str) -> np.ndarray:  # type: ignore[misc]
    return _to_code_points(space, x)


@unflatten.register(TextSpace)
def _unflatten_text_space(space: TextSpace, x: np.ndarray) -> str:  # type: ignore[misc]
    return _from_code_points(x)


class SharedTextBatch(Sequence[str]):
    """A live view of n texts in AsyncVectorEnv's shared memory.

    AsyncVectorEnv reads its shared memory once, at construction, and relies on the result being a view that the
    workers' writes show through (true of numpy arrays; gymnasium's own `Text` returns a tuple that never
    changes). This view decodes on access, and `deepcopy` (what AsyncVectorEnv returns with copy=True, its
    default) gives a plain tuple of strings.
    """

    def __init__(self, data: np.ndarray) -> None:
        self._data = data

    def __len__(self) -> int:
        return self._data.shape[0]

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return tuple(_from_code_points(row) for row in self._data[i])
        return _from_code_points(self._data[i])

    def __deepcopy__(self, memo: dict[int, Any]) -> tuple[str, ...]:
        return tuple(self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, (Sequence, tuple)) and tuple(self) == tuple(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"SharedTextBatch({tuple(self)!r})"


@read_from_shared_memory.register(TextSpace)
def _read_text_space(space: TextSpace, shared_memory: Any, n: int = 1) -> SharedTextBatch:
    return SharedTextBatch(np.frombuffer(shared_memory.get_obj(), dtype=np.int32).reshape((n, space.max_length)))


@write_to_shared_memory.register(TextSpace)
def _write_text_space(space: TextSpace, index: int, values: str, shared_memory: Any) -> None:
    size = space.max_length
    destination = np.frombuffer(shared_memory.get_obj(), dtype=np.int32)
    np.copyto(destination[index * size : (index + 1) * size], _to_code_points(space, values))
