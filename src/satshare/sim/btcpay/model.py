"""The records of the BTCPay emulator: invoices and their payments, webhooks and deliveries.

Owns the Greenfield vocabulary the emulator and its HTTP layer share: amounts in sats shown as
BTC strings, the confirmations each speed policy needs, BTCPay-style ids, and the records with
their Greenfield JSON where it is theirs alone (a webhook, a delivery).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

SATS_PER_BTC = 100_000_000
CONFIRMATIONS_NEEDED = {"HighSpeed": 0, "MediumSpeed": 1, "LowMediumSpeed": 2, "LowSpeed": 6}
_ID_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def new_id(length: int = 22) -> str:
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(length))


def btc(sats: int) -> str:
    sign = "-" if sats < 0 else ""
    whole, frac = divmod(abs(sats), SATS_PER_BTC)
    return f"{sign}{whole}.{frac:08d}"


@dataclass
class SimPayment:
    id: str
    method: str  # BTC-LN | BTC-CHAIN
    sats: int
    received: int
    destination: str
    confirmations: int = 0
    invalid: bool = False


@dataclass
class SimInvoice:
    id: str
    store_id: str
    amount: str
    currency: str
    amount_sats: int
    metadata: dict[str, Any]
    checkout: dict[str, Any]
    created: int
    expiration: int
    monitoring_expiration: int
    speed_policy: str
    methods: list[str]
    address: str | None
    bolt11: str | None
    payment_hash: str | None
    status: str = "New"
    additional_status: str = "None"
    payments: list[SimPayment] = field(default_factory=list)
    marked: bool = False
    archived: bool = False

    def paid_sats(self) -> int:
        return sum(p.sats for p in self.payments if not p.invalid)

    def confirmed_sats(self) -> int:
        needed = CONFIRMATIONS_NEEDED.get(self.speed_policy, 1)
        return sum(
            p.sats
            for p in self.payments
            if not p.invalid and (p.method == "BTC-LN" or p.confirmations >= needed)
        )


@dataclass
class SimWebhook:
    id: str
    store_id: str
    url: str
    secret: str
    enabled: bool = True
    automatic_redelivery: bool = True
    everything: bool = True
    specific_events: list[str] = field(default_factory=list)

    def wants(self, event_type: str) -> bool:
        return self.enabled and (self.everything or event_type in self.specific_events)

    def as_json(self, *, with_secret: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "enabled": self.enabled,
            "automaticRedelivery": self.automatic_redelivery,
            "url": self.url,
            "authorizedEvents": {
                "everything": self.everything,
                "specificEvents": self.specific_events,
            },
        }
        if with_secret:
            data["secret"] = self.secret
        return data


@dataclass
class SimDelivery:
    id: str
    webhook_id: str
    event: dict[str, Any]
    body: bytes
    timestamp: int
    status: str = "Pending"  # Pending | HttpSuccess | HttpError | Failed | Dropped
    http_code: int | None = None
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "timestamp": self.timestamp,
            "httpCode": self.http_code,
            "errorMessage": self.error,
            "status": self.status,
        }
