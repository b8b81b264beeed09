"""Composition root for the running service: settings, database, providers, sandbox.

``build_container`` puts together what the settings name — the adapters from the provider
registry (pointed at the emulators by the sandbox's settings overlay in sandbox mode), the
domain contexts, the background runners and the one ``AfterCommit`` that wakes them — into a
frozen ``Container``. Adapters never receive the container: the API gets its services through
``api_services`` (FastAPI dependencies), the admin panel through ``admin_services`` (mounted
into the API's app by ``ApiServices.mount_panel``), the bot through its runtime, each only
what it uses.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

from limits.aio import storage as limits_storage
from sqlalchemy.ext.asyncio import AsyncSession

from satshare import migrate
from satshare.affiliates import service as affiliates
from satshare.aftercommit import AfterCommit, Doorbell, Produced
from satshare.background import CoalescingRunner
from satshare.clock import Clock, SystemClock
from satshare.config import Settings, redact_url
from satshare.db import Database, is_sqlite, sqlite_file
from satshare.jobqueue import JobName, QueueWaker, open_queue
from satshare.notifications import service as outbox
from satshare.notifications.messages import WebhookFailing
from satshare.payments.flows import PaymentsContext
from satshare.payments.ports import StarsRefunds
from satshare.payments.service import SettlementPolicy
from satshare.payouts import flows as payout_flows
from satshare.payouts import service as payouts
from satshare.payouts.ports import PayoutProvider
from satshare.plans import flows as plan_flows
from satshare.plans import service as plans
from satshare.providers.registry import build_providers
from satshare.providers.webhook_http import HttpWebhookSender
from satshare.ratelimits.service import RateLimiter
from satshare.ratelimits.shared import SharedRateLimit
from satshare.ratelimits.storage import DatabaseStorage
from satshare.rates.service import SANDBOX_SUFFIX
from satshare.sealer import LedgerSealer
from satshare.webhooks_out import flows as webhook_flows
from satshare.webhooks_out.models import WebhookEndpoint

if TYPE_CHECKING:
    import procrastinate

    # Imported where used (#15): the API and the panel (FastAPI, SQLAdmin) by ``serve``,
    # not by every command; the sandbox (the emulators) only in sandbox mode; the bot (PTB)
    # only when it runs.
    from satshare.admin.services import AdminServices
    from satshare.api.deps import ApiServices
    from satshare.bot.runtime import BotServices
    from satshare.sandbox import Sandbox


class Role(StrEnum):
    """What the process is for, which decides who does a commit's background work."""

    #: ``serve`` or ``satshare worker``: wakes its own runners (inline) or queues jobs
    #: (``jobs.mode: workers``).
    SERVICE = "service"
    #: A one-off command (``satshare payout approve``): never sends anything itself. On
    #: PostgreSQL it queues the jobs for the running service; on SQLite the running
    #: service's periodic sweep picks the work up (``payouts.interval_seconds``).
    COMMAND = "command"


class StartupError(Exception):
    """Something an operator must fix before SatShare can start; the message says how."""


