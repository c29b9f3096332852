"""Simulated AppWorld-style apps (mail, contacts, calendar, payments, shop, ...) over one JSON state dict."""
