"""Payouts to affiliates: destinations, the hold-before-send state machine, providers.

Layer 5 (top): imports affiliates, ledger, notifications, payments and users among the
domains (see ``tests/test_architecture.py``). Queries live in ``repository.py``;
``flows.py`` holds the use cases (request, approve, send, reconcile) and the adapters' reads;
``overview.py`` reads everything about one affiliate.
"""
