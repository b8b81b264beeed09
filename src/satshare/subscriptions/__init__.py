"""Subscriptions: their states, their periods, and the expiry reminders they are due.

Layer 2: imports only the outbox (``notifications``) among the domains. API schemas that
nest an invoice live in ``satshare.api.schemas`` (see ``tests/test_architecture.py``).
Queries live in ``repository.py``; ``flows.py`` holds the jobs' expiry and reminders.
"""
