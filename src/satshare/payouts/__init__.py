"""Payouts to affiliates: destinations, the hold-before-send state machine, providers.

Layer 5 (top): imports affiliates, ledger, notifications, payments and users among the
domains (see ``tests/test_architecture.py``).
"""
