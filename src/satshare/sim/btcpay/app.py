"""The BTCPay emulator as one Starlette app: :func:`build_app`.

Owns the assembly only: the Greenfield routes by area (``greenfield``), store payouts
(``sim/btcpay_payouts.py``), the checkout page and the ``/_sim`` control API (``control``),
all over one :class:`~satshare.sim.btcpay.emulator.BTCPayEmulator`, which the app keeps as
``app.state.emulator``.
"""

from __future__ import annotations

from starlette.applications import Starlette

from satshare.sim.btcpay.control import ControlRoutes, checkout_route, home_route
from satshare.sim.btcpay.emulator import BTCPayEmulator
from satshare.sim.btcpay.greenfield import (
    InvoiceRoutes,
    RateRoutes,
    WebhookRoutes,
    guard,
    json_body,
)
from satshare.sim.btcpay_payouts import payout_routes


def build_app(emulator: BTCPayEmulator) -> Starlette:
    greenfield = guard(emulator)
    routes = [
        *InvoiceRoutes(emulator).routes(greenfield),
        *WebhookRoutes(emulator).routes(greenfield),
        *RateRoutes(emulator).routes(greenfield),
        home_route(emulator),
        checkout_route(emulator),
        *ControlRoutes(emulator).routes(),
        *payout_routes(emulator.payouts, greenfield, json_body),
    ]
    app = Starlette(routes=routes)
    app.state.emulator = emulator
    return app
