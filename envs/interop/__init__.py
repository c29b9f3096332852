"""Environments from other projects as distillgym environments (GEM: envs/interop/gem.py)."""
