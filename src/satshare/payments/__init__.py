"""Payments: invoices on each rail, settlement into the ledger with the affiliate split,
Stars sales, refunds, and the referral figures over settled payments.

Layer 4: may import every domain below it (users, ledger, subscriptions, affiliates, plans,
rates, notifications), none above (see ``tests/test_architecture.py``).
"""
