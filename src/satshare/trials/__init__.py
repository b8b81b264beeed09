"""Free trials: ``plans[].trial_days`` of a plan's channels, once per person and plan.

Owns the ``trials`` table: one row per (person, plan), where the person is the platform
identity (``telegram:<user id>``), not the SatShare user row, so registering again never
earns a second trial. A trial activates the subscription like a payment would — the
channels, the reminder before it ends, the removal after — but no invoice, no ledger entry
and never a commission. Buying during a trial extends from the trial's end.

Layer 3: imports subscriptions, users, plans and the outbox (see
``tests/test_architecture.py``).
"""
