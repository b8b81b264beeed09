"""The audit log: who did what to the service's state, from the admin panel, the admin API
or the command line (who, role, when, what, before → after, reason).

Append-only: rows are inserted, never updated or deleted (database triggers refuse it, as
for the ledger). Writers add their row in the same transaction as the change it records.

Layer 0 (the bottom domain layer, like the outbox): it knows nobody's data, so every
adapter and root may record an action. The layering is enforced in
``tests/test_architecture.py``.
"""
