"""Subscription plans: what is sold, at which price, for how long, granting which channels.

Layer 0: imports no other domain (see ``tests/test_architecture.py``). Queries live in
``repository.py``; ``flows.py`` holds the reads and the start-up sync.
"""
