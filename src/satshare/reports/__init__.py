"""Read-only views of the ledger: public transparency figures, statements, reports.

Layer 6 (top): reads every domain below it — ledger, payments, users, subscriptions,
payouts (the admin dashboard's counts) — and nothing imports it but adapters (see
``tests/test_architecture.py``). Queries that join several domains' tables live in
``repository.py``; ``flows.py`` holds the reads the API, the bot and the admin panel call.
"""
