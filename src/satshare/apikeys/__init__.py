"""API keys: creation, hashing, scopes and revocation.

Layer 0: imports no other domain (see ``tests/test_architecture.py``). Queries live in
``repository.py``; ``flows.py`` holds what the API's authentication and the CLI call.
"""
