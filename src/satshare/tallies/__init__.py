"""Tallies: counts kept as they change, for reads that must not count rows (the admin
dashboard's subscriptions active now, subscribers, MRR terms, payouts per state, and
subscriptions whose paid time ends on each day).

Layer 0: imports no other domain. The writers (subscriptions, payouts) say what changed in
their own terms, as keyed changes, in the transaction of the change; the reports read the
totals and add what time alone changes. See ``tests/test_architecture.py``.
"""
