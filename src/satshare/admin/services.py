"""What the admin panel may use, given to ``admin.app.mount`` by the composition root (the
panel never receives the container), like the API's ``ApiServices``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from starlette.requests import HTTPConnection

from satshare.aftercommit import CommitListener
from satshare.clock import Clock
from satshare.config import Settings
from satshare.db import Database
from satshare.payments.flows import PaymentsContext
from satshare.payments.ports import StarsRefunds
from satshare.payouts.flows import PayoutsContext
from satshare.webhooks_out.flows import WebhooksContext


@dataclass(frozen=True, slots=True)
class AdminServices:
    settings: Settings
    db: Database
    clock: Clock
    payments: PaymentsContext
    payouts: PayoutsContext
    #: Told what the panel's own commits produced (resent access links: outbox rows).
    after_commit: CommitListener
    #: Chains every queued ledger entry now (the sealer's flush), before "Verify now".
    seal_ledger: Callable[[], Awaitable[int]]
    #: Outgoing webhook endpoints (#14): the same context as the API's.
    webhooks: WebhooksContext
    #: Sandbox mode: the sandbox's own login works only then.
    sandbox: bool = False
    #: The running bot, which returns Telegram Stars (refunds); None before it has started
    #: or when this process runs no bot. Asked at each refund: the bot starts after the panel.
    stars_refunds: Callable[[], StarsRefunds | None] = lambda: None


def services_of(connection: HTTPConnection) -> AdminServices:
    found: AdminServices = connection.app.state.admin_services
    return found
