"""In-context distillation with a self-consistency cascade (Sarukkai et al. 2025, arXiv 2512.02543; no code released).

A cheap student acts with the top-k teacher demonstrations of the demonstration store in its context
(`skills.demos.DemoStore`, retrieved by the task and the current observation). At every step it samples N replies;
when all N name the same action (after the family's parser and whitespace/case normalization) the student acts,
otherwise the teacher acts for that step. Every step records who acted and each model's input and output tokens, and
a cost model (USD per million input and output tokens per model) turns them into cost per episode; the
demonstrations' one-time cost gives the break-even episode count.

    agent = CascadeAgent(student=ModelAgent(backend), teacher=ExpertAgent(), store=DemoStore("demos.db"),
                         cfg=CascadeConfig(k=3, n=3, temperature=0.7))
    episodes = collect(agent, "Household-v0", 256)
    print(cascade_costs(episodes, agent.cfg))

Token accounting: the student's N samples of one step share one prompt, counted once (one request with `n=N`, as
the OpenAI API bills it) and their outputs are all counted. A model teacher is counted from its own prompt and
completion. The expert is no model: `teacher="expert"` prices it as a model that reads the plain prompt (no
demonstrations, tokenized by the student's tokenizer) and writes the reply `<action>...</action>`, at the
teacher's price ("a priced expert").
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from distillgym.agents.generation import SamplingParams
from distillgym.agents.policies import ActRequest, ActResult, Agent, ModelAgent
from distillgym.agents.prompts import reply_text
from distillgym.types import Episode

MODES = ("cascade", "student", "teacher")


@dataclass(frozen=True)
class Price:
    """USD per million tokens."""

    input: float
    output: float

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        return (input_tokens * self.input + output_tokens * self.output) / 1e6


@dataclass
class CascadeConfig:
    """The cascade's knobs and its cost model (every field can be set from a config file or the command line)."""

    mode: str = "cascade"  # cascade | student (the student alone, greedy) | teacher (the teacher alone)
    k: int = 3  # demonstrations in the student's context (0: none)
    n: int = 3  # student samples per step; the student acts when all agree
    temperature: float = 0.7  # of the student's samples (the student alone decodes greedily)
    max_tokens: int = 48  # of a student reply
    history: int = 4  # past turns in the student's prompt
    student_price: Price = field(default_factory=lambda: Price(0.10, 0.40))  # a small hosted model
    teacher_price: Price = field(default_factory=lambda: Price(3.00, 15.00))  # a frontier model

    def __post_init__(self) -> None:
        for name in ("student_price", "teacher_price"):
            value = getattr(self, name)
            if isinstance(value, Mapping):
                setattr(self, name, Price(float(value["input"]), float(value["output"])))
        check(self)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check(cfg: CascadeConfig) -> None:
    """A clear error naming the field of a config that cannot run."""
    if cfg.mode not in MODES:
        raise ValueError(f"cascade.mode must be one of {MODES}, got {cfg.mode!r}")
    if cfg.k < 0:
        raise ValueError(f"cascade.k (demonstrations) must be >= 0, got {cfg.k}")
    if cfg.n < 1:
        raise ValueError(f"cascade.n (student samples) must be >= 1, got {cfg.n}")
    if not cfg.temperature >= 0:
        raise ValueError(f"cascade.temperature must be >= 0, got {cfg.temperature}")
    if cfg.max_tokens < 1:
        raise ValueError(f"cascade.max_tokens must be >= 1, got {cfg.max_tokens}")
    for name in ("student_price", "teacher_price"):
        p = getattr(cfg, name)
        if not isinstance(p, Price) or p.input < 0 or p.output < 0:
            raise ValueError(f"cascade.{name} must be {{input, output}} USD per million tokens >= 0, got {p!r}")