@dataclass(frozen=True)
class Container:
    #: The settings in effect: the configuration, with the sandbox's overlay in sandbox mode.
    settings: Settings
    db: Database
    clock: Clock
    payments: PaymentsContext
    sealer: LedgerSealer
    payouts: payout_flows.PayoutsContext
    payout_runner: CoalescingRunner
    #: Wakes the sealer, the payout sender and the outbox's listener after a commit (in
    #: workers mode: queues their jobs for the workers).
    after_commit: AfterCommit
    #: procrastinate's queue on PostgreSQL (open it with ``open_async``); None on SQLite.
    job_queue: procrastinate.App | None = None
    job_waker: QueueWaker | None = None
    #: Outgoing webhooks (#14): their delivery context and the runner a commit wakes.
    webhooks: webhook_flows.WebhooksContext | None = None
    webhook_runner: webhook_flows.DeliveryRunner | None = None
    #: The API's rate limits (#14); the admin panel's login uses ``check_login``.
    rate_limiter: RateLimiter | None = None
    #: Telegram's bot-wide send rate, counted with every other process (#11).
    telegram_rate: SharedRateLimit | None = None
    sandbox: Sandbox | None = None
    _closers: tuple[Callable[[], Awaitable[None]], ...] = field(default=(), repr=False)

    @property
    def telegram_api_base_url(self) -> str:
        return self.settings.telegram.api_base_url

    @property
    def telegram_token(self) -> str:
        token = self.settings.telegram.token
        assert token is not None
        return token.get_secret_value()

    def api_services(self, *, job_queue: bool = False) -> ApiServices:
        """What the API's routes may use (``create_app`` takes this, never the container).

        ``job_queue``: hand the PostgreSQL job queue to ``/ready`` and ``/metrics`` (``serve``
        does: the queue is open while it serves in workers mode, while its jobs run in
        inline mode)."""
        from satshare.admin.lazy import mount_on_first_use
        from satshare.api.deps import ApiServices

        queue = self.job_queue.job_manager if job_queue and self.job_queue is not None else None
        return ApiServices(
            settings=self.settings,
            db=self.db,
            clock=self.clock,
            payments=self.payments,
            payouts=self.payouts,
            after_commit=self.after_commit,
            seal_ledger=self.sealer.flush,
            webhooks=self._webhooks,
            rate_limiter=self._rate_limiter,
            sandbox_routes=self.sandbox.routes if self.sandbox is not None else (),
            sandbox_pages=self.sandbox.pages if self.sandbox is not None else None,
            job_queue=queue,
            # Built when first used; it refunds Stars through the bot the app is given once
            # that has started.
            mount_panel=lambda app: mount_on_first_use(
                app,
                lambda: self.admin_services(stars_refunds=lambda: getattr(app.state, "bot", None)),
            ),
        )

    def admin_services(
        self, stars_refunds: Callable[[], StarsRefunds | None] = lambda: None
    ) -> AdminServices:
        """What the web admin panel may use (``admin.app.mount`` takes this)."""
        from satshare.admin.services import AdminServices

        return AdminServices(
            settings=self.settings,
            db=self.db,
            clock=self.clock,
            payments=self.payments,
            payouts=self.payouts,
            after_commit=self.after_commit,
            seal_ledger=self.sealer.flush,
            webhooks=self._webhooks,
            sandbox=self.sandbox is not None,
            stars_refunds=stars_refunds,
        )

    @property
    def _webhooks(self) -> webhook_flows.WebhooksContext:
        assert self.webhooks is not None  # build_container always builds it
        return self.webhooks

    @property
    def _rate_limiter(self) -> RateLimiter:
        assert self.rate_limiter is not None  # build_container always builds it
        return self.rate_limiter

    def bot_services(self) -> BotServices:
        """What the Telegram bot may use (``build_runtime`` takes this, never the container)."""
        from satshare.bot.runtime import BotServices

        return BotServices(
            config=self.settings,
            db=self.db,
            clock=self.clock,
            payments=self.payments,
            payouts=self.payouts,
            outbox=self.after_commit.outbox,
            telegram_rate=self._telegram_rate,
        )

    @property
    def _telegram_rate(self) -> SharedRateLimit:
        assert self.telegram_rate is not None  # build_container always builds it
        return self.telegram_rate

    @property
    def runs_jobs(self) -> bool:
        """Does this process run the jobs (inline mode), or only queue them (workers)?"""
        return self.settings.jobs.mode == "inline"

    async def aclose(self) -> None:
        if self.job_waker is not None:
            await self.job_waker.settle()
        if self.webhook_runner is not None:
            await self.webhook_runner.aclose()
        await self.payout_runner.aclose()
        await self.sealer.aclose()
        await self._telegram_rate.aclose()
        for close in reversed(self._closers):
            await close()
        if self.sandbox is not None:
            await self.sandbox.aclose()
        await self.db.dispose()


