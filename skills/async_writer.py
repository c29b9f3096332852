"""`AsyncSummarizer`: summarizes finished episodes on a background thread, with its own store connection, so that
summarizing never blocks a training step."""

from __future__ import annotations

import collections
import logging
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from distillgym.skills.summarize import Summarizer
from distillgym.types import Episode

log = logging.getLogger(__name__)

@dataclass
class SummarizerStats:
    """Counters of an AsyncSummarizer (read them as attributes or as stats["written"])."""

    submitted: int = 0
    written: int = 0  # skills stored (a near-duplicate merged into an existing record counts too)
    rejected: int = 0  # the summarizer returned None
    dropped: int = 0  # episodes dropped because the queue was full (the oldest go first)
    errors: int = 0  # the summarizer or the store raised

    def __getitem__(self, key: str) -> int:
        return int(getattr(self, key))

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class AsyncSummarizer:
    """Summarize episodes on background threads (each with its own SkillStore connection); `submit` never blocks.

    A full queue drops its oldest episode (counted in stats.dropped). With workers > 1 the summarizer is called
    from several threads at once, so it must be thread-safe. Episodes are kept by reference until summarized:
    do not mutate them after submitting.
    """

    def __init__(
        self,
        summarizer: Summarizer,
        store_path: str | Path,
        *,
        workers: int = 1,
        max_queue: int = 1000,
        store_kwargs: dict[str, Any] | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        if max_queue < 1:
            raise ValueError(f"max_queue must be >= 1, got {max_queue}")
        self.summarizer = summarizer
        self.store_path = Path(store_path)
        self.max_queue = max_queue
        self.stats = SummarizerStats()
        self._store_kwargs = dict(store_kwargs or {})
        self._queue: collections.deque[tuple[Episode, str]] = collections.deque()
        self._cond = threading.Condition()
        self._busy = 0
        self._closed = False
        self._flushed_written = 0
        self._ready = threading.Barrier(workers + 1)
        self._init_error: BaseException | None = None
        self._threads = [
            threading.Thread(target=self._work, name=f"skill-summarizer-{i}", daemon=True) for i in range(workers)
        ]
        for t in self._threads:
            t.start()
        self._ready.wait()
        if self._init_error is not None:
            self.close()
            raise self._init_error

    def submit(self, episode: Episode, task_key: str) -> None:
        """Queue an episode for summarizing and return at once."""
        with self._cond:
            if self._closed:
                raise RuntimeError("AsyncSummarizer is closed")
            if len(self._queue) >= self.max_queue:
                self._queue.popleft()
                self.stats.dropped += 1
            self._queue.append((episode, task_key))
            self.stats.submitted += 1
            self._cond.notify()

    def pending(self) -> int:
        """Episodes queued or being summarized."""
        with self._cond:
            return len(self._queue) + self._busy

    def flush(self, timeout: float | None = None) -> int:
        """Wait until every submitted episode is summarized (or `timeout` seconds); returns the skills written
        since the previous flush."""
        with self._cond:
            self._cond.wait_for(lambda: not self._queue and self._busy == 0, timeout=timeout)
            n = self.stats.written - self._flushed_written
            self._flushed_written = self.stats.written
            return n

    def close(self, timeout: float | None = None) -> None:
        """Finish the queued episodes (up to `timeout` seconds) and stop the threads."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        for t in self._threads:
            t.join(timeout)

    def __enter__(self) -> AsyncSummarizer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _work(self) -> None:
        from distillgym.skills.store import SkillStore

        try:
            store = SkillStore(self.store_path, **self._store_kwargs)
        except BaseException as e:  # reported to the constructor
            self._init_error = e
            self._ready.wait()
            return
        self._ready.wait()
        try:
            while True:
                with self._cond:
                    self._cond.wait_for(lambda: self._queue or self._closed)
                    if not self._queue:
                        return  # closed and drained
                    episode, key = self._queue.popleft()
                    self._busy += 1
                try:
                    skill = self.summarizer.summarize(episode, key)
                    outcome = "rejected" if skill is None else "written"
                    if skill is not None:
                        store.add(skill)
                except Exception:
                    log.exception("skill summarizer failed on %s", key)
                    outcome = "errors"
                with self._cond:
                    setattr(self.stats, outcome, getattr(self.stats, outcome) + 1)
                    self._busy -= 1
                    self._cond.notify_all()
        finally:
            store.close()
