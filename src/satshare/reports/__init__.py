"""Read-only views of the ledger: public transparency figures, statements, reports.

Layer 5 (top): imports ledger, payments and users among the domains (see
``tests/test_architecture.py``). Queries that join several domains' tables live in
``repository.py``; ``flows.py`` holds the reads the API and the bot call.
"""
