"""Adapters over real HTTP for the outside systems: payment rails
(``payments.ports.PaymentProvider``), payout providers and LNURL
(``payouts.ports``), rate sources (``rates.ports.RateSource``).

An adapter: imports domains' ports and models, the kernel and ``config``, never another
adapter. ``registry.py`` builds the ones the settings name (no sandbox branch: the sandbox
hands over a settings overlay instead).
"""