def config_from(data: Mapping[str, Any]) -> CascadeConfig:
    """A CascadeConfig from a mapping; an unknown key is an error that names it and the known ones."""
    known = {f.name for f in fields(CascadeConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"unknown cascade config field(s) {unknown}; fields: {sorted(known)}")
    return CascadeConfig(**dict(data))


def normalize(action: str | None) -> str | None:
    """An action as the cascade compares them: the parser's text, case and whitespace folded."""
    if action is None:
        return None
    text = " ".join(action.lower().split())
    return text or None


def sample_seed(req: ActRequest, j: int) -> int:
    """The seed of the j-th student sample of a request: the same whatever else is in the batch."""
    return int(np.random.SeedSequence([req.seed, req.episode, req.step, j, 29]).generate_state(1, np.uint64)[0] >> 1)


class DemoContext:
    """A student's in-context demonstrations: the store's top-k steps for the request's task and observation
    (`ModelAgent(examples=DemoContext(store, k))`), rendered as text; cached per (episode, step)."""

    def __init__(self, store: Any, k: int, family: str | None = None) -> None:
        self.store, self.k, self.family = store, k, family
        self._cache: dict[tuple[int, int, str], str | None] = {}

    def __call__(self, req: ActRequest) -> str | None:
        if self.k <= 0:
            return None
        from distillgym.skills.demos import render_demos

        key = (req.episode, req.step, req.observation)
        if key not in self._cache:
            if len(self._cache) > 4096:
                self._cache.clear()
            steps = self.store.retrieve(self.family or req.family, goal=req.task, observation=req.observation,
                                        k=self.k)
            self._cache[key] = render_demos(steps) if steps else None
        return self._cache[key]


class CascadeAgent:
    """The student (with demonstrations) when its N samples agree, else the teacher; every step's accounting goes
    to `ActResult.info["cascade"]` (and so to `Turn.info`)."""

    def __init__(self, student: ModelAgent, teacher: Agent, store: Any = None, cfg: CascadeConfig | None = None,
                 *, name: str = "") -> None:
        self.cfg = cfg or CascadeConfig()
        check(self.cfg)
        if self.cfg.mode != "teacher" and self.cfg.k > 0 and store is None:
            raise ValueError(f"cascade.k = {self.cfg.k} demonstrations need a demonstration store (store=...)")
        self.teacher = teacher
        self.store = store
        context = DemoContext(store, self.cfg.k) if store is not None and self.cfg.k > 0 else None
        sampling = SamplingParams(temperature=self.cfg.temperature, max_tokens=self.cfg.max_tokens)
        self.student = ModelAgent(student.backend, history=self.cfg.history, examples=context, sampling=sampling,
                                  name=student.name)
        # the priced expert reads what the plain student would read (no demonstrations)
        self._plain = ModelAgent(student.backend, history=self.cfg.history, name=student.name)
        self.tokenizer = student.tokenizer
        self.name = name or {"cascade": f"cascade(k={self.cfg.k},n={self.cfg.n},T={self.cfg.temperature:g})",
                             "student": f"student(k={self.cfg.k})", "teacher": "teacher"}[self.cfg.mode]
        self.generation_calls = 0

    # -------------------------------------------------------------------------------------------------- acting

    def act(self, requests: Sequence[ActRequest], seed: int) -> list[ActResult]:
        if not requests:
            return []
        if self.cfg.mode == "teacher":
            return self._teacher(list(requests), seed)
        n = 1 if self.cfg.mode == "student" else self.cfg.n
        temperature = 0.0 if self.cfg.mode == "student" else self.cfg.temperature
        prompts = [self.student.prompt_ids(r) for r in requests]
        stop = tuple(dict.fromkeys(requests[0].protocol.stop))
        params = SamplingParams(temperature=temperature, max_tokens=self.cfg.max_tokens, stop=stop, seed=seed,
                                seeds=tuple(sample_seed(r, j) for r in requests for j in range(n)))
        completions = self.student.backend.generate([p for p in prompts for _ in range(n)], params)
        self.generation_calls += 1
        out: list[ActResult | None] = [None] * len(requests)
        infos: list[dict[str, Any]] = []
        for i, (req, prompt) in enumerate(zip(requests, prompts, strict=True)):
            mine = completions[i * n:(i + 1) * n]
            parsed = [req.protocol.parse(c.text) for c in mine]
            keys = [normalize(a) for a in parsed]
            agree = keys[0] is not None and all(k == keys[0] for k in keys)
            student_acts = agree or self.cfg.mode == "student"
            infos.append({"acted": "student" if student_acts else "teacher", "agree": agree,
                          "samples": [a if a is not None else c.text for a, c in zip(parsed, mine, strict=True)],
                          "tokens": {"student": [len(prompt), sum(len(c.ids) for c in mine)], "teacher": [0, 0]}})
            if student_acts:
                first = mine[0]
                action = parsed[0] if parsed[0] is not None else first.text
                out[i] = ActResult(action, first.text, prompt, first.ids, first.logprobs)
        defer = [i for i, r in enumerate(out) if r is None]
        if defer:
            for i, res in zip(defer, self._teacher([requests[i] for i in defer], seed), strict=True):
                infos[i]["tokens"]["teacher"] = res.info["cascade"]["tokens"]["teacher"]
                out[i] = res
        results = [r for r in out if r is not None]
        for res, info in zip(results, infos, strict=True):
            res.info = {**res.info, "cascade": {**info, "cost": self.step_cost(info["tokens"])}}
        return results

    def _teacher(self, requests: list[ActRequest], seed: int) -> list[ActResult]:
        results = self.teacher.act(requests, seed)
        for req, res in zip(requests, results, strict=True):
            tokens = self.teacher_tokens(req, res)
            res.info = {**res.info, "cascade": {"acted": "teacher", "agree": False, "samples": [],
                                                "tokens": {"student": [0, 0], "teacher": tokens},
                                                "cost": self.step_cost({"teacher": tokens})}}
        return results

    def teacher_tokens(self, req: ActRequest, res: ActResult) -> list[int]:
        """[input, output] tokens of one teacher step: a model's own, or the priced expert's (see the module)."""
        if res.prompt_ids is not None and res.completion_ids is not None:
            return [len(res.prompt_ids), len(res.completion_ids)]
        reply = res.reply if res.reply and res.reply != res.action else reply_text(res.action)
        return [len(self._plain.prompt_ids(req)), len(self.tokenizer(reply, add_special_tokens=False)["input_ids"]) + 1]

    def step_cost(self, tokens: Mapping[str, Sequence[int]]) -> float:
        s, t = tokens.get("student", (0, 0)), tokens.get("teacher", (0, 0))
        return self.cfg.student_price.cost(s[0], s[1]) + self.cfg.teacher_price.cost(t[0], t[1])


# ------------------------------------------------------------------------------------------------------ accounting


def demo_cost(store: Any, cfg: CascadeConfig, family: str | None = None) -> dict[str, Any]:
    """The one-time cost of the store's demonstrations at the teacher's price."""
    c = store.cost(family)
    return {**c, "usd": cfg.teacher_price.cost(c["input_tokens"], c["output_tokens"])}


def cascade_costs(episodes: Sequence[Episode]) -> dict[str, float]:
    """Success, cost per episode and who acted, from the accounting a CascadeAgent left on each turn."""
    if not episodes:
        raise ValueError("cascade_costs needs at least one episode")
    steps = [t.info.get("cascade") for e in episodes for t in e.turns]
    if any(s is None for s in steps):
        raise ValueError("an episode has turns without cascade accounting (played by another agent)")
    n = len(episodes)
    tok = {who: [sum(s["tokens"][who][j] for s in steps if s) for j in (0, 1)] for who in ("student", "teacher")}
    return {
        "episodes": n,
        "success": float(np.mean([e.success for e in episodes])),
        "cost_per_episode": sum(s["cost"] for s in steps if s) / n,
        "teacher_step_frac": float(np.mean([s["acted"] == "teacher" for s in steps if s])) if steps else 0.0,
        "steps_per_episode": len(steps) / n,
        "student_input_tokens": tok["student"][0] / n, "student_output_tokens": tok["student"][1] / n,
        "teacher_input_tokens": tok["teacher"][0] / n, "teacher_output_tokens": tok["teacher"][1] / n,
    }


def break_even(demo_usd: float, teacher_per_episode: float, cheaper_per_episode: float) -> float:
    """Episodes after which the demonstrations have paid for themselves (inf when the cheaper agent saves nothing)."""
    saving = teacher_per_episode - cheaper_per_episode
    return demo_usd / saving if saving > 0 else float("inf")


# ------------------------------------------------------------------------------------------------- construction


@dataclass
class CascadeSpec:
    """What a cascade is built from (a JSON file for `distillgym eval -a cascade:FILE` and `distillgym serve`)."""

    student: str  # a model directory, or "tiny"
    teacher: str = "expert"  # "expert" (priced, see the module) or a model directory
    demos: str | None = None  # the demonstration store (SQLite file)
    retriever: str = "auto"  # auto (embed where installed, else bm25) | embed | bm25
    cascade: CascadeConfig = field(default_factory=CascadeConfig)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CascadeSpec:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown cascade spec field(s) {unknown}; fields: {sorted(known)}")
        if "student" not in data:
            raise ValueError("a cascade spec needs 'student' (a model directory or 'tiny')")
        cfg = data.get("cascade", {})
        return cls(**{**dict(data), "cascade": cfg if isinstance(cfg, CascadeConfig) else config_from(cfg)})

    @classmethod
    def load(cls, path: str | Path) -> CascadeSpec:
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"no cascade spec at {p}")
        try:
            data = json.loads(p.read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"cascade spec {p} is not valid JSON: {e}") from e
        return cls.from_dict(data)


