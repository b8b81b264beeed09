"""Channel access: who is entitled to which chat, from their active subscriptions.

Layer 5 (top): imports ``plans``, ``subscriptions`` and ``users`` (see
``tests/test_architecture.py``).
"""
