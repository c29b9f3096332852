"""Evaluation runs, reports, plots and benchmarks against the published anchors."""
