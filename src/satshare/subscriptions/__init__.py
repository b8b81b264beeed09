"""Subscriptions: their states, their periods, and the expiry reminders they are due.

Layer 2: imports the outbox (``notifications``), ``plans`` (a plan's channels) and ``audit``
(an admin's change is written with its audit row) among the domains. API schemas that nest
an invoice live in ``satshare.api.schemas`` (see ``tests/test_architecture.py``). Queries
live in ``repository.py``; ``flows.py`` holds the jobs' expiry and reminders and an admin's
changes (extend, cancel, resend the access links).
"""
