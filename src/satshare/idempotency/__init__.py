"""Idempotency keys: a repeated request gets the first answer back.

Layer 0: imports no other domain (see ``tests/test_architecture.py``).
"""
