"""Watch-only on-chain rail: a fresh address per invoice, payments watched through Esplora.

No processor sits in between: SatShare derives the address from the owner's xpub/descriptor
and reads the chain. Every look recomputes from what Esplora says now, so a transaction that
was replaced (RBF) or re-orged out simply stops counting: nothing is ever counted twice.
Settlement waits for ``min_confirmations``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import httpx

from satshare.clock import Clock
from satshare.db import Database
from satshare.onchain import service
from satshare.payments.ports import (
    InvoiceFlag,
    InvoiceGone,
    InvoiceOrder,
    InvoiceState,
    ProviderError,
    ProviderInvoice,
    WebhookNotice,
)
from satshare.providers.http import HttpAdapter
from satshare.watchonly import WatchOnlyWallet

#: Esplora pages confirmed history 25 at a time; a receive address sees a handful at most.
MAX_PAGES = 40


@dataclass(frozen=True, slots=True)
class AddressRecord:
    address: str
    amount_sats: int
    expires_at: datetime


class AddressStore(Protocol):
    """Where allocated addresses live (the database, in production)."""

    async def allocate(self, reference: str, amount_sats: int, expires_at: datetime) -> str: ...

    async def lookup(self, address: str) -> AddressRecord | None: ...

    async def mark_funded(self, address: str) -> datetime:
        """Record that money to the address was seen; return when it was first seen."""
        ...


@dataclass(frozen=True, slots=True)
class Observed:
    paid_sats: int
    confirmed_sats: int
    txids: tuple[str, ...]


class OnchainProvider(HttpAdapter):
    name = "onchain"
    service = "Esplora"

    def __init__(
        self,
        *,
        esplora_url: str,
        store: AddressStore,
        clock: Clock,
        min_confirmations: int = 1,
        timeout_seconds: float = 10.0,
    ) -> None:
        super().__init__(esplora_url, timeout_seconds=timeout_seconds)
        self.store = store
        self.clock = clock
        self.min_confirmations = min_confirmations

    async def _get(self, path: str) -> httpx.Response:
        response = await self._request("GET", path)
        if response.status_code >= 400:
            raise ProviderError(f"Esplora answered {response.status_code}: {response.text[:200]}")
        return response

    async def create_invoice(self, order: InvoiceOrder) -> ProviderInvoice:
        expires_at = self.clock.now() + timedelta(minutes=order.expiration_minutes)
        address = await self.store.allocate(order.reference, order.amount_sats, expires_at)
        return ProviderInvoice(
            provider=self.name,
            provider_invoice_id=address,
            state=InvoiceState.NEW,
            flag=InvoiceFlag.NONE,
            amount_sats=order.amount_sats,
            paid_sats=0,
            confirmed_paid_sats=0,
            expires_at=expires_at,
            raw_status="unpaid",
            raw_additional_status="None",
            address=address,
        )

    async def observe(self, address: str) -> Observed:
        tip_text = (await self._get("/blocks/tip/height")).text.strip()
        if not tip_text.isdigit():
            raise ProviderError(f"Esplora's tip height is not a number: {tip_text[:40]!r}")
        tip = int(tip_text)
        txs: list[dict[str, Any]] = []
        path = f"/address/{address}/txs"
        for _ in range(MAX_PAGES):
            page = self._json(await self._get(path))
            if not isinstance(page, list):
                raise ProviderError("Esplora's address history is not a list")
            txs += [t for t in page if isinstance(t, dict)]
            confirmed = [
                t for t in page if isinstance(t, dict) and t.get("status", {}).get("confirmed")
            ]
            if len(confirmed) < 25:
                break
            path = f"/address/{address}/txs/chain/{confirmed[-1]['txid']}"
        paid = confirmed_sats = 0
        txids: list[str] = []
        seen: set[str] = set()
        for tx in txs:
            txid = str(tx.get("txid"))
            if txid in seen:
                continue
            seen.add(txid)
            value = sum(
                int(out.get("value", 0))
                for out in tx.get("vout") or []
                if isinstance(out, dict) and out.get("scriptpubkey_address") == address
            )
            if value <= 0:
                continue
            paid += value
            status = tx.get("status") or {}
            if status.get("confirmed"):
                confirmations = tip - int(status["block_height"]) + 1
                if confirmations >= self.min_confirmations:
                    confirmed_sats += value
                    txids.append(txid)
            elif self.min_confirmations == 0:
                confirmed_sats += value
                txids.append(txid)
        return Observed(paid_sats=paid, confirmed_sats=confirmed_sats, txids=tuple(txids))

    async def fetch_invoice(self, provider_invoice_id: str) -> ProviderInvoice:
        record = await self.store.lookup(provider_invoice_id)
        if record is None:
            raise InvoiceGone("no such on-chain address was issued")
        observed = await self.observe(record.address)
        now = self.clock.now()
        late = False
        if observed.paid_sats > 0:
            first_seen = await self.store.mark_funded(record.address)
            late = first_seen > record.expires_at
        expired = now > record.expires_at
        amount = record.amount_sats
        if late:
            state, flag = InvoiceState.EXPIRED, InvoiceFlag.PAID_LATE
        elif observed.confirmed_sats >= amount:
            state = InvoiceState.SETTLED
            flag = InvoiceFlag.PAID_OVER if observed.paid_sats > amount else InvoiceFlag.NONE
        elif observed.paid_sats >= amount:
            state = InvoiceState.PROCESSING
            flag = InvoiceFlag.PAID_OVER if observed.paid_sats > amount else InvoiceFlag.NONE
        else:
            state = InvoiceState.EXPIRED if expired else InvoiceState.NEW
            flag = InvoiceFlag.PAID_PARTIAL if observed.paid_sats > 0 else InvoiceFlag.NONE
        return ProviderInvoice(
            provider=self.name,
            provider_invoice_id=record.address,
            state=state,
            flag=flag,
            amount_sats=amount,
            paid_sats=observed.paid_sats,
            confirmed_paid_sats=observed.confirmed_sats,
            expires_at=record.expires_at,
            raw_status=state.value,
            raw_additional_status=flag.value,
            address=record.address,
            proof=",".join(observed.txids) or None,
        )

    def verify_webhook(
        self, raw_body: bytes, headers: Mapping[str, str], query: Mapping[str, str]
    ) -> bool:
        return False  # nothing notifies us: the watcher (reconciler) polls Esplora

    def parse_webhook(self, raw_body: bytes) -> WebhookNotice | None:
        return None


class DatabaseAddressStore:
    def __init__(self, db: Database, wallet: WatchOnlyWallet, clock: Clock, gap_limit: int) -> None:
        self.db = db
        self.wallet = wallet
        self.clock = clock
        self.gap_limit = gap_limit

    async def allocate(self, reference: str, amount_sats: int, expires_at: datetime) -> str:
        async with self.db.transaction() as session:
            allocated = await service.allocate(
                session,
                self.wallet,
                invoice_ref=reference,
                amount_sats=amount_sats,
                expires_at=expires_at,
                gap_limit=self.gap_limit,
                now=self.clock.now(),
            )
        return allocated.address

    async def lookup(self, address: str) -> AddressRecord | None:
        async with self.db.reading() as session:
            row = await service.lookup(session, address)
        if row is None:
            return None
        return AddressRecord(row.address, row.amount_sats, row.expires_at)

    async def mark_funded(self, address: str) -> datetime:
        async with self.db.reading() as session:
            row = await service.lookup(session, address)
            if row is not None and row.funded_at is not None:
                return row.funded_at
        now = self.clock.now()
        async with self.db.transaction() as session:
            await service.mark_funded(session, address, now)
            row = await service.lookup(session, address)
        return row.funded_at if row is not None and row.funded_at is not None else now
