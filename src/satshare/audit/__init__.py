"""The audit log: who did what to the service's state, from the admin panel, the admin API
or the command line (who, role, when, what, before → after, reason).

Append-only: rows are inserted, never updated or deleted (database triggers refuse it, as
for the ledger). Writers add their row in the same transaction as the change it records.

The bottom domain layer, under layer 0: it knows nobody's data, so every adapter, root and
domain may record an action, and a domain's flow writes its change's row in the change's own
transaction (``service.Actor``). The layering is enforced in ``tests/test_architecture.py``.
"""
