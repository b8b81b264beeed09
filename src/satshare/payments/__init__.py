"""Payments: invoices on each rail, settlement into the ledger with the affiliate split,
Stars sales, refunds, and the referral figures over settled payments.

Layer 4: may import every domain below it (users, ledger, subscriptions, affiliates, plans,
rates, notifications), none above (see ``tests/test_architecture.py``). Queries live in
``repository.py``; ``flows.py`` holds the use cases that span a processor call and the
database, and the reads the adapters need (views of subscriptions, users, checkouts).
"""
