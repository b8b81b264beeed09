"""Address allocation for the watch-only wallet: fresh, stored, within the gap limit."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from satshare.errors import Conflict
from satshare.onchain import repository
from satshare.onchain.models import OnchainAddress
from satshare.watchonly import WatchOnlyWallet


@dataclass(frozen=True, slots=True)
class Allocated:
    index: int
    address: str


class GapLimitReached(Conflict):
    code = "gap-limit-reached"


async def allocate(
    session: AsyncSession,
    wallet: WatchOnlyWallet,
    *,
    invoice_ref: str,
    amount_sats: int,
    expires_at: datetime,
    gap_limit: int,
    now: datetime,
) -> Allocated:
    """The next unused index. Refuses to go more than ``gap_limit`` past the last funded
    address: a wallet restored from its seed would not look that far, and would miss the coins.
    Two concurrent allocations cannot take one index (unique constraint)."""
    last = await repository.last_index(session, wallet.id)
    last_funded = await repository.last_index(session, wallet.id, funded=True)
    index = 0 if last is None else last + 1
    first_unfunded = 0 if last_funded is None else last_funded + 1
    if index - first_unfunded >= gap_limit:
        raise GapLimitReached(
            f"the on-chain wallet already has {gap_limit} unused addresses in a row; raise "
            "onchain.gap_limit (and the gap limit of the wallet that holds the keys) or wait "
            "for a payment before offering more on-chain invoices",
        )
    address = wallet.address(index)
    session.add(
        OnchainAddress(
            wallet_id=wallet.id,
            address_index=index,
            address=address,
            invoice_ref=invoice_ref,
            amount_sats=amount_sats,
            expires_at=expires_at,
            created_at=now,
        )
    )
    await session.flush()
    return Allocated(index=index, address=address)


async def lookup(session: AsyncSession, address: str) -> OnchainAddress | None:
    return await repository.by_address(session, address)


async def mark_funded(session: AsyncSession, address: str, now: datetime) -> None:
    row = await lookup(session, address)
    if row is not None and row.funded_at is None:
        row.funded_at = now
        await session.flush()
