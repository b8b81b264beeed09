"""Exchange rates: fiat prices turned into sats at a quoted rate.

Layer 0: imports no other domain and queries nothing (see ``tests/test_architecture.py``).
"""