def affiliate_program(settings: Settings) -> affiliates.Program:
    config = settings.affiliate
    return affiliates.Program(
        base_share_bps=config.share_bps,
        levels=tuple(
            affiliates.Level(
                name=level.name,
                share_bps=level.share_bps,
                min_paying_referrals=level.min_paying_referrals,
                min_referred_sales_sats=level.min_referred_sales_sats,
            )
            for level in config.levels
        ),
        hold_days=config.hold_days,
        terms_version=config.terms_version,
    )


def payout_policy(settings: Settings, provider: PayoutProvider | None) -> payouts.PayoutPolicy:
    config = settings.payouts
    return payouts.PayoutPolicy(
        provider=settings.payout_provider,
        pays=payouts.kinds_paid_by(provider),
        network=settings.payout_network,
        min_sats=config.min_sats,
        auto_approve_max_sats=config.auto_approve_max_sats,
        lightning_fee_sats=config.lightning_fee_sats,
        onchain_fee_sats=config.onchain_fee_sats,
        instant_lightning=config.instant_lightning,
    )


def build_container(
    settings: Settings,
    *,
    clock: Clock | None = None,
    self_url: str | None = None,
    role: Role = Role.SERVICE,
) -> Container:
    """Everything the service runs on, for ``settings``; in sandbox mode the emulators are
    started first and their overlay replaces the empty sections."""
    clock = clock or SystemClock()
    sandbox: Sandbox | None = None
    if settings.sandbox_mode:
        from satshare.sandbox import start_sandbox

        sandbox = start_sandbox(settings, self_url=self_url)
    if sandbox is not None:
        settings = sandbox.settings
    db = Database(
        settings.database.url, echo=settings.database.echo, pool_size=settings.database.pool_size
    )
    # Only the sandbox's own Lightning Address service lives on a private (loopback) address.
    providers = build_providers(settings, db, clock, lnurl_private_networks=sandbox is not None)
    if sandbox is not None and sandbox.rates_emulated and providers.rates is not None:
        providers.rates.name += SANDBOX_SUFFIX  # invoices say whose rate it really was
    sealer = LedgerSealer(db, clock)
    program = affiliate_program(settings)
    policy = payout_policy(settings, providers.payouts)

    # The runner's work needs the payouts context, which is told after commits through the
    # notifier that wakes this runner: the lambda reads ``payouts_context`` (assigned below)
    # only when it runs, after this function has returned.
    payout_runner = CoalescingRunner(
        lambda: payout_flows.run_once(payouts_context), "sending payouts"
    )
    webhooks, webhook_runner, closers = _webhooks(settings, db, clock, sandbox=sandbox is not None)
    counters = _counter_storage(settings, db)
    rate_limiter = _rate_limiter(settings, counters)
    telegram_rate = SharedRateLimit(
        counters,
        settings.telegram.max_messages_per_second,
        identity=_bot_identity(settings),
    )
    job_queue = None if is_sqlite(settings.database.url) else open_queue(settings.database.url)
    waker = QueueWaker(job_queue) if job_queue is not None else None
    if role is Role.COMMAND:
        # The sealer only touches the database; payouts and messages are the service's.
        after_commit = AfterCommit(
            seal=sealer.kick,
            send_payouts=waker.waker(JobName.SEND_PAYOUTS) if waker else _nothing,
            outbox=Doorbell(),
            send_outbox=waker.waker(JobName.SEND_NOTIFICATIONS) if waker else _nothing,
            deliver_webhooks=waker.waker(JobName.DELIVER_WEBHOOKS) if waker else _nothing,
            # SQLite: the service's sweep finds it (BROADCAST_INTERVAL_SECONDS).
            send_broadcasts=waker.waker(JobName.SEND_BROADCASTS) if waker else _nothing,
            entries_may_queue_payouts=policy.instant_lightning,
        )
    elif waker is not None and settings.jobs.mode == "workers":
        # The workers do the work: a commit queues their jobs (coalesced per job).
        after_commit = AfterCommit(
            seal=waker.waker(JobName.SEAL_LEDGER),
            send_payouts=waker.waker(JobName.SEND_PAYOUTS),
            outbox=Doorbell(),
            send_outbox=waker.waker(JobName.SEND_NOTIFICATIONS),
            deliver_webhooks=waker.waker(JobName.DELIVER_WEBHOOKS),
            send_broadcasts=waker.waker(JobName.SEND_BROADCASTS),
            entries_may_queue_payouts=policy.instant_lightning,
        )
    else:
        after_commit = AfterCommit(
            seal=sealer.kick,
            send_payouts=payout_runner.kick,
            outbox=Doorbell(),
            deliver_webhooks=webhook_runner.kick,
            # Inline on PostgreSQL the broadcasts' sender is a job of this process's queue
            # worker: queue it; on SQLite ring the in-process runner (the default).
            send_broadcasts=waker.waker(JobName.SEND_BROADCASTS) if waker else None,
            entries_may_queue_payouts=policy.instant_lightning,
        )
    # Any commit that recorded an outgoing webhook event (whoever wrote it) wakes delivery.
    webhooks.kick = _waking(after_commit, Produced(webhooks=True))
    webhook_flows.kick_after_commit(db, webhooks.kick)
    payouts_context = payout_flows.PayoutsContext(
        db=db,
        clock=clock,
        policy=policy,
        program=program,
        provider=providers.payouts,
        lnurl=providers.lnurl,
        after_commit=after_commit,
        # The provider call may take the whole timeout (and a connect): only then ask.
        send_grace=timedelta(seconds=settings.payouts.timeout_seconds + 30),
        recheck=payouts.Recheck(longest=timedelta(seconds=settings.payouts.recheck_max_seconds)),
        alert_after=timedelta(minutes=settings.payouts.unknown_alert_minutes),
    )

    async def instant_split(
        session: AsyncSession,
        *,
        affiliate_id: int,
        commission_sats: int,
        invoice_id: str,
        now: datetime,
    ) -> None:
        await payouts.instant_split(
            session,
            policy,
            program,
            affiliate_id=affiliate_id,
            commission_sats=commission_sats,
            invoice_id=invoice_id,
            now=now,
        )

    payments = PaymentsContext(
        db=db,
        providers=providers.payments,
        default_provider=settings.payments.default_provider or next(iter(providers.payments)),
        clock=clock,
        policy=SettlementPolicy(
            program=program,
            settle_on_processing=settings.payments.settle_on_processing,
            on_commission=instant_split if policy.instant_lightning else None,
        ),
        invoice_expiration_minutes=settings.payments.invoice_expiration_minutes,
        late_payment_window=timedelta(hours=settings.payments.late_payment_window_hours),
        public_base_url=settings.server.base_url,
        rates=providers.rates,
        stars_enabled=settings.stars.enabled,
        sats_per_star=settings.stars.sats_per_star,
        rate_max_age=timedelta(seconds=settings.rates.max_age_seconds),
        after_commit=after_commit,
        referee_bonus_days=settings.affiliate.referee_bonus_days,
    )
    return Container(
        settings=settings,
        db=db,
        clock=clock,
        payments=payments,
        sealer=sealer,
        payouts=payouts_context,
        payout_runner=payout_runner,
        after_commit=after_commit,
        job_queue=job_queue,
        job_waker=waker,
        webhooks=webhooks,
        webhook_runner=webhook_runner,
        rate_limiter=rate_limiter,
        telegram_rate=telegram_rate,
        sandbox=sandbox,
        _closers=(*providers.closers, *closers),
    )


