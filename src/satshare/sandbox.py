"""Sandbox mode: the emulators that stand in for a payment processor, a rate source and
Telegram when none is configured.

``start_sandbox`` starts them and returns a ``Sandbox``: a settings overlay that points the
ordinary adapters at the emulators (so the provider registry never branches on sandbox mode),
the ASGI mounts and root routes the API serves them on, the ports the sandbox pages use, and
``issue_sandbox_key`` for the session's admin key. Each emulator is reached over HTTP inside
SatShare's own server, exactly as the real service would be.

A composition root: it imports the emulators (``satshare.sim``) and implements the API's
sandbox ports over them; nothing but the container imports it.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field

from pydantic import SecretStr
from starlette.routing import BaseRoute, Mount

from satshare.api.ports import (
    LinkKind,
    LinkPreview,
    PressAnswer,
    SandboxPages,
    SandboxRefused,
    StarsPaid,
)
from satshare.apikeys import service as apikeys
from satshare.bot import repository as bot_repository
from satshare.bot.runtime import PLATFORM
from satshare.clock import Clock
from satshare.config import PayoutsSettings, Settings
from satshare.db import Database
from satshare.security import random_token
from satshare.sim import btcpay as btcpay_sim
from satshare.sim import lnurl as lnurl_sim
from satshare.sim import rates as rates_sim
from satshare.sim import receiver as receiver_sim
from satshare.sim import telegram as telegram_sim
from satshare.sim.lightning import LightningNetwork
from satshare.users import flows as user_flows

SANDBOX_BTCPAY_PATH = "/sim/btcpay"
SANDBOX_TELEGRAM_PATH = "/sim/telegram"
SANDBOX_RATES_PATH = "/sim/rates"
#: Where sandbox webhook endpoints can point: a receiver that keeps what it gets, shown at
#: /sandbox/webhooks with each signature checked.
SANDBOX_RECEIVER_PATH = "/sim/receiver"
#: Where the emulated Telegram's links (invite links, Stars invoice links) lead: a sandbox
#: page that plays what Telegram shows (api/routes/sandbox.py), never t.me.
SANDBOX_LINK_PATH = "/sandbox/link"
SANDBOX_STORE_ID = "sandbox-store"
SANDBOX_KEY_NAME = "sandbox"
#: The sandbox's payout minimum when none is configured: a demo sale's commission is above it.
SANDBOX_MIN_PAYOUT_SATS = 1_000


@dataclass(frozen=True)
class Sandbox:
    #: The configuration with the emulators filled in where the operator left sections empty.
    settings: Settings
    btcpay: btcpay_sim.BTCPayEmulator
    #: Lightning Addresses <anything>@<this server> for trying withdrawals (LUD-16 routes
    #: served at the root of our own app).
    lightning_addresses: lnurl_sim.LnurlEmulator
    rates: rates_sim.RatesEmulator | None
    #: The rate source in effect is an emulator (the rates one, or BTCPay's): invoices and
    #: pages label the rate as a sandbox one instead of naming the real service.
    rates_emulated: bool
    #: The Bot API emulator; None when a real bot token is configured.
    telegram: telegram_sim.TelegramEmulator | None
    #: What the API serves for the emulators: their mounts and the Lightning Address routes.
    routes: tuple[BaseRoute, ...]
    #: What the sandbox pages (checkout's "Simulate payment", /sandbox) use.
    pages: SandboxPages
    _closers: tuple[Callable[[], Awaitable[None]], ...] = field(default=(), repr=False)

    async def aclose(self) -> None:
        for close in reversed(self._closers):
            await close()


def internal_base_url(settings: Settings) -> str:
    """Where this process can reach itself (the sandbox talks to its own server over HTTP)."""
    host = settings.server.host
    if host in ("0.0.0.0", "::", ""):  # noqa: S104
        host = "127.0.0.1"
    return f"http://{host}:{settings.server.port}"


def sandbox_payouts(settings: Settings) -> PayoutsSettings:
    """The payout settings sandbox mode runs with."""
    # What sandbox mode chose (the emulator pays at once, on regtest) stays chosen once the
    # overlay configures a BTCPay.
    return settings.payouts.model_copy(
        update={
            "provider": settings.payout_provider,
            "network": settings.payout_network,
            # One demo sale (5,000 sats to the affiliate) is enough to try a withdrawal,
            # unless the operator chose a minimum.
            "min_sats": settings.payouts.min_sats
            if "min_sats" in settings.payouts.model_fields_set
            else SANDBOX_MIN_PAYOUT_SATS,
        }
    )


def emulates_rates(settings: Settings) -> bool:
    """Sandbox mode serves its own exchange-rate emulator: an exchange's source is chosen
    and no URL of its own is given."""
    return settings.rates.source in ("kraken", "yadio") and settings.rates.url is None


def preview(settings: Settings) -> Settings:
    """The settings sandbox mode runs with, as far as they are known before it starts (its
    processor keys, webhook secret and bot token are made at each start): what ``config
    check`` shows. The same choices as ``start_sandbox`` and the container make."""
    own = internal_base_url(settings)
    update: dict[str, object] = {
        "btcpay": settings.btcpay.model_copy(
            update={"url": own + SANDBOX_BTCPAY_PATH, "store_id": SANDBOX_STORE_ID}
        ),
        "payouts": sandbox_payouts(settings),
        # The container accepts the sandbox's own http:// receiver (container.py).
        "webhooks": settings.webhooks.model_copy(update={"allow_insecure_urls": True}),
    }
    if emulates_rates(settings):
        update["rates"] = settings.rates.model_copy(update={"url": own + SANDBOX_RATES_PATH})
    if settings.telegram_sandbox:
        update["telegram"] = settings.telegram.model_copy(
            update={"api_base_url": own + SANDBOX_TELEGRAM_PATH}
        )
    return settings.model_copy(update=update)


def start_sandbox(settings: Settings, *, self_url: str | None = None) -> Sandbox | None:
    """The emulators for ``settings`` in sandbox mode (no processor configured), else None.

    ``self_url`` is where this server can reach itself, when not at server.host:port."""
    if not settings.sandbox_mode:
        return None
    own = self_url or internal_base_url(settings)
    api_key, secret = random_token(24), random_token(24)
    btcpay = btcpay_sim.BTCPayEmulator(
        api_key=api_key,
        store_id=SANDBOX_STORE_ID,
        base_url=settings.server.base_url + SANDBOX_BTCPAY_PATH,
        retry_delays=(2.0, 10.0, 60.0),
    )
    btcpay.add_webhook(SANDBOX_STORE_ID, f"{own}/api/v1/webhooks/btcpay", secret)
    addresses = lnurl_sim.LnurlEmulator(LightningNetwork(), settings.server.base_url)
    addresses.open_accounts = True
    routes: list[BaseRoute] = [Mount(SANDBOX_BTCPAY_PATH, app=btcpay_sim.build_app(btcpay))]
    routes += lnurl_sim.lightning_address_routes(addresses)
    receiver = receiver_sim.WebhookReceiver()
    routes.append(Mount(SANDBOX_RECEIVER_PATH, app=receiver_sim.build_app(receiver)))
    closers: list[Callable[[], Awaitable[None]]] = [btcpay.aclose]
    overlay = {
        "btcpay": settings.btcpay.model_copy(
            update={
                "url": own + SANDBOX_BTCPAY_PATH,
                "api_key": SecretStr(api_key),
                "store_id": SANDBOX_STORE_ID,
                "webhook_secret": SecretStr(secret),
            }
        ),
        "payouts": sandbox_payouts(settings),
    }
    rates = None
    if emulates_rates(settings):
        rates = rates_sim.RatesEmulator()
        routes.append(Mount(SANDBOX_RATES_PATH, app=rates_sim.build_app(rates)))
        overlay["rates"] = settings.rates.model_copy(update={"url": own + SANDBOX_RATES_PATH})
    telegram = None
    if settings.telegram_sandbox:
        telegram, token = _telegram(settings)
        telegram.link_base = settings.server.base_url + SANDBOX_LINK_PATH
        routes.append(Mount(SANDBOX_TELEGRAM_PATH, app=telegram_sim.build_app(telegram)))
        closers.append(telegram.aclose)
        overlay["telegram"] = settings.telegram.model_copy(
            update={
                "token": SecretStr(token),
                "api_base_url": internal_base_url(settings) + SANDBOX_TELEGRAM_PATH,
            }
        )
    return Sandbox(
        settings=settings.model_copy(update=overlay),
        btcpay=btcpay,
        lightning_addresses=addresses,
        rates=rates,
        # No processor is configured in sandbox mode, so a "btcpay" rate source is the emulator.
        rates_emulated=rates is not None or settings.rates.source == "btcpay",
        telegram=telegram,
        routes=tuple(routes),
        pages=SandboxPages(
            payments=_Payments(btcpay),
            chat=_Chat(telegram) if telegram is not None else None,
            receiver=_Receiver(receiver),
        ),
        _closers=tuple(closers),
    )


def _telegram(settings: Settings) -> tuple[telegram_sim.TelegramEmulator, str]:
    """The Bot API emulator, with every channel the plans sell already created."""
    token = f"{7_000_000_000 + secrets.randbelow(999_999_999)}:{random_token(26)}"
    emulator = telegram_sim.TelegramEmulator(token)
    if settings.branding.name:  # the owner's bot carries the owner's name
        emulator.bot["first_name"] = settings.branding.name
    # Each channel is named after the plans that grant it ("Plan", or "Plan 2" when a plan
    # has several), so a newcomer sees which purchase opened which channel.
    names: dict[int, list[str]] = {}
    for plan in settings.plans:
        for number, chat_id in enumerate(plan.channels, start=1):
            name = plan.title if len(plan.channels) == 1 else f"{plan.title} {number}"
            names.setdefault(chat_id, []).append(name)
    for chat_id, granted_by in names.items():
        emulator.add_chat(chat_id, " / ".join(granted_by)[:128], "channel")  # Telegram: 128
    return emulator, token


async def resume(sandbox: Sandbox, db: Database) -> None:
    """Continue a sandbox after a restart on the same database: the chat's Telegram users
    come back with their ids (still listed and usable), new users get new ids, and update
    ids continue after the last one the bot handled (a reused id would be dropped as a
    duplicate)."""
    telegram = sandbox.telegram
    if telegram is None:
        return
    for account in await user_flows.accounts_on(db, PLATFORM):
        assert account.external_id is not None
        if not account.external_id.isdigit():
            continue  # a Telegram id is a number; anything else was made through the API
        telegram_id = int(account.external_id)
        if telegram_id not in telegram.users:
            telegram.add_user(
                telegram_id,
                first_name=account.username or f"User {telegram_id}",
                username=account.username,
                language_code=account.language,
            )
    last = await bot_repository.last_update_id(db)
    if last is not None:
        telegram.updates.continue_after(last)


async def issue_sandbox_key(db: Database, clock: Clock) -> str:
    """A fresh admin key for the sandbox session (earlier sandbox keys are revoked)."""
    now = clock.now()
    async with db.transaction() as session:
        await apikeys.revoke_named(session, SANDBOX_KEY_NAME, now)
        issued = await apikeys.create(session, SANDBOX_KEY_NAME, ("admin",), now)
    return issued.plaintext


# -- the API's sandbox ports over the emulators ----------------------------------------------


class _Payments:
    def __init__(self, emulator: btcpay_sim.BTCPayEmulator) -> None:
        self._emulator = emulator

    def simulate_payment(self, provider_invoice_id: str) -> None:
        remote = self._emulator.invoices.get(provider_invoice_id)
        if remote is None:
            raise LookupError(provider_invoice_id)
        try:
            self._emulator.pay(
                remote, method="BTC-LN" if "BTC-LN" in remote.methods else "BTC-CHAIN"
            )
            self._emulator.mine(1)
        except ValueError as exc:
            raise SandboxRefused(str(exc)) from exc


class _Receiver:
    path = SANDBOX_RECEIVER_PATH

    def __init__(self, receiver: receiver_sim.WebhookReceiver) -> None:
        self._receiver = receiver

    def deliveries(self) -> Sequence[receiver_sim.ReceivedDelivery]:
        return self._receiver.deliveries()


class _Chat:
    def __init__(self, emulator: telegram_sim.TelegramEmulator) -> None:
        self._emulator = emulator

    @property
    def bot_username(self) -> str:
        username: str = self._emulator.bot["username"]
        return username

    def users(self) -> Iterable[telegram_sim.SimUser]:
        return self._emulator.users.values()

    def user(self, telegram_id: int) -> telegram_sim.SimUser | None:
        return self._emulator.users.get(telegram_id)

    def add_user(
        self, *, first_name: str, username: str, language_code: str
    ) -> telegram_sim.SimUser:
        return self._emulator.add_user(
            first_name=first_name, username=username, language_code=language_code
        )

    def messages(self, telegram_id: int) -> Sequence[telegram_sim.SimMessage]:
        return self._emulator.messages.get(telegram_id, [])

    def chats(self) -> Iterable[telegram_sim.SimChat]:
        return self._emulator.chats.values()

    def user_sends(self, telegram_id: int, text: str) -> int:
        try:
            return self._emulator.user_sends(telegram_id, text)
        except telegram_sim.BotApiError as exc:
            raise SandboxRefused(exc.description) from None

    def user_presses(self, telegram_id: int, message_id: int, data: str) -> int:
        try:
            return self._emulator.user_presses(telegram_id, message_id, data)
        except telegram_sim.BotApiError as exc:
            raise SandboxRefused(exc.description) from None

    def user_joins(self, telegram_id: int, link: str) -> str:
        try:
            return self._emulator.user_joins(telegram_id, link)
        except telegram_sim.BotApiError as exc:
            raise SandboxRefused(exc.description) from None

    def join_pending(self, telegram_id: int, chat_id: int) -> bool:
        return (chat_id, telegram_id) in self._emulator.join_requests

    def press_answer(self, update_id: int) -> PressAnswer:
        return PressAnswer(
            answered=self._emulator.callback_answered(update_id),
            text=self._emulator.callback_answer(update_id),
            alert=self._emulator.callback_alert(update_id),
        )

    def link(self, code: str) -> LinkPreview | None:
        url = f"{self._emulator.link_base}/{code}"
        invite = self._emulator.links.get(url)
        if invite is not None and not invite.is_revoked:
            chat = self._emulator.chats.get(invite.chat_id)
            return LinkPreview(
                LinkKind.JOIN,
                url,
                title=(chat.title if chat else None) or str(invite.chat_id),
                chat_id=invite.chat_id,
                join_request=invite.creates_join_request,
            )
        spec = self._emulator.invoice_links.get(url)
        if spec is not None:
            return LinkPreview(
                LinkKind.STARS,
                url,
                title=spec["title"],
                description=spec["description"],
                stars=spec["total_amount"],
            )
        return None

    async def user_pays(
        self, telegram_id: int, *, link: str | None = None, message_id: int | None = None
    ) -> StarsPaid:
        try:
            result = await self._emulator.user_pays(telegram_id, link=link, message_id=message_id)
        except telegram_sim.BotApiError as exc:
            raise SandboxRefused(exc.description) from None
        return StarsPaid(result["status"], result.get("error"))
