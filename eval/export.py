"""Episodes out of the process: JSONL (one `Episode.to_json` per line) and Hugging Face `datasets`.

Dataset layout (one row per Episode), chosen so that every family shares one Arrow schema:

- flat columns: env_id, task_index, task_seed, split, task, initial_observation, success, agent, group_id,
  plus the derived total_reward, num_steps, num_completion_tokens (for filtering without decoding turns);
- privileged, meta: JSON strings (their keys differ per family, so they are not Arrow structs);
- turns: a list of structs {observation, action, reward, terminated, truncated, invalid_action, prompt_ids,
  completion_ids, logprobs, info}; token ids are int64 lists and logprobs float64 lists (exact round trip), null for
  agents without a model; info is a JSON string.

`from_dataset` inverts `to_dataset` exactly. `datasets` is imported only when a dataset is built.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from distillgym.types import Episode, Turn

TURN_FIELDS = (
    "observation", "action", "reward", "terminated", "truncated", "invalid_action", "prompt_ids", "completion_ids",
    "logprobs", "info",
)


# ---------------------------------------------------------------------------------------------------------- JSONL


def write_jsonl(episodes: Iterable[Episode], path: str | Path) -> Path:
    """One Episode per line (Episode.to_json); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for ep in episodes:
            f.write(ep.to_json() + "\n")
    return path


def iter_jsonl(path: str | Path) -> Iterator[Episode]:
    """Episodes from a JSONL file written by write_jsonl (blank lines skipped; a bad line names its number)."""
    with Path(path).open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                yield Episode.from_json(line)
            except (json.JSONDecodeError, TypeError) as e:
                raise ValueError(f"{path}:{lineno}: not an Episode ({e})") from e


def read_jsonl(path: str | Path) -> list[Episode]:
    return list(iter_jsonl(path))


# ------------------------------------------------------------------------------------------------ HF datasets


def features() -> Any:
    """The Arrow schema of an Episode dataset (see the module docstring)."""
    import datasets as ds

    ints, floats = ds.List(ds.Value("int64")), ds.List(ds.Value("float64"))
    turn = {
        "observation": ds.Value("string"),
        "action": ds.Value("string"),
        "reward": ds.Value("float64"),
        "terminated": ds.Value("bool"),
        "truncated": ds.Value("bool"),
        "invalid_action": ds.Value("bool"),
        "prompt_ids": ints,
        "completion_ids": ints,
        "logprobs": floats,
        "info": ds.Value("string"),
    }
    return ds.Features(
        {
            "env_id": ds.Value("string"),
            "task_index": ds.Value("int64"),
            "task_seed": ds.Value("int64"),
            "split": ds.Value("string"),
            "task": ds.Value("string"),
            "initial_observation": ds.Value("string"),
            "success": ds.Value("bool"),
            "agent": ds.Value("string"),
            "group_id": ds.Value("int64"),
            "total_reward": ds.Value("float64"),
            "num_steps": ds.Value("int64"),
            "num_completion_tokens": ds.Value("int64"),
            "privileged": ds.Value("string"),
            "meta": ds.Value("string"),
            "turns": ds.List(turn),
        }
    )


def episode_row(ep: Episode) -> dict[str, Any]:
    """One dataset row for an Episode."""
    return {
        "env_id": ep.env_id,
        "task_index": ep.task_index,
        "task_seed": ep.task_seed,
        "split": ep.split,
        "task": ep.task,
        "initial_observation": ep.initial_observation,
        "success": ep.success,
        "agent": ep.agent,
        "group_id": ep.group_id,
        "total_reward": ep.total_reward,
        "num_steps": ep.num_steps,
        "num_completion_tokens": ep.num_completion_tokens,
        "privileged": json.dumps(ep.privileged, ensure_ascii=False),
        "meta": json.dumps(ep.meta, ensure_ascii=False),
        "turns": [
            {
                "observation": t.observation,
                "action": t.action,
                "reward": t.reward,
                "terminated": t.terminated,
                "truncated": t.truncated,
                "invalid_action": t.invalid_action,
                "prompt_ids": t.prompt_ids,
                "completion_ids": t.completion_ids,
                "logprobs": t.logprobs,
                "info": json.dumps(t.info, ensure_ascii=False),
            }
            for t in ep.turns
        ],
    }


def row_episode(row: dict[str, Any]) -> Episode:
    """The Episode of a dataset row (inverse of episode_row)."""
    turns = [Turn(**{**{k: t[k] for k in TURN_FIELDS}, "info": json.loads(t["info"])}) for t in row["turns"]]
    return Episode(
        env_id=row["env_id"],
        task_index=row["task_index"],
        task_seed=row["task_seed"],
        split=row["split"],
        task=row["task"],
        initial_observation=row["initial_observation"],
        turns=turns,
        success=row["success"],
        privileged=json.loads(row["privileged"]),
        agent=row["agent"],
        group_id=row["group_id"],
        meta=json.loads(row["meta"]),
    )


def to_dataset(episodes: Iterable[Episode]) -> Any:
    """A `datasets.Dataset`, one row per Episode (layout in the module docstring)."""
    import datasets as ds

    return ds.Dataset.from_list([episode_row(e) for e in episodes], features=features())


def from_dataset(dataset: Any) -> list[Episode]:
    """Episodes back from a Dataset built by to_dataset (or loaded with datasets.load_from_disk)."""
    return [row_episode(row) for row in dataset]


def save_dataset(episodes: Iterable[Episode], path: str | Path) -> Path:
    """to_dataset(episodes).save_to_disk(path); load it back with datasets.load_from_disk."""
    path = Path(path)
    to_dataset(episodes).save_to_disk(str(path))
    return path
