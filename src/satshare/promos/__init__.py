"""Promo codes: a percent off, fixed sats off, or extra days, with their limits and uses.

Owns ``promo_codes`` and ``promo_redemptions``. A use is a redemption row: reserved (with the
code's row locked, so ``max_uses`` holds however many buyers race for the last use) before
the invoice is created, tied to the invoice once it exists, ``used`` when it settles and
``released`` when it expires unpaid (the use is free again). The discounted price is what the
invoice bills, so the split and every report use the amount actually paid.

Layer 3: imports plans and the outbox only; payments (layer 4) calls it while checking out
and settling, and tells it whether the buyer ever paid (see ``tests/test_architecture.py``).
"""
