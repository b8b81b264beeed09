"""The double-entry ledger: accounts, entries that are never updated or deleted, the hash
chain that seals them.

Layer 2: imports only ``users`` among the domains (an entry's owner must exist); see
``tests/test_architecture.py``.
"""
