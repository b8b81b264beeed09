"""Idempotency keys: a repeated request gets the first answer back.

Layer 0: imports no other domain (see ``tests/test_architecture.py``). Queries live in
``repository.py`` (the API's middleware uses them inside its own transaction plumbing);
``flows.py`` holds the jobs' housekeeping.
"""
