"""Models, generation backends, prompts, action parsing and expert agents (docs/design.md)."""