def build(spec: CascadeSpec, *, batch_size: int = 64) -> CascadeAgent:
    """A CascadeAgent from a spec: models loaded from their directories, the store opened."""
    from distillgym.agents.policies import ExpertAgent, make_agent
    from distillgym.skills.demos import DemoStore

    student = make_agent(spec.student, batch_size=batch_size)
    assert isinstance(student, ModelAgent)
    greedy = SamplingParams(temperature=0.0, max_tokens=spec.cascade.max_tokens)
    teacher: Agent = ExpertAgent() if spec.teacher == "expert" else make_agent(spec.teacher, batch_size=batch_size,
                                                                               sampling=greedy)
    store = DemoStore(spec.demos, retriever=spec.retriever) if spec.demos else None
    return CascadeAgent(student, teacher, store, spec.cascade)


def calibrate(student: ModelAgent, teacher: Agent, store: Any, env: str, tasks: Sequence[int], *,
              ks: Sequence[int] = (1, 3), ns: Sequence[int] = (2, 3), temperatures: Sequence[float] = (0.3, 0.7),
              base: CascadeConfig | None = None, num_envs: int = 16, seed: int = 0,
              env_kwargs: dict[str, Any] | None = None, tolerance: float = 0.0,
              progress: bool = False) -> dict[str, Any]:
    """Choose k, N and temperature on a dev split (`tasks` of the train split, none of them demonstration tasks):
    every grid point plays the tasks; the choice is the cheapest point whose success is at least the teacher's
    minus `tolerance` on the same tasks, else the most successful one. Returns the grid's rows, the teacher's row
    and the chosen config."""
    from dataclasses import replace

    from distillgym.agents.rollout import collect

    base = base or CascadeConfig()
    teacher_cfg = replace(base, mode="teacher")
    rows: list[dict[str, Any]] = []
    teacher_row = cascade_costs(collect(CascadeAgent(student, teacher, store, teacher_cfg), env, list(tasks),
                                        split="train", num_envs=num_envs, seed=seed, env_kwargs=env_kwargs,
                                        progress=progress))
    for k in ks:
        for n in ns:
            for t in temperatures:
                cfg = replace(base, mode="cascade", k=k, n=n, temperature=t)
                eps = collect(CascadeAgent(student, teacher, store, cfg), env, list(tasks), split="train",
                              num_envs=num_envs, seed=seed, env_kwargs=env_kwargs, progress=progress)
                rows.append({"k": k, "n": n, "temperature": t, **cascade_costs(eps)})
    good = [r for r in rows if r["success"] >= teacher_row["success"] - tolerance]
    best = min(good, key=lambda r: r["cost_per_episode"]) if good else max(
        rows, key=lambda r: (r["success"], -r["cost_per_episode"]))
    chosen = replace(base, mode="cascade", k=best["k"], n=best["n"], temperature=best["temperature"])
    return {"rows": rows, "teacher": teacher_row, "chosen": chosen.to_dict(), "met_teacher": bool(good)}
