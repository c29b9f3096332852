"""Summarizers: completed episodes -> skills, and a background writer that never blocks training.

`ExpertSummarizer` needs no model: it compares the episode with the expert's plan that the environments expose as
privileged information. `LLMSummarizer` asks any text generator for a JSON skill and accepts only a reply that
parses (after safe repairs) into all three fields. `AsyncSummarizer` runs either on a background thread with its
own store connection.
"""

from __future__ import annotations

import ast
import collections
import json
import logging
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from distillgym.skills.records import Skill, split_steps, strip_numbering, task_identity
from distillgym.types import Episode

log = logging.getLogger(__name__)

FIELDS = ("success_analysis", "mistake_analysis", "golden_workflow")


class Summarizer(Protocol):
    def summarize(self, episode: Episode, task_key: str) -> Skill | None: ...


# ---------------------------------------------------------------------------------------------------- helpers


def family_of(env_id: str) -> str:
    """The env family from an id: "distillgym/Sokoban-6x6-1-v0" -> "sokoban", "Apps-JSON-v0" -> "apps"."""
    name = env_id.rsplit("/", 1)[-1]
    return name.split("-", 1)[0].lower()


def task_key_of(episode: Episode) -> str:
    """The canonical task key of an episode: "<env_id>:<split>:<task_index>"."""
    return f"{episode.env_id}:{episode.split}:{episode.task_index}"


def episode_id(episode: Episode) -> str:
    """A provenance id for an episode (its own meta["episode_id"] when set)."""
    if episode.meta.get("episode_id"):
        return str(episode.meta["episode_id"])
    seed = episode.meta.get("rollout_seed", "")
    return f"{task_key_of(episode)}:{episode.agent or 'agent'}:g{episode.group_id}:s{seed}"


def compress_steps(steps: Sequence[str], max_steps: int = 40) -> list[str]:
    """Runs of the same step as one ("Up x3"), at most `max_steps` entries (then "... (N more steps)"). Single-line
    steps have their whitespace normalized; multi-line steps (code) keep their lines."""
    out: list[str] = []
    keys: list[str] = []
    counts: list[int] = []
    for s in steps:
        key = " ".join(str(s).split())
        multiline = "\n" in str(s).strip()
        if keys and keys[-1] == key and not multiline:
            counts[-1] += 1
        else:
            keys.append(key)
            out.append(str(s).strip("\n").rstrip() if multiline else key)  # code keeps its lines
            counts.append(1)
    runs = [s if n == 1 else f"{s} x{n}" for s, n in zip(out, counts, strict=True)]
    if len(runs) > max_steps:
        rest = sum(counts[max_steps - 1 :])
        runs = [*runs[: max_steps - 1], f"... ({rest} more steps)"]
    return runs


def _norm(action: str) -> str:
    return " ".join(str(action).lower().split())


def _expert_action(turn_info: Mapping[str, Any]) -> str | None:
    priv = turn_info.get("privileged")
    if isinstance(priv, Mapping):
        a = priv.get("expert_action")
        if a is None and isinstance(priv.get("expert_plan"), list) and priv["expert_plan"]:
            a = priv["expert_plan"][0]
        return None if a is None else str(a)
    return None


def _plan(episode: Episode) -> list[str] | None:
    for key in ("expert_plan", "solution"):
        plan = episode.privileged.get(key)
        if isinstance(plan, list) and plan:
            return [str(a) for a in plan]
    if episode.turns:
        priv = episode.turns[0].info.get("privileged")
        if isinstance(priv, Mapping):
            for key in ("expert_plan", "solution"):
                plan = priv.get(key)
                if isinstance(plan, list) and plan:
                    return [str(a) for a in plan]
    return None


def _short(text: str, limit: int = 60) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _quote(text: str, limit: int = 80) -> str:
    return repr(_short(text, limit))


# -------------------------------------------------------------------------------------------------- expert


