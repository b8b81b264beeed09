"""The double-entry ledger: accounts, entries that are never updated or deleted, the hash
chain that seals them.

Layer 2: imports only ``users`` among the domains (an entry's owner must exist); see
``tests/test_architecture.py``. Queries live in ``repository.py``; ``flows.py`` holds the
use cases of the API's transactions and the CLI's export and verify.
"""
