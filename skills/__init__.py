"""Skill records, summarizers, the persistent skill store, selection and retrieval (Skill-SD; see docs/skills.md)."""

from distillgym.skills.async_writer import AsyncSummarizer, SummarizerStats
from distillgym.skills.json_repair import parse_skill_json
from distillgym.skills.llm_summarizer import LLMSummarizer
from distillgym.skills.records import Skill, identity_text, task_identity
from distillgym.skills.store import EpisodeSkills, SkillStore, ucb_order
from distillgym.skills.summarize import ExpertSummarizer, episode_id, family_of, task_key, task_key_of

__all__ = [
    "AsyncSummarizer",
    "EpisodeSkills",
    "ExpertSummarizer",
    "LLMSummarizer",
    "Skill",
    "SkillStore",
    "SummarizerStats",
    "episode_id",
    "family_of",
    "identity_text",
    "parse_skill_json",
    "task_identity",
    "task_key",
    "task_key_of",
    "ucb_order",
]
