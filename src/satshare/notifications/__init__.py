"""The outbox: messages queued in the same transaction as the change that causes them,
sent after commit by the bot's dispatcher.

Layer 0 (the bottom domain layer): imports no other domain, so every domain may queue a
message. The layering is stated and enforced in ``tests/test_architecture.py``. Queries live
in ``repository.py``; ``flows.py`` holds what the sender calls (claim, mark, fan out).
"""
