"""API keys: creation, hashing, scopes and revocation.

Layer 0: imports no other domain (see ``tests/test_architecture.py``).
"""
