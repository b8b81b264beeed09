"""Affiliates: the share an affiliate earns (terms, levels, suspensions), balances from the
ledger, link clicks and leaderboard names.

Layer 3: imports ``ledger``, ``users`` and ``audit`` (an admin's change in the panel is
written with its audit row). Figures over payments (paying referrals, the
leaderboard) are in ``satshare.payments.referrals`` and reach ``terms_for`` as a port (see
``tests/test_architecture.py``). Queries live in ``repository.py``; ``flows.py`` holds the
use cases the API, the bot, the CLI and the panel call.
"""
