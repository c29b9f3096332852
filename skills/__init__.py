"""Skill records, summarizers, the persistent skill store, selection and retrieval (see DESIGN.md)."""
