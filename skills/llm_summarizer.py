"""`LLMSummarizer`: a skill written by a language model (a local model, a generation backend or an
OpenAI-compatible server), accepted only when its reply parses into all three fields."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from distillgym.skills.json_repair import parse_skill_json
from distillgym.skills.records import Skill, task_identity
from distillgym.skills.summarize import compress_steps, episode_id, family_of, plan_of
from distillgym.types import Episode

log = logging.getLogger(__name__)

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
        plan = plan_of(episode) if self.include_privileged else None
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
