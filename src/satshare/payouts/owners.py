"""Who owns what a request names, for the API's guard of platform-bound keys (#14).

A read on the top layer because it looks at every user-owned resource: users,
subscriptions, invoices and payouts, in one unit of work.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from satshare.db import Database
from satshare.payments import repository as payments_repo
from satshare.payouts import repository
from satshare.subscriptions import repository as subscriptions_repo
from satshare.users import repository as users_repo


@dataclass(frozen=True, slots=True)
class Owners:
    """The owners of the named resources (None: no such resource) and the platform of every
    user named or owning (absent: no such user)."""

    subscription: int | None
    payout: int | None
    invoice: int | None
    platforms: dict[int, str]

    def on(self, user_id: int, platform: str) -> bool:
        """Is ``user_id`` a user of ``platform``?"""
        return self.platforms.get(user_id) == platform


async def owners(
    db: Database,
    *,
    user_ids: Iterable[int],
    subscription_id: int | None = None,
    payout_id: int | None = None,
    invoice_id: str | None = None,
) -> Owners:
    async with db.reading() as session:
        subscription = payout = invoice = None
        if subscription_id is not None:
            row = await subscriptions_repo.get(session, subscription_id)
            subscription = row.user_id if row is not None else None
        if payout_id is not None:
            found = await repository.get(session, payout_id)
            payout = found.user_id if found is not None else None
        if invoice_id is not None:
            bill = await payments_repo.get_invoice(session, invoice_id)
            invoice = bill.user_id if bill is not None else None
        platforms: dict[int, str] = {}
        for user_id in {*user_ids, *(u for u in (subscription, payout, invoice) if u is not None)}:
            user = await users_repo.get(session, user_id)
            if user is not None:
                platforms[user_id] = user.platform
    return Owners(subscription, payout, invoice, platforms)
