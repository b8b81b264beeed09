"""Subscription plans: what is sold, at which price, for how long, granting which channels.

Layer 0: imports no other domain (see ``tests/test_architecture.py``).
"""
