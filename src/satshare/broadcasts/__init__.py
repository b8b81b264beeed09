"""Broadcasts: a message to a segment of the bot's users, delivered once to each.

Owns the ``broadcasts`` and ``broadcast_recipients`` tables: the composed message (text per
language, optional photo and URL buttons), its segment (who gets it: ``segments``), its
schedule and state, and one row per recipient (pending / sending / sent / blocked / failed),
so a crash or a restart resumes where delivery stopped and nobody gets the message twice.
Delivery itself (Telegram, the flood limits) is the bot adapter's (``bot/broadcasts.py``);
this package decides what to send to whom and records what happened.

Layer 5: reads users, subscriptions, plans and payments to select a segment (see
``tests/test_architecture.py``).
"""
