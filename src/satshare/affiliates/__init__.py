"""Affiliates: the share an affiliate earns (terms, levels, suspensions), balances from the
ledger, link clicks and leaderboard names.

Layer 3: imports ``ledger`` and ``users``. Figures over payments (paying referrals, the
leaderboard) are in ``satshare.payments.referrals`` and reach ``terms_for`` as a port (see
``tests/test_architecture.py``). Queries live in ``repository.py``; ``flows.py`` holds the
use cases the API, the bot and the CLI call.
"""