def _nothing() -> None:
    return None


def _waking(after_commit: AfterCommit, produced: Produced) -> Callable[[], None]:
    def wake() -> None:
        after_commit.committed(produced)

    return wake


def _webhooks(
    settings: Settings, db: Database, clock: Clock, *, sandbox: bool
) -> tuple[
    webhook_flows.WebhooksContext,
    webhook_flows.DeliveryRunner,
    tuple[Callable[[], Awaitable[None]], ...],
]:
    """Outgoing webhooks (#14): the HTTP sender, the delivery context and its runner. The
    sandbox (``settings`` are its overlay there, with the emulators as processors) accepts
    http:// and loopback receivers."""
    insecure = sandbox or settings.webhooks.allow_insecure_urls
    sender = HttpWebhookSender(
        timeout_seconds=settings.webhooks.timeout_seconds, allow_private_networks=insecure
    )
    webhooks = webhook_flows.WebhooksContext(
        db=db,
        clock=clock,
        sender=sender,
        allow_insecure=insecure,
        lease=timedelta(seconds=settings.webhooks.timeout_seconds + 60),
        on_failing=_alert_webhook_failing,
    )
    return webhooks, webhook_flows.DeliveryRunner(webhooks), (sender.aclose,)


def _counter_storage(settings: Settings, db: Database) -> limits_storage.Storage:
    """Where the rate limits (the API's, #14, and Telegram's, #11) are counted: where every
    process sees the same counters."""
    if settings.redis.url:
        # limits' own Redis storage, through the redis package's asyncio client.
        return limits_storage.RedisStorage("async+" + settings.redis.url, implementation="redispy")
    if db.is_sqlite:
        return limits_storage.MemoryStorage()  # SQLite: one process, counters in it
    return DatabaseStorage(db)  # every process on this PostgreSQL counts together