class ExpertSummarizer:
    """A skill from an episode and the expert's plan (privileged info), no model needed.

    success_analysis: the outcome and how many actions matched the expert; mistake_analysis: the first deviation
    from the expert (turn, what the agent did, what the expert would do) and the invalid actions; golden_workflow:
    the expert's plan from the start, else the successful episode's own actions (compressed, "Up x3").
    """

    def __init__(self, *, family: str | None = None, max_steps: int = 40) -> None:
        self.family = family
        self.max_steps = max_steps

    def summarize(self, episode: Episode, task_key: str) -> Skill | None:
        if not episode.turns:
            return None
        n = len(episode.turns)
        outcome = "Solved in" if episode.success else "Not solved after"
        plural = "step" if n == 1 else "steps"
        matched, compared, deviation = 0, 0, None
        for t, turn in enumerate(episode.turns):
            expert = _expert_action(turn.info)
            if expert is None:
                continue
            compared += 1
            if _norm(turn.action) == _norm(expert):
                matched += 1
            elif deviation is None:
                deviation = (t, turn.action, expert)
        invalid = [(t, turn.action) for t, turn in enumerate(episode.turns) if turn.invalid_action]

        success = [f"{outcome} {n} {plural} (return {episode.total_reward:+.2f})."]
        if compared:
            success.append(f"{matched} of {compared} actions matched the expert's.")
            prefix = deviation[0] if deviation is not None else n
            if prefix > 0:
                first = compress_steps([_short(tu.action) for tu in episode.turns[:prefix]], 8)
                success.append(f"The opening moves were right: {', '.join(first)}.")
        elif episode.success:
            worked = compress_steps([_short(t.action) for t in episode.turns], 8)
            success.append(f"The actions that worked: {', '.join(worked)}.")

        mistakes: list[str] = []
        if deviation is not None:
            t, did, would = deviation
            mistakes.append(f"First deviation at turn {t + 1}: the agent did {_quote(did)}; the expert would do "
                            f"{_quote(would)}.")
        if invalid:
            t, a = invalid[0]
            mistakes.append(f"{len(invalid)} invalid action(s), first at turn {t + 1}: {_quote(a)}.")
        if not episode.success and episode.turns[-1].truncated:
            mistakes.append(f"Ran out of steps after {n} turns.")
        if not mistakes:
            mistakes.append("None: every action matched the expert." if compared else "None observed.")

        plan = _plan(episode)
        if plan is None and episode.success:
            plan = [t.action for t in episode.turns if not t.invalid_action]
        if not plan and not compared:
            return None  # nothing reliable to teach
        return Skill(
            task_family=self.family or family_of(episode.env_id),
            task_key=task_key,
            task_text=task_identity(episode),
            success_analysis=" ".join(success),
            mistake_analysis=" ".join(mistakes),
            golden_workflow=compress_steps(plan or [], self.max_steps),
            source_episodes=[episode_id(episode)],
        )


def _served_model(base_url: str, timeout: float = 30.0) -> str:
    """The first model an OpenAI-compatible server lists at /v1/models."""
    import httpx

    root = base_url.rstrip("/").removesuffix("/v1")
    try:
        reply = httpx.get(f"{root}/v1/models", timeout=timeout)
        reply.raise_for_status()
        return str(reply.json()["data"][0]["id"])
    except (httpx.HTTPError, KeyError, IndexError, TypeError, ValueError) as e:
        raise ConnectionError(f"could not read the served model's name from {root}/v1/models ({e}); "
                              "pass it as served_name") from e


# ------------------------------------------------------------------------------------------------ parsing


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


SUMMARY_PROMPT = """You review an agent's attempt at a task and write a reusable skill for the next attempt.

Task: {task}
Outcome: {outcome} after {steps} steps, total reward {reward:+.2f}.
{privileged}Trajectory:
{trajectory}

Reply with one JSON object and nothing else:
{{"success_analysis": "what worked and why", "mistake_analysis": "the first mistake and what to do instead",
"golden_workflow": ["step 1", "step 2", "..."]}}
"""


