"""Models, generation backends, prompts, action parsing and expert agents (see DESIGN.md)."""
