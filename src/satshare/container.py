"""Composition root for the running service: settings, database, providers, sandbox."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.routing import BaseRoute
from starlette.types import ASGIApp

from satshare import migrate
from satshare.affiliates import service as affiliates
from satshare.apikeys import service as apikeys
from satshare.background import CoalescingRunner
from satshare.clock import Clock, SystemClock
from satshare.config import Settings
from satshare.db import Database
from satshare.payments.flows import PaymentsContext
from satshare.payments.ports import PaymentProvider
from satshare.payments.service import SettlementPolicy
from satshare.payouts import flows as payout_flows
from satshare.payouts import service as payouts
from satshare.payouts.ports import PayoutProvider
from satshare.plans import service as plans
from satshare.providers.bitpay import BitPayProvider
from satshare.providers.btcpay import BTCPayPayouts, BTCPayProvider
from satshare.providers.lnbits import LNbitsPayouts, LNbitsProvider
from satshare.providers.lnurl import LnurlClient
from satshare.providers.onchain import DatabaseAddressStore, OnchainProvider
from satshare.providers.rates import BTCPayRates, FixedRates, KrakenRates, YadioRates
from satshare.rates.ports import RateSource
from satshare.sealer import LedgerSealer
from satshare.security import random_token
from satshare.sim import btcpay as btcpay_sim
from satshare.sim import lnurl as lnurl_sim
from satshare.sim import rates as rates_sim
from satshare.sim import telegram as telegram_sim
from satshare.sim.lightning import LightningNetwork

SANDBOX_BTCPAY_PATH = "/sim/btcpay"
SANDBOX_TELEGRAM_PATH = "/sim/telegram"
SANDBOX_RATES_PATH = "/sim/rates"
SANDBOX_STORE_ID = "sandbox-store"
SANDBOX_KEY_NAME = "sandbox"


class StartupError(Exception):
    """Something an operator must fix before SatShare can start; the message says how."""


@dataclass
class Sandbox:
    btcpay: btcpay_sim.BTCPayEmulator
    btcpay_app: ASGIApp
    mount_path: str = SANDBOX_BTCPAY_PATH
    #: Lightning Addresses <anything>@<this server> for trying withdrawals (LUD-16 routes
    #: served at the root of our own app).
    lightning_addresses: lnurl_sim.LnurlEmulator | None = None
    #: Routes to serve at the root of our own app (the Lightning Address ones): built here,
    #: so the API mounts them without importing the emulators.
    root_routes: Sequence[BaseRoute] = ()


@dataclass
class RatesSandbox:
    emulator: rates_sim.RatesEmulator
    app: ASGIApp
    mount_path: str = SANDBOX_RATES_PATH


@dataclass
class TelegramSandbox:
    emulator: telegram_sim.TelegramEmulator
    app: ASGIApp
    token: str
    mount_path: str = SANDBOX_TELEGRAM_PATH


@dataclass
class Container:
    settings: Settings
    db: Database
    clock: Clock
    payments: PaymentsContext
    sealer: LedgerSealer
    payouts: payout_flows.PayoutsContext
    payout_runner: CoalescingRunner
    sandbox: Sandbox | None = None
    telegram_sandbox: TelegramSandbox | None = None
    rates_sandbox: RatesSandbox | None = None
    #: Called after a commit that wrote ledger entries or outbox rows (sealer, sender).
    hooks: list[Callable[[], None]] = field(default_factory=list)
    _closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    def written(self) -> None:
        for hook in self.hooks:
            hook()

    @property
    def telegram_api_base_url(self) -> str:
        if self.telegram_sandbox is not None:
            return internal_base_url(self.settings) + self.telegram_sandbox.mount_path
        return self.settings.telegram.api_base_url

    @property
    def telegram_token(self) -> str:
        if self.telegram_sandbox is not None:
            return self.telegram_sandbox.token
        token = self.settings.telegram.token
        assert token is not None
        return token.get_secret_value()

    async def aclose(self) -> None:
        await self.payout_runner.aclose()
        await self.sealer.aclose()
        for close in reversed(self._closers):
            await close()
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


def _payout_provider(
    settings: Settings, btcpay_access: tuple[str, str, str] | None, clock: Clock
) -> PayoutProvider | None:
    """The provider that sends payouts; None when the owner pays by hand. ``btcpay_access``
    is (base URL, API key, store id) of the BTCPay Server in use, real or sandbox."""
    timeout = settings.payouts.timeout_seconds
    if settings.payout_provider == "btcpay":
        assert btcpay_access is not None
        base_url, api_key, store_id = btcpay_access
        return BTCPayPayouts(
            base_url=base_url, api_key=api_key, store_id=store_id, timeout_seconds=timeout
        )
    if settings.payout_provider == "lnbits":
        lnbits = settings.lnbits
        assert lnbits.url and lnbits.admin_key
        return LNbitsPayouts(
            base_url=lnbits.url,
            admin_key=lnbits.admin_key.get_secret_value(),
            timeout_seconds=timeout,
            clock=clock,
        )
    return None


def internal_base_url(settings: Settings) -> str:
    """Where this process can reach itself (the sandbox talks to its own server over HTTP)."""
    host = settings.server.host
    if host in ("0.0.0.0", "::", ""):  # noqa: S104
        host = "127.0.0.1"
    return f"http://{host}:{settings.server.port}"


def build_container(
    settings: Settings, *, clock: Clock | None = None, self_url: str | None = None
) -> Container:
    clock = clock or SystemClock()
    db = Database(
        settings.database.url, echo=settings.database.echo, pool_size=settings.database.pool_size
    )
    providers: dict[str, PaymentProvider] = {}
    closers: list[Callable[[], Awaitable[None]]] = []
    sandbox: Sandbox | None = None
    btcpay_access: tuple[str, str, str] | None = None
    btcpay = settings.btcpay
    if btcpay.configured:
        assert btcpay.url and btcpay.api_key and btcpay.store_id and btcpay.webhook_secret
        btcpay_access = (btcpay.url, btcpay.api_key.get_secret_value(), btcpay.store_id)
        provider = BTCPayProvider(
            base_url=btcpay.url,
            api_key=btcpay.api_key.get_secret_value(),
            store_id=btcpay.store_id,
            webhook_secret=btcpay.webhook_secret.get_secret_value(),
            speed_policy=btcpay.speed_policy,
            payment_methods=btcpay.payment_methods,
            timeout_seconds=btcpay.timeout_seconds,
        )
        providers[provider.name] = provider
        closers.append(provider.aclose)
    elif settings.sandbox_mode:
        # Sandbox: the BTCPay emulator is mounted inside our own app and reached over HTTP,
        # exactly as a real BTCPay Server would be.
        own = self_url or internal_base_url(settings)
        api_key, secret = random_token(24), random_token(24)
        emulator = btcpay_sim.BTCPayEmulator(
            api_key=api_key,
            store_id=SANDBOX_STORE_ID,
            base_url=settings.server.base_url + SANDBOX_BTCPAY_PATH,
            retry_delays=(2.0, 10.0, 60.0),
        )
        emulator.add_webhook(SANDBOX_STORE_ID, f"{own}/api/v1/webhooks/btcpay", secret)
        addresses = lnurl_sim.LnurlEmulator(LightningNetwork(), settings.server.base_url)
        addresses.open_accounts = True
        sandbox = Sandbox(
            btcpay=emulator,
            btcpay_app=btcpay_sim.build_app(emulator),
            lightning_addresses=addresses,
            root_routes=lnurl_sim.lightning_address_routes(addresses),
        )
        btcpay_access = (own + SANDBOX_BTCPAY_PATH, api_key, SANDBOX_STORE_ID)
        provider = BTCPayProvider(
            base_url=own + SANDBOX_BTCPAY_PATH,
            api_key=api_key,
            store_id=SANDBOX_STORE_ID,
            webhook_secret=secret,
            speed_policy=btcpay.speed_policy,
            payment_methods=btcpay.payment_methods,
            timeout_seconds=btcpay.timeout_seconds,
        )
        providers[provider.name] = provider
        closers.append(provider.aclose)
        closers.append(emulator.aclose)
    lnbits = settings.lnbits
    if lnbits.configured:
        assert lnbits.url and lnbits.invoice_key
        lightning = LNbitsProvider(
            base_url=lnbits.url,
            invoice_key=lnbits.invoice_key.get_secret_value(),
            webhook_secret=(
                lnbits.webhook_secret.get_secret_value() if lnbits.webhook_secret else None
            ),
            timeout_seconds=lnbits.timeout_seconds,
            clock=clock,
        )
        providers[lightning.name] = lightning
        closers.append(lightning.aclose)
    onchain = settings.onchain
    if onchain.configured:
        watcher = OnchainProvider(
            esplora_url=onchain.esplora_url,
            store=DatabaseAddressStore(db, onchain.wallet(), clock, onchain.gap_limit),
            clock=clock,
            min_confirmations=onchain.min_confirmations,
            timeout_seconds=onchain.timeout_seconds,
        )
        providers[watcher.name] = watcher
        closers.append(watcher.aclose)
    rate_source, rates_sandbox = _rate_source(settings, clock, sandbox, own=self_url)
    if rate_source is not None and hasattr(rate_source, "aclose"):
        closers.append(rate_source.aclose)
    bitpay = settings.bitpay
    if bitpay.configured:
        assert bitpay.url and bitpay.token
        custodial = BitPayProvider(
            base_url=bitpay.url,
            token=bitpay.token.get_secret_value(),
            transaction_speed=bitpay.transaction_speed,
            webhook_secret=bitpay.webhook_secret.get_secret_value()
            if bitpay.webhook_secret
            else None,
            timeout_seconds=bitpay.timeout_seconds,
        )
        providers[custodial.name] = custodial
        closers.append(custodial.aclose)
    sealer = LedgerSealer(db, clock)
    program = affiliate_program(settings)
    payout_provider = _payout_provider(settings, btcpay_access, clock)
    policy = payout_policy(settings, payout_provider)
    # Only the sandbox's own Lightning Address service lives on a private (loopback) address.
    lnurl = LnurlClient(
        timeout_seconds=settings.payouts.timeout_seconds,
        allow_private_networks=settings.sandbox_mode,
    )
    closers.append(lnurl.aclose)
    if payout_provider is not None and hasattr(payout_provider, "aclose"):
        closers.append(payout_provider.aclose)
    payouts_context = payout_flows.PayoutsContext(
        db=db,
        clock=clock,
        policy=policy,
        program=program,
        provider=payout_provider,
        lnurl=lnurl,
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
        providers=providers,
        default_provider=settings.payments.default_provider or next(iter(providers)),
        clock=clock,
        policy=SettlementPolicy(
            program=program,
            settle_on_processing=settings.payments.settle_on_processing,
            on_commission=instant_split if policy.instant_lightning else None,
        ),
        invoice_expiration_minutes=settings.payments.invoice_expiration_minutes,
        late_payment_window=timedelta(hours=settings.payments.late_payment_window_hours),
        public_base_url=settings.server.base_url,
        rates=rate_source,
        stars_enabled=settings.stars.enabled,
        sats_per_star=settings.stars.sats_per_star,
        rate_max_age=timedelta(seconds=settings.rates.max_age_seconds),
    )
    telegram_sandbox = None
    if settings.telegram_sandbox:
        telegram_sandbox = _telegram_sandbox(settings)
        closers.append(telegram_sandbox.emulator.aclose)
    payout_runner = CoalescingRunner(
        lambda: payout_flows.run_once(payouts_context), "sending payouts"
    )
    hooks = [sealer.kick]
    if policy.instant_lightning:
        hooks.append(payout_runner.kick)  # a settlement may have queued an instant split
    container = Container(
        settings=settings,
        db=db,
        clock=clock,
        payments=payments,
        sealer=sealer,
        payouts=payouts_context,
        payout_runner=payout_runner,
        sandbox=sandbox,
        telegram_sandbox=telegram_sandbox,
        rates_sandbox=rates_sandbox,
        hooks=hooks,
        _closers=closers,
    )
    payments.after_ledger_write = container.written
    payouts_context.after_write = container.written
    payouts_context.kick = payout_runner.kick
    return container


OFFICIAL_RATE_URLS = {"kraken": "https://api.kraken.com", "yadio": "https://api.yadio.io"}


def _rate_source(
    settings: Settings, clock: Clock, sandbox: Sandbox | None, own: str | None
) -> tuple[RateSource | None, RatesSandbox | None]:
    """The configured rate source; in sandbox mode the emulators stand in for the real APIs."""
    rates = settings.rates
    timeout = rates.timeout_seconds
    if rates.source == "fixed":
        return FixedRates(rates.fixed, clock), None
    if rates.source == "btcpay":
        btcpay = settings.btcpay
        if btcpay.configured:
            assert btcpay.url and btcpay.api_key and btcpay.store_id
            return BTCPayRates(
                btcpay.url, btcpay.api_key.get_secret_value(), btcpay.store_id, clock, timeout
            ), None
        if sandbox is not None:
            base = (own or internal_base_url(settings)) + sandbox.mount_path
            return BTCPayRates(base, sandbox.btcpay.api_key, SANDBOX_STORE_ID, clock, timeout), None
        return None, None
    rates_sandbox = None
    url = rates.url
    if url is None and settings.sandbox_mode:
        emulator = rates_sim.RatesEmulator()
        rates_sandbox = RatesSandbox(emulator=emulator, app=rates_sim.build_app(emulator))
        url = (own or internal_base_url(settings)) + SANDBOX_RATES_PATH
    url = url or OFFICIAL_RATE_URLS[rates.source]
    source_class = KrakenRates if rates.source == "kraken" else YadioRates
    return source_class(url, clock, timeout, None), rates_sandbox


def _telegram_sandbox(settings: Settings) -> TelegramSandbox:
    """The Bot API emulator, with every channel the plans sell already created."""
    token = f"{7_000_000_000 + secrets.randbelow(999_999_999)}:{random_token(26)}"
    emulator = telegram_sim.TelegramEmulator(token)
    for plan in settings.plans:
        for number, chat_id in enumerate(plan.channels, start=1):
            if chat_id not in emulator.chats:
                emulator.add_chat(chat_id, f"{plan.title} #{number}", "channel")
    return TelegramSandbox(emulator=emulator, app=telegram_sim.build_app(emulator), token=token)


async def prepare(container: Container, *, sync_plans: bool = True) -> None:
    """Refuse to run on an unmigrated database; sync plans from the configuration.

    Admin commands pass ``sync_plans=False``: run from a directory without the service's
    satshare.yaml, they must not take its plans off sale."""
    current = await migrate.current_revision(container.db)
    head = migrate.head_revision()
    if current != head:
        raise StartupError(
            f"the database is at schema revision {current or 'none'} but this SatShare needs "
            f"{head}: run `satshare migrate` first"
        )
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
        )
        for p in container.settings.plans
    ]
    async with container.db.transaction() as session:
        await plans.sync(session, specs, container.clock.now())


async def issue_sandbox_key(container: Container) -> str:
    """A fresh admin key for the sandbox session (earlier sandbox keys are revoked)."""
    now = container.clock.now()
    async with container.db.transaction() as session:
        await apikeys.revoke_named(session, SANDBOX_KEY_NAME, now)
        issued = await apikeys.create(session, SANDBOX_KEY_NAME, ("admin",), now)
    return issued.plaintext
