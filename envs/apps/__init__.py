"""Simulated AppWorld-style apps (mail, contacts, calendar, payments, shop, ...) over one JSON state dict."""

from distillgym.envs.apps.env import AppsEnv

__all__ = ["AppsEnv"]
