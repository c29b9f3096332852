"""Rollout collection, losses, one file per training algorithm, and the training loop (see DESIGN.md)."""
