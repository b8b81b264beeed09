"""Use cases that span a processor call and our database.

No database transaction is ever held open while waiting on a processor: on SQLite that
would block every other writer, on PostgreSQL it would pin a connection and row locks.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from satshare import faultpoints, logs, metrics
from satshare.affiliates import service as affiliates
from satshare.affiliates.service import Balance
from satshare.affiliates.stats import ReferralStats
from satshare.aftercommit import ENTRIES_AND_MESSAGES, CommitListener, NoListener
from satshare.audit.flows import Actor, audited
from satshare.clock import Clock
from satshare.db import Database
from satshare.errors import (
    BadRequest,
    DomainError,
    InvalidRequest,
    NotFound,
    ProviderUnavailable,
    RateUnavailable,
    RetryLater,
    ServiceUnavailable,
    Unauthorized,
)
from satshare.payments import inbox, offers, referrals, repository, service
from satshare.payments.models import Invoice, InvoiceStatus
from satshare.payments.ports import (
    InvoiceGone,
    InvoiceOrder,
    PaymentProvider,
    ProviderError,
    ProviderInvoice,
    StarsRefunds,
    WebhookNotice,
)
from satshare.plans import service as plans
from satshare.plans.models import Plan
from satshare.promos import service as promos
from satshare.rates import service as rates
from satshare.rates.ports import RateSource
from satshare.security import random_token
from satshare.subscriptions import repository as subscriptions_repo
from satshare.subscriptions import service as subscriptions
from satshare.subscriptions.models import Subscription, SubscriptionStatus
from satshare.users import repository as users_repo
from satshare.users import service as users
from satshare.users.models import User

log = logging.getLogger(__name__)

#: What a processor is told to wait before redelivering a notification we could not finish.
RETRY_AFTER_SECONDS = 10
RECONCILE_BATCH = 500
RECONCILE_CONCURRENCY = 8


@dataclass
class PaymentsContext:
    db: Database
    providers: Mapping[str, PaymentProvider]
    default_provider: str
    clock: Clock
    policy: service.SettlementPolicy
    invoice_expiration_minutes: int
    late_payment_window: timedelta
    public_base_url: str
    #: Notifications being handled in this process right now: a concurrent copy of one is
    #: answered at once instead of queueing for the database (other processes are kept out
    #: by the inbox's unique key and its claim).
    in_flight: inbox.LocalClaims = field(default_factory=inbox.LocalClaims)
    #: Told after a settlement commits (its entries to chain, its messages to send).
    after_commit: CommitListener = field(default_factory=NoListener)
    #: Telegram Stars: sold by the bot, not through a processor.
    stars_enabled: bool = False
    sats_per_star: int | None = None
    #: Prices fiat-priced plans; quotes older than rate_max_age are refused.
    rates: RateSource | None = None
    rate_max_age: timedelta = timedelta(minutes=10)
    #: Extra days on a referred buyer's first paid subscription (affiliate.referee_bonus_days).
    referee_bonus_days: int = 0
    #: How many invoices one reconcile run re-fetches at most.
    reconcile_batch: int = RECONCILE_BATCH
    #: Expired invoices (still inside the late-payment window) are re-fetched this often;
    #: invoices that can still be paid, at every run.
    recheck_expired: timedelta = timedelta(minutes=5)

    def provider(self, name: str | None = None) -> PaymentProvider:
        chosen = name or self.default_provider
        try:
            return self.providers[chosen]
        except KeyError:
            enabled = ", ".join(sorted(self.providers)) or "none"
            raise InvalidRequest(
                f"payment provider {chosen!r} is not enabled; enabled: {enabled}", field="provider"
            ) from None

    def rails_for(self, plan_providers: Sequence[str] | None) -> list[str]:
        """The enabled processor rails a plan may be paid with, default rail first (Telegram
        Stars is not a processor: the bot sells it)."""
        allowed = [n for n in self.providers if plan_providers is None or n in plan_providers]
        return sorted(allowed, key=lambda name: name != self.default_provider)

    def webhook_url(self, provider: str) -> str:
        return f"{self.public_base_url}/api/v1/webhooks/{provider}"

    def checkout_url(self, invoice_id: str) -> str:
        return f"{self.public_base_url}/pay/{invoice_id}"


@dataclass(frozen=True, slots=True)
class Checkout:
    subscription: Subscription
    invoice: Invoice
    created_subscription: bool


async def start_checkout(
    ctx: PaymentsContext,
    *,
    user_id: int,
    plan_id: str,
    provider_name: str | None = None,
    promo_code: str | None = None,
    replacing: str | None = None,
) -> Checkout:
    """An invoice for the plan at the processor. ``replacing``: the open invoice the buyer
    replaces on the checkout page (another rail or promo code); its promo use goes back."""
    async with ctx.db.reading() as session:
        user = await users_repo.get(session, user_id)
        if user is None:
            raise InvalidRequest(f"user_id {user_id} does not exist", field="user_id")
        plan = await plans.require_purchasable(session, plan_id)
        plan_title, price, days = plan.title, plan.price_sats, plan.duration_days
        fiat_amount, fiat_currency = plan.fiat_amount, plan.fiat_currency
        rails = ctx.rails_for(plan.providers)
    if provider_name is not None:
        ctx.provider(provider_name)  # enabled at all?
        if provider_name not in rails:
            raise InvalidRequest(
                f"plan {plan_id!r} cannot be paid with {provider_name}; it accepts: "
                f"{', '.join(rails) or 'nothing enabled'}",
                field="provider",
            )
    elif not rails:
        raise InvalidRequest(f"no enabled payment rail may sell plan {plan_id!r}", field="provider")
    provider = ctx.provider(provider_name or rails[0])
    quote = None
    if price is None:
        assert fiat_amount is not None and fiat_currency is not None
        if ctx.rates is None:
            raise RateUnavailable(
                f"plan {plan_id!r} is priced in {fiat_currency}: set rates.source"
            )
        priced = await rates.price_in_sats(
            ctx.rates,
            Decimal(fiat_amount),
            fiat_currency,
            now=ctx.clock.now(),
            max_age=ctx.rate_max_age,
        )
        price, quote = priced.sats, priced.quote
    offer = await offers.make_offer(
        ctx.db,
        user_id=user.id,
        referred=user.referrer_id is not None,
        plan_id=plan_id,
        price_sats=price,
        promo_code=promo_code,
        referee_bonus_days=ctx.referee_bonus_days,
        now=ctx.clock.now(),
        replacing=replacing,
    )
    price = offer.price_sats
    reference = "inv_" + random_token(16)
    order = InvoiceOrder(
        reference=reference,
        amount_sats=price,
        description=f"{plan_title} ({days} days)",
        expiration_minutes=ctx.invoice_expiration_minutes,
        metadata={
            "orderId": reference,
            "satshareUserId": user.id,
            "satsharePlanId": plan_id,
            "itemDesc": plan_title,
        },
        webhook_url=ctx.webhook_url(provider.name),
    )
    try:
        remote = await provider.create_invoice(order)
    except ProviderError as exc:
        await offers.withdraw(ctx.db, offer, ctx.clock.now())
        raise ProviderUnavailable(
            f"could not create the invoice at {provider.name}: {exc}"
        ) from exc
    now = ctx.clock.now()
    async with ctx.db.transaction() as session:
        existing = await subscriptions_repo.list_subscriptions(
            session, limit=1, user_id=user_id, plan_id=plan_id
        )
        subscription = await subscriptions_repo.get_or_create(session, user_id, plan_id, now)
        invoice = Invoice(
            id=reference,
            provider=provider.name,
            provider_invoice_id=remote.provider_invoice_id,
            subscription_id=subscription.id,
            user_id=user_id,
            plan_id=plan_id,
            amount_sats=price,
            paid_sats=remote.paid_sats,
            status=InvoiceStatus(remote.state),
            provider_status=remote.raw_status,
            provider_additional_status=remote.raw_additional_status,
            checkout_link=remote.checkout_link,
            payment_request=remote.payment_request,
            address=remote.address,
            fiat_amount=fiat_amount if quote else None,
            fiat_currency=fiat_currency if quote else None,
            rate=str(quote.btc_price) if quote else None,
            rate_source=quote.source if quote else None,
            rate_at=quote.at if quote else None,
            expires_at=remote.expires_at,
            created_at=now,
            updated_at=now,
        )
        offer.stamp(invoice)
        session.add(invoice)
        await session.flush()
        if offer.reservation is not None:
            await promos.attach(session, offer.reservation, invoice.id, now)
    return Checkout(subscription=subscription, invoice=invoice, created_subscription=not existing)


@dataclass(frozen=True, slots=True)
class WebhookResult:
    status: str  # settled | updated | unchanged | already_settled | duplicate | ignored | mismatch
    invoice_id: str | None = None
    detail: str | None = None


async def receive_webhook(
    ctx: PaymentsContext,
    provider_name: str,
    raw_body: bytes,
    headers: Mapping[str, str],
    query: Mapping[str, str] | None = None,
) -> WebhookResult:
    provider = ctx.providers.get(provider_name)
    if provider is None:
        raise NotFound(f"no webhook receiver for provider {provider_name!r} (is it enabled?)")
    # Authenticity first, on the raw bytes, before anything is parsed or written.
    if not provider.verify_webhook(raw_body, headers, query or {}):
        raise Unauthorized("webhook signature missing or invalid")
    try:
        notice = provider.parse_webhook(raw_body)
    except ValueError as exc:
        raise BadRequest(str(exc)) from exc
    if notice is None:
        return WebhookResult("ignored", detail="event type not handled")
    return await _handle_notice(ctx, provider, notice, raw_body)


def _in_progress() -> RetryLater:
    # Not a 2xx: the processor must keep redelivering until the holder has committed (then a
    # redelivery is a true duplicate) or died (then its claim is taken over).
    return RetryLater(
        "this notification is being handled by another request; send it again shortly",
        retry_after_seconds=RETRY_AFTER_SECONDS,
    )


async def _handle_notice(
    ctx: PaymentsContext, provider: PaymentProvider, notice: WebhookNotice, raw_body: bytes
) -> WebhookResult:
    """A verified notification through the inbox (``payments.inbox``: duplicate, busy or
    claimed), then re-fetch and settle. Acknowledged only once its effect is committed."""
    now = ctx.clock.now()
    key = inbox.key_of(provider.name, notice)
    async with ctx.db.each_statement_alone(write=False) as session:
        found = await repository.invoice_and_delivery(session, *key)
    if found is None:
        return WebhookResult("ignored", detail="not an invoice issued by this SatShare")
    invoice_id, delivery = found
    seen = inbox.seen(delivery, now)
    if seen.verdict is inbox.Verdict.DUPLICATE:
        return WebhookResult("duplicate", invoice_id, f"already handled: {seen.outcome}")
    if seen.verdict is inbox.Verdict.BUSY:
        raise _in_progress()
    with ctx.in_flight.hold(key) as ours:
        if not ours:
            raise _in_progress()  # a copy is being handled in this process: no need to queue
        # Each of the claim's statements is safe alone (an insert that skips a duplicate,
        # a take-over that checks the claim is still stale), so none needs a transaction.
        async with ctx.db.each_statement_alone(write=True) as session:
            claimed = await inbox.claim(
                session,
                key,
                delivery_id=notice.delivery_id,
                payload=raw_body.decode("utf-8", errors="replace"),
                now=now,
            )
        if claimed.verdict is inbox.Verdict.DUPLICATE:
            return WebhookResult("duplicate", invoice_id, f"already handled: {claimed.outcome}")
        if claimed.verdict is not inbox.Verdict.CLAIMED:
            raise _in_progress()
        assert claimed.row_id is not None
        return await _refetch_and_apply(ctx, provider, notice, invoice_id, claimed.row_id)


async def _refetch_and_apply(
    ctx: PaymentsContext,
    provider: PaymentProvider,
    notice: WebhookNotice,
    invoice_id: str,
    delivery_row_id: int,
) -> WebhookResult:
    faultpoints.reached("settle.after_claim")
    try:
        observed = await provider.fetch_invoice(notice.provider_invoice_id)
    except InvoiceGone:
        outcome = await _gone(ctx, invoice_id, delivery_row_id)
        return WebhookResult(outcome.value, invoice_id, "the processor no longer knows it")
    except ProviderError as exc:
        async with ctx.db.transaction() as session:
            await inbox.release(session, delivery_row_id)
        raise ProviderUnavailable(
            f"could not re-fetch invoice {notice.provider_invoice_id} from {provider.name}: {exc}"
        ) from exc
    faultpoints.reached("settle.after_refetch")
    outcome = await apply_fetched(ctx, invoice_id, observed, delivery_row_id)
    if outcome is service.Outcome.UNCHANGED and notice.claims_settlement:
        raise RetryLater(
            f"{provider.name} does not show invoice {notice.provider_invoice_id} settled yet; "
            "send this notification again later",
            retry_after_seconds=RETRY_AFTER_SECONDS,
        )
    return WebhookResult(outcome.value, invoice_id)


async def apply_fetched(
    ctx: PaymentsContext,
    invoice_id: str,
    observed: ProviderInvoice,
    delivery_row_id: int | None = None,
) -> service.Outcome:
    """Apply what the processor answered about one of our invoices (the re-fetch, or the
    reconciler's fetch) in one transaction, with its inbox row (``delivery_row_id``) marked
    handled in it. ``bench/settle_tx.py`` times this alone."""
    with logs.bound(invoice_id=invoice_id):  # every log line of the settlement names it
        return await _apply_observation(ctx, invoice_id, observed, delivery_row_id)


async def _apply_observation(
    ctx: PaymentsContext,
    invoice_id: str,
    observed: ProviderInvoice,
    delivery_row_id: int | None,
) -> service.Outcome:
    now = ctx.clock.now()
    try:
        async with ctx.db.transaction() as session:
            outcome = await service.apply_observation(
                session, invoice_id, observed, ctx.policy, now
            )
            if delivery_row_id is not None:
                await inbox.mark_handled(
                    session,
                    delivery_row_id,
                    outcome.value,
                    changed=outcome is not service.Outcome.UNCHANGED,
                    now=now,
                )
            faultpoints.reached("settle.before_commit")
    except IntegrityError:
        # Another process settled it between our lock and our insert (unique keys held).
        log.info("invoice %s settled concurrently elsewhere", invoice_id)
        outcome = service.Outcome.ALREADY_SETTLED
        if delivery_row_id is not None:
            async with ctx.db.transaction() as session:
                await inbox.mark_handled(
                    session, delivery_row_id, outcome.value, changed=True, now=now
                )
    faultpoints.reached("settle.after_commit")
    metrics.settled(observed.provider, outcome.value)
    if outcome is service.Outcome.SETTLED:
        log.info("invoice %s settled on %s", invoice_id, observed.provider)
        ctx.after_commit.committed(ENTRIES_AND_MESSAGES)
    return outcome


async def _gone(
    ctx: PaymentsContext, invoice_id: str, delivery_row_id: int | None = None
) -> service.Outcome:
    now = ctx.clock.now()
    async with ctx.db.transaction() as session:
        outcome = await service.mark_gone(session, invoice_id, now)
        if delivery_row_id is not None:
            await inbox.mark_handled(session, delivery_row_id, "gone", changed=True, now=now)
    return outcome


async def refresh_invoice(ctx: PaymentsContext, invoice_id: str) -> service.Outcome:
    """Ask the processor about one invoice and apply the answer."""
    async with ctx.db.reading() as session:
        invoice = await repository.get_invoice(session, invoice_id)
    if invoice is None:
        raise NotFound(f"invoice {invoice_id} does not exist")
    if invoice.status is InvoiceStatus.SETTLED:
        return service.Outcome.ALREADY_SETTLED
    provider = ctx.provider(invoice.provider)
    try:
        observed = await provider.fetch_invoice(invoice.provider_invoice_id)
    except InvoiceGone:
        return await _gone(ctx, invoice_id)
    except ProviderError as exc:
        raise ProviderUnavailable(f"could not fetch invoice from {provider.name}: {exc}") from exc
    return await apply_fetched(ctx, invoice_id, observed)


@dataclass
class ReconcileReport:
    checked: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def as_json(self) -> str:
        return json.dumps(
            {"checked": self.checked, "outcomes": self.outcomes, "errors": self.errors}
        )


async def reconcile(ctx: PaymentsContext) -> ReconcileReport:
    """Re-fetch open invoices so a lost webhook only delays settlement."""
    now = ctx.clock.now()
    async with ctx.db.transaction() as session:
        due = await repository.invoices_to_reconcile(
            session,
            providers=list(ctx.providers),
            now=now,
            late_after=now - ctx.late_payment_window,
            limit=ctx.reconcile_batch,
        )
        # Scheduled before fetching, so the next run (here or in another process) moves on
        # to the invoices that have waited longest instead of taking these again.
        await repository.schedule_checks(session, [i for i, payable in due if payable], now)
        await repository.schedule_checks(
            session, [i for i, payable in due if not payable], now + ctx.recheck_expired
        )
    targets = [(invoice_id, None) for invoice_id, _ in due]
    report = ReconcileReport()
    gate = asyncio.Semaphore(RECONCILE_CONCURRENCY)

    async def one(invoice_id: str) -> None:
        async with gate:
            try:
                outcome = await refresh_invoice(ctx, invoice_id)
            except (ProviderUnavailable, NotFound) as exc:
                report.errors.append(f"{invoice_id}: {exc}")
                return
            report.checked += 1
            report.outcomes[outcome.value] = report.outcomes.get(outcome.value, 0) + 1

    await asyncio.gather(*(one(invoice_id) for invoice_id, _ in targets))
    return report


def stars_allowed(
    ctx: PaymentsContext, price_stars: int | None, providers: Sequence[str] | None
) -> bool:
    return (
        ctx.stars_enabled
        and price_stars is not None
        and (providers is None or "stars" in providers)
    )


async def create_stars_invoice(ctx: PaymentsContext, *, user_id: int, plan_id: str) -> Invoice:
    """An invoice in Telegram Stars; the bot hands it to Telegram (sendInvoice or an invoice
    link) with our invoice id as its payload."""
    now = ctx.clock.now()
    async with ctx.db.transaction() as session:
        if await users_repo.get(session, user_id) is None:
            raise InvalidRequest(f"user_id {user_id} does not exist", field="user_id")
        plan = await plans.require_purchasable(session, plan_id)
        if not stars_allowed(ctx, plan.price_stars, plan.providers):
            raise InvalidRequest(
                f"plan {plan_id!r} is not sold for Telegram Stars", field="provider"
            )
        assert plan.price_stars is not None
        subscription = await subscriptions_repo.get_or_create(session, user_id, plan_id, now)
        reference = "inv_" + random_token(16)
        invoice = Invoice(
            id=reference,
            provider="stars",
            provider_invoice_id=reference,
            subscription_id=subscription.id,
            user_id=user_id,
            plan_id=plan_id,
            amount_sats=0,
            currency="XTR",
            amount_stars=plan.price_stars,
            paid_sats=0,
            status=InvoiceStatus.NEW,
            provider_status="New",
            provider_additional_status="None",
            expires_at=now + timedelta(minutes=ctx.invoice_expiration_minutes),
            created_at=now,
            updated_at=now,
        )
        session.add(invoice)
        await session.flush()
    return invoice


async def check_stars_checkout(
    ctx: PaymentsContext, invoice_id: str, currency: str, total_amount: int
) -> str | None:
    """Telegram asks before taking the Stars: None to accept, else why not (a message key)."""
    async with ctx.db.reading() as session:
        invoice = await repository.get_invoice(session, invoice_id)
        if invoice is None or invoice.currency != "XTR" or currency != "XTR":
            return "unknown"
        if invoice.status is InvoiceStatus.SETTLED and invoice.provider_invoice_id == invoice.id:
            return "used"
        plan = await plans.get(session, invoice.plan_id)
    if plan is None or not plan.active or not stars_allowed(ctx, plan.price_stars, plan.providers):
        return "gone"
    if plan.price_stars != total_amount or invoice.amount_stars != total_amount:
        return "changed"
    return None


async def receive_stars_payment(
    ctx: PaymentsContext, paid: service.StarsPayment
) -> service.Outcome:
    now = ctx.clock.now()
    try:
        async with ctx.db.transaction() as session:
            outcome, _ = await service.settle_stars(
                session, paid, ctx.policy, ctx.sats_per_star, now
            )
    except IntegrityError:
        outcome = service.Outcome.ALREADY_SETTLED
    metrics.settled("stars", outcome.value)
    if outcome is service.Outcome.SETTLED:
        ctx.after_commit.committed(ENTRIES_AND_MESSAGES)
    return outcome


async def get_invoice(db: Database, invoice_id: str) -> Invoice | None:
    """An invoice by our id, read in its own unit of work (for the adapters)."""
    async with db.reading() as session:
        return await repository.get_invoice(session, invoice_id)


async def search_invoices(
    db: Database,
    *,
    status: InvoiceStatus | None = None,
    provider: str | None = None,
    plan_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 200,
) -> Sequence[Invoice]:
    """Invoices by status, rail, plan and creation date, newest first (the admin panel)."""
    async with db.reading() as session:
        return await repository.search_invoices(
            session,
            status=status,
            provider=provider,
            plan_id=plan_id,
            since=since,
            until=until,
            limit=limit,
        )


# -- refunds (an admin's action: the API and the panel) ---------------------------------


async def refund(
    ctx: PaymentsContext,
    invoice_id: str,
    *,
    note: str | None,
    author: str,
    stars: StarsRefunds | None,
    by: Actor | None = None,
) -> int:
    """Refund a paid invoice; the reversal entry's id. The sale is reversed in the ledger
    (the affiliate's commission with it), the paid time is taken back and the buyer is told.

    A bitcoin payment was paid back by the owner from their own wallet (``note``: how); this
    records it. Telegram Stars are returned through ``stars`` (the running bot) first: the
    invoice is marked ``refunding`` meanwhile (two admins cannot refund it twice), put back
    to ``settled`` when Telegram refuses or does not answer, and a refund that finds it
    marked after a crash goes on. ``by``: the audit row is written with the reversal (the
    API's middleware records its own, so it passes none)."""
    invoice = await get_invoice(ctx.db, invoice_id)
    if invoice is None:
        raise NotFound(f"invoice {invoice_id} does not exist")
    target = f"invoice:{invoice_id}"
    if invoice.currency == "SAT":
        async with audited(
            ctx.db, by, "invoice.refund", target, now=ctx.clock.now(), reason=note or ""
        ) as work:
            reversal = await service.record_bitcoin_refund(
                work.session, invoice_id, note=note, author=author, now=work.now
            )
            work.before = {"status": InvoiceStatus.SETTLED.value}
            work.after = {"status": InvoiceStatus.REFUNDED.value, "reversal_entry": reversal}
        ctx.after_commit.committed(ENTRIES_AND_MESSAGES)
        return reversal
    if stars is None:
        raise ServiceUnavailable("the Telegram bot is not running, so Stars cannot be refunded")
    async with ctx.db.transaction() as session:
        telegram_user, charge = await service.begin_stars_refund(
            session, invoice_id, ctx.clock.now()
        )
    try:
        await stars.refund_star_payment(int(telegram_user), charge)
    except DomainError:
        async with ctx.db.transaction() as session:
            await service.abort_stars_refund(session, invoice_id, ctx.clock.now())
        raise
    async with audited(
        ctx.db, by, "invoice.refund", target, now=ctx.clock.now(), reason=note or ""
    ) as work:
        reversal = await service.finish_stars_refund(
            work.session, invoice_id, author=author, now=work.now
        )
        work.before = {"status": InvoiceStatus.SETTLED.value}
        work.after = {"status": InvoiceStatus.REFUNDED.value, "reversal_entry": reversal}
    ctx.after_commit.committed(ENTRIES_AND_MESSAGES)
    return reversal


# -- reads for the adapters -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SubscriptionView:
    subscription: Subscription
    latest_invoice: Invoice | None


async def _view(session: AsyncSession, subscription: Subscription) -> SubscriptionView:
    return SubscriptionView(
        subscription, await repository.latest_invoice_of(session, subscription.id)
    )


async def subscriptions_page(
    db: Database,
    *,
    limit: int,
    before_id: int | None,
    user_id: int | None,
    status: SubscriptionStatus | None,
    plan_id: str | None,
    platform: str | None = None,
) -> list[SubscriptionView]:
    async with db.reading() as session:
        rows = await subscriptions_repo.list_subscriptions(
            session,
            limit=limit,
            before_id=before_id,
            user_id=user_id,
            status=status,
            plan_id=plan_id,
            platform=platform,
        )
        return [await _view(session, s) for s in rows]


async def get_subscription(db: Database, subscription_id: int) -> SubscriptionView:
    async with db.reading() as session:
        return await _view(session, await subscriptions.require(session, subscription_id))


async def change_subscription_status(
    db: Database, subscription_id: int, status: SubscriptionStatus, now: datetime
) -> SubscriptionView:
    async with db.transaction() as session:
        changed = await subscriptions.change_status(session, subscription_id, status, now)
        return await _view(session, changed)


@dataclass(frozen=True, slots=True)
class UserView:
    """A user with their affiliate balance, referral counts and active subscriptions."""

    user: User
    earnings: Balance
    referrals: ReferralStats
    subscriptions: list[SubscriptionView]


async def user_view(db: Database, user_id: int, hold_days: int, now: datetime) -> UserView:
    async with db.reading() as session:
        user = await users.require(session, user_id)
        earnings = await affiliates.balance(session, user_id, hold_days, now)
        counts = await referrals.referral_stats(session, user_id)
        active = await subscriptions_repo.active_of_user(session, user_id, now)
        return UserView(user, earnings, counts, [await _view(session, s) for s in active])


@dataclass(frozen=True, slots=True)
class CheckoutView:
    invoice: Invoice
    plan: Plan
    subscription: Subscription


async def checkout_view(db: Database, invoice_id: str) -> CheckoutView:
    """What the checkout page shows; NotFound for an unknown invoice."""
    async with db.reading() as session:
        invoice = await repository.get_invoice(session, invoice_id)
        if invoice is None:
            raise NotFound(f"invoice {invoice_id} does not exist")
        plan = await plans.get(session, invoice.plan_id)
        subscription = await subscriptions_repo.get(session, invoice.subscription_id)
    assert plan is not None and subscription is not None
    return CheckoutView(invoice, plan, subscription)
