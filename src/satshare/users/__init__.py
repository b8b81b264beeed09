"""Users: registration, referrer (set once), language, referral codes.

Layer 1: imports only the outbox (``notifications``) among the domains (see
``tests/test_architecture.py``).
"""
