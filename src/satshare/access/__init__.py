"""Channel access: who is entitled to which chat, from their active subscriptions.

Layer 5 (top): imports ``plans``, ``subscriptions``, ``users``, and for the sandbox page's
summary ``affiliates`` and ``payments`` (see ``tests/test_architecture.py``). Queries live in
``repository.py``; ``flows.py`` holds the use cases the bot and the pages call.
"""
