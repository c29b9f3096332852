"""Gymnasium text environments: one subpackage per family over the shared `core` contract."""