def _rate_limiter(settings: Settings, storage: limits_storage.Storage) -> RateLimiter:
    """The API's rate limits (#14)."""
    limits = settings.api.rate_limit
    return RateLimiter(
        storage,
        per_key=limits.per_key,
        per_ip=limits.per_ip,
        login=limits.login,
        enabled=limits.enabled,
    )


def _bot_identity(settings: Settings) -> str:
    """Whose sends the Telegram rate counts: the bot's id (the token's public part), so two
    bots on one database or Redis each have their own rate. Never the token itself."""
    token = settings.telegram.token
    value = token.get_secret_value() if token is not None else ""
    return value.split(":", 1)[0] or "bot"


async def _alert_webhook_failing(
    session: AsyncSession, endpoint: WebhookEndpoint, now: datetime
) -> None:
    """The owner learns once that an endpoint has failed for 24 hours."""
    await outbox.enqueue(
        session,
        WebhookFailing(endpoint_id=endpoint.id, url=endpoint.url, since=now),
        dedupe_key=f"webhook-endpoint:{endpoint.id}:failing:{now.isoformat()}",
        now=now,
    )


def describe_database(url: str) -> str:
    """How a message names the database: a SQLite file's absolute path (a command run from
    another directory finds another file), or the URL without its password."""
    path = sqlite_file(url)
    return f"SQLite database {path}" if path is not None else f"database {redact_url(url)}"


async def prepare(
    container: Container, *, sync_plans: bool = True, resume_sandbox: bool = False
) -> None:
    """Refuse to run on an unmigrated database; sync plans from the configuration; continue
    the sandbox where the last run on this database left it (``serve``).

    Admin commands pass ``sync_plans=False``: run from a directory without the service's
    satshare.yaml, they must not take its plans off sale."""
    current = await migrate.current_revision(container.db)
    head = migrate.head_revision()
    if current is None:
        raise StartupError(
            f"the {describe_database(container.settings.database.url)} holds no SatShare "
            "schema: run `satshare migrate` first (or give --config the satshare.yaml of the "
            "database you meant)"
        )
    if current != head:
        raise StartupError(
            f"the {describe_database(container.settings.database.url)} is at schema revision "
            f"{current} but this SatShare needs {head}: run `satshare migrate` first"
        )
    if resume_sandbox and container.sandbox is not None:
        from satshare.sandbox import resume as sandbox_resume

        await sandbox_resume(container.sandbox, container.db)
    if not sync_plans:
        return
    specs = [
        plans.PlanSpec(
            id=p.id,
            title=p.title,
            description=p.description,
            price_sats=p.price_sats,
            duration_days=p.duration_days,
            channels=tuple(p.channels),
            providers=tuple(p.providers) if p.providers else None,
            fiat_amount=p.price.amount if p.price else None,
            fiat_currency=p.price.currency if p.price else None,
            price_stars=p.price_stars,
            trial_days=p.trial_days,
        )
        for p in container.settings.plans
    ]
    await plan_flows.sync(container.db, specs, container.clock.now())