class LLMSummarizer:
    """A skill written by a language model: `generate(prompt_text) -> reply_text`, reply parsed by
    `parse_skill_json` (an unparseable reply gives None and counts in `rejected`)."""

    def __init__(
        self,
        generate: Callable[[str], str],
        *,
        max_chars: int = 6000,
        family: str | None = None,
        include_privileged: bool = True,
        template: str = SUMMARY_PROMPT,
    ) -> None:
        self.generate = generate
        self.max_chars = max_chars
        self.family = family
        self.include_privileged = include_privileged
        self.template = template
        self.rejected = 0

    @classmethod
    def from_backend(
        cls, backend: Any, tokenizer: Any = None, sampling: Any = None, *, chat: bool = True, **kwargs: Any
    ) -> LLMSummarizer:
        """A summarizer over a distillgym generation backend (`backend.generate(prompt_ids_batch, params)`):
        the prompt goes through the tokenizer's chat template when it has one (and `chat`)."""
        from distillgym.agents.generation import SamplingParams

        tok = tokenizer if tokenizer is not None else backend.tokenizer
        params = sampling if sampling is not None else SamplingParams(temperature=0.0, max_tokens=512)

        def generate(prompt: str) -> str:
            if chat and getattr(tok, "chat_template", None):
                ids = tok.apply_chat_template(
                    [{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=True
                )
                if isinstance(ids, Mapping) or hasattr(ids, "input_ids"):
                    ids = ids["input_ids"]
            else:
                ids = tok.encode(prompt)
            return backend.generate([list(ids)], params)[0].text

        return cls(generate, **kwargs)

    @classmethod
    def from_spec(
        cls,
        model: str,
        *,
        tokenizer: str | None = None,
        served_name: str | None = None,
        max_tokens: int = 512,
        device: str = "cpu",
        **kwargs: Any,
    ) -> LLMSummarizer:
        """A summarizer over a model named by `model`: a local model directory (or 'tiny', or a Hugging Face name
        with HF_HUB_OFFLINE=1), run with transformers on `device`; or the root URL of an OpenAI-compatible server
        (vLLM's, `http://host:port`), whose `tokenizer` (a local path) must be given and whose model is
        `served_name` (default: the first that GET /v1/models lists). Greedy, at most `max_tokens` tokens."""
        from distillgym.agents.generation import SamplingParams

        sampling = SamplingParams(temperature=0.0, max_tokens=max_tokens)
        if model.startswith(("http://", "https://")):
            from transformers import AutoTokenizer

            from distillgym.agents.http_backend import HTTPBackend

            if not tokenizer:
                raise ValueError(f"a summarizer served at {model} needs its tokenizer: a local path to it")
            name = served_name or _served_model(model)
            backend: Any = HTTPBackend(model, name, AutoTokenizer.from_pretrained(tokenizer), concurrency=1)
        else:
            from distillgym.agents.generation import TransformersBackend
            from distillgym.agents.models import load

            lm, tok = load(model)
            backend = TransformersBackend(lm.to(device).eval(), tok, batch_size=1, name=model)
        return cls.from_backend(backend, sampling=sampling, **kwargs)

    def prompt(self, episode: Episode) -> str:
        """The summarization prompt for an episode (the trajectory cut in the middle to fit max_chars)."""
        lines = []
        for t, turn in enumerate(episode.turns, 1):
            obs = " ".join(turn.observation.split())[:400]
            flag = " (invalid)" if turn.invalid_action else ""
            lines.append(f"[{t}] observation: {obs}\n[{t}] action: {turn.action}{flag} -> reward {turn.reward:+.2f}")
        traj = "\n".join(lines)
        priv = ""
        plan = _plan(episode) if self.include_privileged else None
        if plan:
            priv = f"Reference solution (an expert's plan): {', '.join(compress_steps(plan, 30))}\n"
        fixed = self.template.format(task=episode.task.strip()[:1500], outcome="success" if episode.success else
                                     "failure", steps=episode.num_steps, reward=episode.total_reward,
                                     privileged=priv, trajectory="")
        budget = max(200, self.max_chars - len(fixed))
        if len(traj) > budget:
            half = budget // 2
            traj = traj[:half] + "\n[... trajectory cut ...]\n" + traj[-half:]
        return self.template.format(
            task=episode.task.strip()[:1500],
            outcome="success" if episode.success else "failure",
            steps=episode.num_steps,
            reward=episode.total_reward,
            privileged=priv,
            trajectory=traj,
        )

    def summarize(self, episode: Episode, task_key: str) -> Skill | None:
        reply = self.generate(self.prompt(episode))
        fields = parse_skill_json(reply)
        if fields is None:
            self.rejected += 1
            log.debug("skill summary rejected for %s: %r", task_key, (reply or "")[:200])
            return None
        return Skill(
            task_family=self.family or family_of(episode.env_id),
            task_key=task_key,
            task_text=task_identity(episode),
            source_episodes=[episode_id(episode)],
            **fields,
        )


# -------------------------------------------------------------------------------------------------- async


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
