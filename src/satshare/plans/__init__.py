"""Subscription plans: what is sold, at which price, for how long, granting which channels.

Layer 1: imports only ``audit`` among the domains (a plan changed in the admin panel is
written with its audit row); see ``tests/test_architecture.py``. Queries live in
``repository.py``; ``flows.py`` holds the reads, the start-up sync and the panel's changes.
"""
