"""Users: registration, referrer (set once), language, referral codes.

Layer 1: imports only the outbox (``notifications``) among the domains (see
``tests/test_architecture.py``). Queries live in ``repository.py``; ``flows.py`` holds the
use cases the API and the bot call (registration, first contact, profile).
"""
