"""Payouts to affiliates: destinations, the hold-before-send state machine, providers.

Layer 5 (top): imports affiliates, ledger, notifications, payments, subscriptions, users and
webhooks_out among the domains (see ``tests/test_architecture.py``). Queries live in
``repository.py``; ``flows.py`` holds the use cases (request, approve, send, reconcile) and
the adapters' reads; ``overview.py`` reads everything about one affiliate; ``owners.py`` who
owns the users, subscriptions, invoices and payouts a request names (the API's
platform-bound keys, #14).
"""
