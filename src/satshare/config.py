"""Settings: one YAML file plus ``SATSHARE_<SECTION>__<KEY>`` environment overrides.

Precedence (highest first): environment, YAML file, defaults. Invalid configuration stops
start-up with one line per problem naming the key and, where it came from the file, its line.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin
from urllib.parse import unquote

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import CoreSchema, InitErrorDetails, PydanticCustomError, core_schema
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from satshare.money import BPS_DENOMINATOR, MAX_SATS, MoneyError, parse_fiat
from satshare.watchonly import WalletError, WatchOnlyWallet

DEFAULT_CONFIG_FILE = "satshare.yaml"
ENV_PREFIX = "SATSHARE_"
#: Secrets shorter than this are refused: 16 random characters are 64 bits even in hex.
MIN_SECRET_LENGTH = 16
#: Words that mark an example value wherever they appear (case, spaces, "-", "_", "." ignored).
PLACEHOLDER_WORDS = (
    "changeme",
    "replaceme",
    "placeholder",
    "example",
    "password",
    "secret",
    "sandbox",
    "dummy",
    "sample",
    "xxxxxx",
)
#: Words that mark an example value at its start (short: a random key could hold them later).
PLACEHOLDER_PREFIXES = ("your", "test", "fake", "demo", "todo", "insert", "enter", "paste")
#: What @BotFather hands out: the bot's id, a colon, 35 characters.
TELEGRAM_TOKEN = re.compile(r"[0-9]{5,20}:[A-Za-z0-9_-]{35}")
#: What Telegram accepts as a webhook's secret_token.
TELEGRAM_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")

#: Payment rails configured by a section of their own, in preference order.
Provider = Literal["btcpay", "lnbits", "onchain", "bitpay"]
PROVIDERS: tuple[Provider, ...] = get_args(Provider)
#: Every rail a plan or the bot can offer: the providers and Telegram Stars.
Rail = Literal[Provider, "stars"]


@dataclass(frozen=True, slots=True)
class AbsoluteUrlCheck:
    """``Annotated`` metadata for URL settings: an http(s) URL with a host, kept without its
    trailing slash; ``problem`` is the message otherwise."""

    problem: str = "must be an absolute http(s) URL"

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        return core_schema.no_info_after_validator_function(self.check, handler(source))

    def check(self, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(self.problem)
        return value.rstrip("/")


#: A URL setting. ``Annotated[str, AbsoluteUrlCheck("...")]`` is the same, with its own words.
AbsoluteUrl = Annotated[str, AbsoluteUrlCheck()]


def redact_url(url: str) -> str:
    """``url`` fit for a log line or a screen: its user and password, if any, become ***."""
    scheme, sep, rest = url.partition("://")
    end = _userinfo_end(rest) if sep else None
    return url if end is None else f"{scheme}://***{rest[end:]}"


def url_password(url: str) -> str | None:
    """The password written into ``url`` (user:password@host), decoded; None without one."""
    _, sep, rest = url.partition("://")
    end = _userinfo_end(rest) if sep else None
    if end is None:
        return None
    _, colon, password = rest[:end].partition(":")
    return unquote(password) if colon and password else None


def _userinfo_end(rest: str) -> int | None:
    """Where the user info of ``rest`` (a URL after "scheme://") ends at its "@", or None."""
    authority_end = next((i for i, char in enumerate(rest) if char in "/?#"), len(rest))
    end = rest.rfind("@", 0, authority_end)
    if end != -1:
        return end
    # A password with a raw "/", "?" or "#" (SQLAlchemy reads user:pa/ss@host so) is still one.
    match = re.match(r"[^:/?#@]*:[^@]*@", rest)
    return match.end() - 1 if match else None


def placeholder_reason(value: str) -> str | None:
    """Why ``value`` looks like an example rather than a real secret, or None."""
    text = value.strip().lower()
    if re.fullmatch(r"<.*>|\[.*\]|\{.*\}", text) or "${" in text or "{{" in text:
        return "a template slot such as <...> or ${...}"
    compact = re.sub(r"[\s._-]", "", text)
    if re.fullmatch(r"(.{1,4})\1+", compact):
        return "one character or a short pattern, repeated"
    for word in PLACEHOLDER_WORDS:
        if word in compact:
            return f"it contains {word!r}"
    for prefix in PLACEHOLDER_PREFIXES:
        if compact.startswith(prefix):
            return f"it starts with {prefix!r}"
    return None


def weak_secret(value: str, min_length: int = MIN_SECRET_LENGTH) -> str | None:
    """What makes ``value`` unfit as a secret (empty, a placeholder, too short), or None."""
    if not value.strip():
        return "is empty"
    reason = placeholder_reason(value)
    if reason is not None:
        return f"looks like a placeholder ({reason})"
    if len(value) < min_length:
        return f"is too short to be safe ({len(value)} characters, at least {min_length})"
    return None


class ConfigError(Exception):
    """Configuration that cannot start SatShare; ``str()`` is the message for the operator."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong in a configuration: the key (a path into the document) and what is
    wrong with it, shown as "config error: <key> (<file> line N): <message>"."""

    loc: tuple[str | int, ...]
    message: str
    #: Name where the key was set (its file line or environment variable)? Checks of how
    #: sections fit together name the key only.
    located: bool = True


#: The pydantic error types a Problem becomes inside a model validator.
_LOCATED, _UNLOCATED = "config_problem", "config_problem_unlocated"


def refuse(model: str, problems: Iterable[Problem]) -> None:
    """From a model validator: raise every problem at once (keys relative to the model being
    validated, so a section's problems name the section too); nothing when there is none."""
    details = [
        InitErrorDetails(
            type=PydanticCustomError(
                _LOCATED if problem.located else _UNLOCATED,
                "{message}",
                {"message": problem.message},
            ),
            loc=problem.loc,
            input=None,
        )
        for problem in problems
    ]
    if details:
        raise ValidationError.from_exception_data(model, details)


def _env_name(loc: Iterable[Any]) -> str:
    return ENV_PREFIX + "__".join(str(p).upper() for p in loc)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


def _missing(section: str, values: dict[str, SecretStr | str | None]) -> Iterable[Problem]:
    """A processor section with its url set and one of its other keys left out."""
    for name, value in values.items():
        if value is None:
            yield Problem(
                (name,),
                f"required when {section}.url is set (or set {_env_name((section, name))})",
            )


class DatabaseSettings(_Section):
    url: str = "sqlite+aiosqlite:///./satshare.db"
    pool_size: int = Field(10, ge=1, le=200)
    echo: bool = False

    @field_validator("url")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        if not re.match(r"^(sqlite|postgres|postgresql)(\+\w+)?://", value):
            raise ValueError("must be a sqlite:/// or postgresql:// URL")
        return value


class ServerSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    public_url: (
        Annotated[
            str,
            AbsoluteUrlCheck("must be an absolute http(s) URL such as https://pay.example.com"),
        ]
        | None
    ) = None
    #: A POST carrying an Idempotency-Key is stopped (503) after this long, so a key still
    #: claimed a little later belongs to a process that died, and a retry may take it over.
    request_timeout_seconds: int = Field(120, ge=2, le=3600)
    #: Processes answering on ``port``: ``satshare serve`` starts the others and shares its
    #: listening socket with them (the kernel hands each connection to one). Each is a whole
    #: ``serve`` on the same PostgreSQL database (the bot polls from one, jobs are shared
    #: through the queue), as separate ``serve`` processes already are. PostgreSQL only.
    workers: int = Field(1, ge=1, le=64)

    @property
    def base_url(self) -> str:
        if self.public_url:
            return self.public_url
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host  # noqa: S104
        return f"http://{host}:{self.port}"


class AffiliateLevel(_Section):
    name: str = Field(min_length=1, max_length=40)
    #: Thresholds over the affiliate's own direct referrals; a level without any always applies.
    min_paying_referrals: int | None = Field(None, ge=0)
    min_referred_sales_sats: int | None = Field(None, ge=0, le=MAX_SATS)
    share_bps: int = Field(ge=0, le=BPS_DENOMINATOR)


DEFAULT_TERMS = (
    "You earn the share shown in the bot of every subscription bought by people who joined "
    "through your link, on sales only (never for sign-ups) and only from your direct "
    "referrals. Commissions on refunded payments are taken back, even after they were paid out "
    "(your balance may then go below zero until new commissions cover it). Payouts go to the "
    "destination you give; network or routing fees are shown before you confirm."
)


class AffiliateSettings(_Section):
    share_bps: int = Field(5000, ge=0, le=BPS_DENOMINATOR)
    #: Ordered; an affiliate earns the share of the last level whose thresholds they meet.
    levels: list[AffiliateLevel] = Field(default_factory=list)
    #: Days a commission stays pending before it can be paid out (bitcoin has no chargebacks).
    hold_days: int = Field(0, ge=0, le=365)
    #: The affiliate terms, accepted before the first payout; change the version to re-ask.
    terms_text: str = Field(DEFAULT_TERMS, min_length=1, max_length=20_000)
    terms_version: str = Field("1", min_length=1, max_length=32)
    #: Extra days on the first paid subscription of a buyer who came through an affiliate's
    #: link (0: none). The affiliate's commission is unchanged: a share of what was paid.
    referee_bonus_days: int = Field(0, ge=0, le=3650)


class BTCPaySettings(_Section):
    url: (
        Annotated[str, AbsoluteUrlCheck("must be the absolute URL of your BTCPay Server")] | None
    ) = None
    api_key: SecretStr | None = None
    store_id: str | None = None
    webhook_secret: SecretStr | None = None
    speed_policy: Literal["HighSpeed", "MediumSpeed", "LowMediumSpeed", "LowSpeed"] = "MediumSpeed"
    payment_methods: list[str] = Field(default_factory=lambda: ["BTC-LN", "BTC-CHAIN"])
    timeout_seconds: float = Field(10.0, gt=0, le=120)

    @property
    def configured(self) -> bool:
        return self.url is not None

    @model_validator(mode="after")
    def _complete(self) -> BTCPaySettings:
        if self.configured:
            keys = {
                "api_key": self.api_key,
                "store_id": self.store_id,
                "webhook_secret": self.webhook_secret,
            }
            refuse("btcpay", _missing("btcpay", keys))
        return self


class LNbitsSettings(_Section):
    url: Annotated[str, AbsoluteUrlCheck("must be the absolute URL of your LNbits")] | None = None
    #: Creates and checks invoices.
    invoice_key: SecretStr | None = None
    #: Pays (affiliate payouts); never needed to sell.
    admin_key: SecretStr | None = None
    #: Signs the webhook URL LNbits calls (LNbits itself signs nothing); derived if empty.
    webhook_secret: SecretStr | None = None
    timeout_seconds: float = Field(10.0, gt=0, le=120)

    @property
    def configured(self) -> bool:
        return self.url is not None

    @model_validator(mode="after")
    def _complete(self) -> LNbitsSettings:
        if self.configured:
            refuse("lnbits", _missing("lnbits", {"invoice_key": self.invoice_key}))
        return self


class OnchainSettings(_Section):
    """A watch-only wallet: only the public key, addresses derived per invoice."""

    #: An output descriptor with a wildcard, e.g. wpkh([fingerprint/84h/0h/0h]xpub.../0/*).
    descriptor: str | None = None
    #: Or an account-level extended public key (xpub/zpub/tpub/vpub...) with script_type.
    xpub: str | None = None
    script_type: Literal["wpkh", "tr"] = "wpkh"
    network: Literal["mainnet", "testnet", "signet", "regtest"] = "mainnet"
    esplora_url: Annotated[str, AbsoluteUrlCheck("must be the absolute URL of an Esplora API")] = (
        "https://blockstream.info/api"
    )
    #: Confirmations before a payment settles. 0 would accept replaceable mempool payments.
    min_confirmations: int = Field(1, ge=0, le=100)
    #: Unused addresses in a row the wallet's restore would still scan (BIP44 default 20).
    gap_limit: int = Field(20, ge=1, le=100_000)
    timeout_seconds: float = Field(10.0, gt=0, le=120)

    @model_validator(mode="after")
    def _usable(self) -> OnchainSettings:
        if self.descriptor and self.xpub:
            raise ValueError("give onchain.descriptor or onchain.xpub, not both")
        if self.configured:
            self.wallet()  # raises a clear message on a bad key or descriptor
        return self

    @property
    def configured(self) -> bool:
        return bool(self.descriptor or self.xpub)

    def wallet(self) -> WatchOnlyWallet:
        try:
            if self.descriptor:
                return WatchOnlyWallet(self.descriptor, self.network)
            assert self.xpub
            return WatchOnlyWallet.from_xpub(self.xpub, self.script_type, self.network)
        except WalletError as exc:
            raise ValueError(str(exc)) from exc


class BitPaySettings(_Section):
    """BitPay (custodial, optional): REST API v2 with a pos-facade token."""

    url: AbsoluteUrl | None = None  # https://bitpay.com (or https://test.bitpay.com)
    token: SecretStr | None = None
    transaction_speed: Literal["high", "medium", "low"] = "medium"
    #: Signs the notificationURL given to BitPay (IPNs are unsigned); derived if empty.
    webhook_secret: SecretStr | None = None
    timeout_seconds: float = Field(10.0, gt=0, le=120)

    @property
    def configured(self) -> bool:
        return self.url is not None

    @model_validator(mode="after")
    def _complete(self) -> BitPaySettings:
        if self.configured:
            refuse("bitpay", _missing("bitpay", {"token": self.token}))
        return self


class StarsSettings(_Section):
    """Telegram Stars (XTR), sold inside the bot as Telegram requires for digital goods."""

    enabled: bool = False
    #: The affiliate's share of a Stars sale is credited in sats at this many sats per Star;
    #: empty: affiliates earn nothing on Stars sales (Stars cannot be paid out in bitcoin).
    sats_per_star: int | None = Field(None, ge=1, le=100_000)
    #: Plans of exactly 30 days are sold as Telegram Stars subscriptions (renewed monthly by
    #: Telegram) when their price is at most 10,000 Stars.
    subscription_links: bool = True


class PaymentsSettings(_Section):
    #: The rail used when a buyer does not choose; default: the first enabled of btcpay, lnbits.
    default_provider: Provider | None = None
    reconcile_interval_seconds: int = Field(60, ge=1, le=86_400)
    invoice_expiration_minutes: int = Field(15, ge=1, le=10_080)
    #: Settle on BTCPay "Processing" (paid, unconfirmed). Off: a zero-conf payment can be replaced.
    settle_on_processing: bool = False
    #: How long after expiry an invoice is still watched for late payments (BTCPay monitors 24 h).
    late_payment_window_hours: int = Field(24, ge=0, le=720)


class FiatPrice(_Section):
    amount: str = Field(description='A decimal string such as "9.99"')
    currency: str = Field(description="A 3-letter code such as USD, EUR, RUB")

    @model_validator(mode="after")
    def _valid(self) -> FiatPrice:
        try:
            _, self.currency = parse_fiat(self.amount, self.currency)
        except MoneyError as exc:
            raise ValueError(str(exc)) from exc
        return self


#: The languages SatShare speaks (its gettext catalogs).
Language = Literal["en", "ru"]
#: What a custom welcome text may name.
WELCOME_FIELDS = {"shop": "", "share": ""}


class PlanText(_Section):
    """A plan's title and description in one more language."""

    title: str = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=4000)


class PlanSettings(_Section):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    title: str = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=4000)
    #: Priced in sats, or in fiat (``price``) converted at invoice time; exactly one.
    price_sats: int | None = Field(None, ge=1, le=MAX_SATS)
    price: FiatPrice | None = None
    duration_days: int = Field(ge=1, le=3650)
    #: Telegram chat ids of the channels and groups the plan grants (negative numbers); none:
    #: a plan that sells access to something else (a website, an API), announced at start-up.
    channels: list[int] = Field(default_factory=list)
    #: Rails this plan may be paid with; default: every enabled rail.
    providers: list[Rail] | None = None
    #: Price in Telegram Stars, for selling inside the bot.
    price_stars: int | None = Field(None, ge=1, le=100_000)
    #: Title and description in other languages, e.g. ``{ru: {title: ..., description: ...}}``.
    translations: dict[Language, PlanText] = Field(default_factory=dict)
    #: A free trial of this many days, once per person and plan (0: no trial).
    trial_days: int = Field(0, ge=0, le=365)

    @field_validator("channels")
    @classmethod
    def _chat_ids(cls, channels: list[int]) -> list[int]:
        # Users have positive ids; channels and groups negative ones (-100… for channels and
        # supergroups), so a positive id is a person's, pasted by mistake.
        for chat_id in channels:
            if chat_id >= 0:
                raise ValueError(
                    f"{chat_id} is not a channel or group id: those are negative (channels "
                    "look like -1001234567890); forward a post from the channel to a bot such "
                    "as @getidsbot to read its id"
                )
        if len(set(channels)) != len(channels):
            raise ValueError("lists the same chat twice")
        return channels

    @model_validator(mode="after")
    def _one_price(self) -> PlanSettings:
        only_stars = self.providers == ["stars"]
        if only_stars and self.price_sats is None and self.price is None:
            if self.price_stars is None:
                raise ValueError("a Stars-only plan needs price_stars")
            return self
        if (self.price_sats is None) == (self.price is None):
            raise ValueError("give the plan exactly one of price_sats or price {amount, currency}")
        if self.providers and "stars" in self.providers and self.price_stars is None:
            raise ValueError("providers lists stars but the plan has no price_stars")
        return self


class TelegramSettings(_Section):
    #: Empty: the bot runs against the built-in Bot API emulator (sandbox).
    token: SecretStr | None = None
    api_base_url: AbsoluteUrl = "https://api.telegram.org"
    admin_chat_ids: list[int] = Field(default_factory=list)
    #: Set to receive updates by webhook (served by this app) instead of long polling.
    webhook_url: AbsoluteUrl | None = None
    #: X-Telegram-Bot-Api-Secret-Token; derived from the token when not set.
    webhook_secret: SecretStr | None = None
    #: join_request: one shared join-request link per channel, approved only for active
    #: subscribers. invite_link: a one-use link (member_limit 1) per buyer and channel.
    access_mode: Literal["join_request", "invite_link"] = "join_request"
    invite_link_ttl_hours: int = Field(24, ge=1, le=720)
    #: Expiry removal: log what would be removed without removing anyone.
    removal_dry_run: bool = False
    removal_max_per_run: int = Field(50, ge=1, le=10_000)
    #: Older names of branding.support_contact and branding.terms_url (used when those are
    #: not set).
    support_contact: str | None = Field(None, min_length=1, max_length=200)
    terms_url: str | None = None
    #: Rails the bot offers (e.g. [stars] for "Stars in the bot, bitcoin on the web checkout");
    #: default: every rail the plan allows.
    bot_rails: list[Rail] | None = None
    #: Messages per second the bot sends at most (Telegram allows about 30).
    max_messages_per_second: float = Field(25.0, gt=0, le=30)

    @property
    def configured(self) -> bool:
        return self.token is not None and bool(self.token.get_secret_value())


#: What SatShare calls the service where branding.name is not set (pages, report charts).
DEFAULT_BRAND = "SatShare"


class BrandingSettings(_Section):
    """Your name and words where SatShare would otherwise speak for itself."""

    #: Shown by the bot (Telegram Stars invoices too), the checkout, home and transparency
    #: pages and the report chart's title; default: the bot's own name in Telegram, and
    #: "SatShare" elsewhere.
    name: str | None = Field(None, min_length=1, max_length=64)
    #: The bot's first message per language; may name {shop} and {share} (the affiliate %).
    welcome: dict[Language, str] = Field(default_factory=dict)
    #: Whom buyers contact about a payment (@username, e-mail or URL), named by /paysupport
    #: and the checkout page; default: "the channel owner" in the buyer's language.
    support_contact: str | None = Field(None, min_length=1, max_length=200)
    #: Your terms of service, linked from /terms and the pages.
    terms_url: AbsoluteUrl | None = None

    @property
    def shown_name(self) -> str:
        """The name pages and report charts show: ``name``, else "SatShare"."""
        return self.name or DEFAULT_BRAND

    @field_validator("welcome")
    @classmethod
    def _known_fields(cls, texts: dict[str, str]) -> dict[str, str]:
        for language, text in texts.items():
            if not text.strip() or len(text) > 4000:
                raise ValueError(f"the {language} welcome must have 1 to 4000 characters")
            try:
                text.format(**WELCOME_FIELDS)
            except (KeyError, IndexError, ValueError) as exc:
                raise ValueError(
                    f"the {language} welcome can name only {{shop}} and {{share}} "
                    f"(write {{{{ and }}}} for a brace); found {exc}"
                ) from None
        return texts


class NotificationSettings(_Section):
    #: Days before the end of a subscription on which the buyer is reminded.
    reminder_days: list[int] = Field(default_factory=lambda: [7, 3, 1])
    #: Days a sent (or skipped) message stays in the outbox before the hourly housekeeping
    #: deletes it; never fewer than the longest reminder day plus one, so a reminder's
    #: dedupe key outlives the period in which it could be queued again.
    keep_sent_days: int = Field(30, ge=1, le=3650)

    @property
    def outbox_retention(self) -> timedelta:
        return timedelta(days=max(self.keep_sent_days, max(self.reminder_days, default=0) + 1))

    @field_validator("reminder_days")
    @classmethod
    def _positive(cls, days: list[int]) -> list[int]:
        if any(d < 1 or d > 365 for d in days):
            raise ValueError("reminder days must be between 1 and 365")
        return sorted(set(days), reverse=True)


class RatesSettings(_Section):
    """Where BTC prices come from for fiat-priced plans."""

    source: Literal["kraken", "yadio", "btcpay", "fixed"] = "kraken"
    #: Base URL of the source's API; default: the official one (sandbox: the built-in emulator).
    url: AbsoluteUrl | None = None
    #: A quote older than this is refused rather than used.
    max_age_seconds: int = Field(600, ge=5, le=86_400)
    #: For source "fixed": BTC price per currency, e.g. {USD: "97000"}.
    fixed: dict[str, str] = Field(default_factory=dict)
    timeout_seconds: float = Field(10.0, gt=0, le=120)

    @field_validator("fixed")
    @classmethod
    def _prices(cls, prices: dict[str, str]) -> dict[str, str]:
        for currency, price in prices.items():
            try:
                parse_fiat(price, currency)
            except MoneyError as exc:
                raise ValueError(f"{currency}: {exc}") from exc
        return {k.upper(): v for k, v in prices.items()}


class PayoutsSettings(_Section):
    """Paying affiliates. The provider sends the money; `manual` means the owner pays from
    their own wallet and records it with `satshare payout mark-paid`."""

    #: lnbits | btcpay | manual; empty: lnbits when lnbits.admin_key is set, the built-in
    #: BTCPay emulator in sandbox mode, else manual.
    provider: Literal["lnbits", "btcpay", "manual"] | None = None
    #: Which network destinations must be on; empty: onchain.network, else mainnet.
    network: Literal["mainnet", "testnet", "signet", "regtest"] | None = None
    min_sats: int = Field(10_000, ge=1)
    #: Payouts up to this amount are approved at once; larger ones wait for an admin.
    auto_approve_max_sats: int = Field(0, ge=0)
    #: Flat fee the affiliate pays per payout, deducted from what is sent; 0 = owner pays.
    lightning_fee_sats: int = Field(0, ge=0, le=1_000_000)
    onchain_fee_sats: int = Field(0, ge=0, le=1_000_000)
    #: Send each new commission at once to the affiliate's saved Lightning Address.
    instant_lightning: bool = False
    #: How often approved payouts are sent and unknown ones checked (seconds).
    interval_seconds: int = Field(30, ge=1, le=86_400)
    timeout_seconds: float = Field(30.0, gt=0, le=300)
    #: A payout whose fate is unknown is asked about again with backoff, up to this apart.
    recheck_max_seconds: int = Field(600, ge=10, le=86_400)
    #: Admins are alerted once a payout has stayed unknown this long (it is never released
    #: on silence: they decide after checking the provider).
    unknown_alert_minutes: int = Field(60, ge=1, le=10_080)


def _rate(text: str) -> str:
    """A rate as the ``limits`` library writes it: "100/10 seconds", "5 per minute"."""
    from limits import parse_many

    try:
        items = parse_many(text)
    except ValueError:
        raise ValueError(
            f'{text!r} is not a rate; write it as COUNT/PERIOD, e.g. "100/10 seconds" or "5/minute"'
        ) from None
    if len(items) != 1:
        raise ValueError(f'{text!r}: give one rate, e.g. "100/10 seconds"')
    return text


Rate = Annotated[str, AfterValidator(_rate)]


class RateLimitSettings(_Section):
    """Requests allowed per window (sliding window counters of the ``limits`` library); over them
    the API answers 429 with Retry-After. Processor webhooks are never limited."""

    enabled: bool = True
    #: Per API key (whatever the client's address).
    per_key: Rate = "100/10 seconds"
    #: Per client IP address (with or without a key).
    per_ip: Rate = "300/10 seconds"
    #: Per client IP on POST /admin/login (password guessing).
    login: Rate = "5/minute"


class ApiSettings(_Section):
    rate_limit: RateLimitSettings = Field(default_factory=RateLimitSettings)


class RedisSettings(_Section):
    #: redis://host:6379/0 — rate-limit counters shared by every process; empty: in the
    #: PostgreSQL database (in memory with SQLite, which serves one process).
    url: str | None = None

    @field_validator("url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value and not re.match(r"^rediss?://", value):
            raise ValueError("must be a redis:// or rediss:// URL")
        return value or None


class WebhooksSettings(_Section):
    """Outgoing webhooks (Standard Webhooks) to the endpoints managed in the API."""

    #: One delivery attempt ends after this long (then it is retried).
    timeout_seconds: float = Field(15.0, gt=0, le=120)
    #: Accept http:// endpoints and private addresses (always on in the sandbox). For
    #: testing on one machine only.
    allow_insecure_urls: bool = False
    #: Days an event's message stays, with its deliveries and their attempts (the delivery
    #: log, replays), once none of its deliveries is still being tried; then the hourly
    #: housekeeping deletes it.
    keep_days: int = Field(30, ge=1, le=3650)


class AdminSettings(_Section):
    """The web admin panel at /admin (accounts: `satshare admin create-user`)."""

    #: Signs the panel's session cookies; empty: a random one per start (everyone logs in
    #: again after a restart, and several processes do not share sessions).
    session_secret: SecretStr | None = None
    #: A session ends after this long without a request.
    idle_timeout_minutes: int = Field(30, ge=1, le=1440)
    #: Login attempts per client IP address per minute before it is slowed down (429),
    #: counted in each process; ``api.rate_limit.login`` (shared by every process) is
    #: checked first, so the lower of the two applies, and this one still does with the
    #: API's rate limits off.
    login_attempts_per_minute: int = Field(10, ge=1, le=1000)


class JobsSettings(_Section):
    #: inline: ``serve`` also runs the background jobs (one process does everything).
    #: workers: ``serve`` only answers (API, bot updates) and queues jobs after each commit;
    #: ``satshare worker`` processes run them. PostgreSQL only.
    mode: Literal["inline", "workers"] = "inline"
    #: Jobs one process runs at a time (``satshare worker --concurrency`` overrides).
    concurrency: int = Field(4, ge=1, le=64)


class SandboxSettings(_Section):
    #: Create an admin API key at start in sandbox mode and print it (never outside sandbox).
    print_api_key: bool = True


class MetricsSettings(_Section):
    #: When set, GET /metrics wants it as a bearer token (401 without it).
    token: SecretStr | None = None
    #: ``satshare worker`` serves its own /metrics on server.host at this port (no token:
    #: keep the port private); unset: a worker serves none.
    worker_port: int | None = Field(None, ge=1, le=65535)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    affiliate: AffiliateSettings = Field(default_factory=AffiliateSettings)
    btcpay: BTCPaySettings = Field(default_factory=BTCPaySettings)
    lnbits: LNbitsSettings = Field(default_factory=LNbitsSettings)
    onchain: OnchainSettings = Field(default_factory=OnchainSettings)
    bitpay: BitPaySettings = Field(default_factory=BitPaySettings)
    stars: StarsSettings = Field(default_factory=StarsSettings)
    payments: PaymentsSettings = Field(default_factory=PaymentsSettings)
    telegram: TelegramSettings = Field(default_factory=TelegramSettings)
    branding: BrandingSettings = Field(default_factory=BrandingSettings)
    notifications: NotificationSettings = Field(default_factory=NotificationSettings)
    rates: RatesSettings = Field(default_factory=RatesSettings)
    payouts: PayoutsSettings = Field(default_factory=PayoutsSettings)
    jobs: JobsSettings = Field(default_factory=JobsSettings)
    sandbox: SandboxSettings = Field(default_factory=SandboxSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    webhooks: WebhooksSettings = Field(default_factory=WebhooksSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    admin: AdminSettings = Field(default_factory=AdminSettings)
    plans: list[PlanSettings] = Field(default_factory=list)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    #: text: one readable line per record; json: one JSON object per line (log shippers).
    log_format: Literal["text", "json"] = "text"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The YAML document arrives as init kwargs; the environment must win over it.
        return (env_settings, init_settings, file_secret_settings)

    @field_validator("plans")
    @classmethod
    def _unique_plan_ids(cls, plans: list[PlanSettings]) -> list[PlanSettings]:
        seen: set[str] = set()
        for plan in plans:
            if plan.id in seen:
                raise ValueError(f"plan id {plan.id!r} appears twice; plan ids must be unique")
            seen.add(plan.id)
        return plans

    @model_validator(mode="after")
    def _branding_from_telegram(self) -> Settings:
        """telegram.support_contact and telegram.terms_url, the older keys, still count."""
        branding, telegram = self.branding, self.telegram
        if branding.support_contact is None and telegram.support_contact:
            branding.support_contact = telegram.support_contact
        if branding.terms_url is None and telegram.terms_url:
            branding.terms_url = telegram.terms_url
        return self

    def plan_text(self, plan_id: str, language: str) -> PlanText | None:
        """A plan's title and description in ``language``, if the config gives them."""
        for plan in self.plans:
            if plan.id == plan_id:
                return next((v for k, v in plan.translations.items() if k == language), None)
        return None

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        """The sections fit together: payouts can be sent as configured and, outside sandbox
        mode, every rail named (default, plans, rates) is configured."""
        live = [] if self.sandbox_mode else [*self._rates_problems(), *self._rail_problems()]
        refuse(
            "Settings",
            [
                *self._payout_problems(),
                *self._jobs_problems(),
                *self._server_problems(),
                *live,
            ],
        )
        return self

    def _server_problems(self) -> Iterable[Problem]:
        if self.server.workers == 1:
            return
        if not self.database.url.startswith(("postgresql", "postgres")):
            yield Problem(
                ("server", "workers"),
                "several processes share one database on PostgreSQL only; on SQLite one "
                "process serves: use 1 (or set database.url to PostgreSQL)",
            )
        elif self.sandbox_mode:
            yield Problem(
                ("server", "workers"),
                "the sandbox's emulators keep their state inside one `satshare serve`: use 1 "
                "until a payment processor is configured",
            )

    def _jobs_problems(self) -> Iterable[Problem]:
        if self.jobs.mode != "workers":
            return
        if not self.database.url.startswith(("postgresql", "postgres")):
            yield Problem(
                ("jobs", "mode"),
                "workers share a job queue on PostgreSQL; on SQLite one `satshare serve` "
                "runs every job itself: use inline (or set database.url to PostgreSQL)",
            )
        elif self.sandbox_mode:
            yield Problem(
                ("jobs", "mode"),
                "the sandbox's emulators live inside `satshare serve`, so its jobs run there: "
                "use inline until a payment processor is configured",
            )

    def _payout_problems(self) -> Iterable[Problem]:
        provider = self.payouts.provider
        if provider == "lnbits" and (not self.lnbits.configured or not self.lnbits.admin_key):
            yield Problem(
                ("payouts", "provider"),
                "lnbits pays with the wallet's admin key; set lnbits.url and lnbits.admin_key "
                "(or choose manual)",
                located=False,
            )
        if provider == "btcpay" and not self.btcpay.configured and not self.sandbox_mode:
            yield Problem(
                ("payouts", "provider"),
                "btcpay needs the btcpay section configured",
                located=False,
            )
        if self.payouts.instant_lightning:
            if self.payout_provider == "manual":
                yield Problem(
                    ("payouts", "instant_lightning"),
                    "instant splits need a payout provider that pays Lightning "
                    "(payouts.provider: lnbits or btcpay)",
                    located=False,
                )
            if self.affiliate.hold_days:
                yield Problem(
                    ("payouts", "instant_lightning"),
                    "cannot send commissions at once while affiliate.hold_days keeps them "
                    "pending; set one of them to 0",
                    located=False,
                )

    def _rates_problems(self) -> Iterable[Problem]:
        currencies = sorted({p.price.currency for p in self.plans if p.price is not None})
        if not currencies:
            return
        rates = self.rates
        if rates.source == "btcpay" and not self.btcpay.configured:
            yield Problem(
                ("rates", "source"), "btcpay needs the btcpay section configured", located=False
            )
        if rates.source == "fixed":
            missing = [c for c in currencies if c not in rates.fixed]
            if missing:
                yield Problem(
                    ("rates", "fixed"),
                    f"no price for {', '.join(missing)}, which fiat-priced plans use",
                    located=False,
                )

    def _rail_problems(self) -> Iterable[Problem]:
        """Every rail named by payments.default_provider or a plan is configured."""
        enabled = self.enabled_providers
        configured = f"(configured: {', '.join(enabled)})"
        chosen = self.payments.default_provider
        if chosen is not None and chosen not in enabled:
            yield Problem(
                ("payments", "default_provider"),
                f"{chosen} is not configured {configured}",
                located=False,
            )
        for number, plan in enumerate(self.plans):
            loc = ("plans", number, "providers")
            for name in plan.providers or []:
                if name == "stars":
                    if not self.stars.enabled:
                        yield Problem(loc, "stars needs stars.enabled", located=False)
                elif name not in enabled:
                    yield Problem(loc, f"{name} is not configured {configured}")

    @property
    def enabled_providers(self) -> list[str]:
        """Rails with their section configured, in preference order."""
        sections = {
            "btcpay": self.btcpay.configured,
            "lnbits": self.lnbits.configured,
            "onchain": self.onchain.configured,
            "bitpay": self.bitpay.configured,
        }
        return [name for name in PROVIDERS if sections[name]]

    @property
    def sandbox_mode(self) -> bool:
        """No payment processor configured: run on the built-in emulators."""
        return not self.enabled_providers

    @property
    def payout_provider(self) -> str:
        chosen = self.payouts.provider
        if chosen is not None:
            return chosen
        if self.lnbits.configured and self.lnbits.admin_key is not None:
            return "lnbits"
        if self.sandbox_mode:
            return "btcpay"  # the built-in BTCPay emulator pays at once: payouts just work
        return "manual"

    @property
    def payout_network(self) -> str:
        if self.payouts.network is not None:
            return self.payouts.network
        if self.onchain.configured:
            return self.onchain.network
        return "regtest" if self.sandbox_mode else "mainnet"

    @property
    def telegram_sandbox(self) -> bool:
        """Sandbox mode and no bot token: the bot talks to the built-in Bot API emulator.

        Never outside sandbox mode: the emulator and the sandbox chat page let anyone create
        Telegram users and buy, so with a real processor and no token the bot is simply off."""
        return self.sandbox_mode and not self.telegram.configured

    @property
    def bot_enabled(self) -> bool:
        """A real token, or the sandbox bot."""
        return self.telegram.configured or self.telegram_sandbox

    def notices(self) -> list[str]:
        """Valid settings an owner may not mean: said at start-up and by ``config check``."""
        return [
            f"plan {plan.id!r} lists no channels: it grants no Telegram access (fine for a "
            "plan sold for a website or an API; add channels: [-100…] to sell a channel)"
            for plan in self.plans
            if not plan.channels
        ]


#: SATSHARE_* variables that are not settings: read by the CLI, the tests and the benches;
#: the tests' screenshot directory and examples/website's own settings (#14).
OTHER_VARIABLES = frozenset(
    {
        "CONFIG",
        "TEST_DATABASE_URL",
        "CHROMIUM",
        "FAULT_POINTS",
        "FAULT_SEED",
        "SCREENSHOTS",
        "URL",
        "API_KEY",
        "WEBHOOK_SECRET",
    }
)


def _environment_names(model: type[BaseModel], prefix: str) -> Iterable[tuple[str, bool]]:
    """Every environment name the settings read below ``prefix``, and whether a deeper name
    (``NAME__MORE``) is read too (a section, a mapping or a list given as nested keys)."""
    for name, field in model.model_fields.items():
        full = f"{prefix}{name.upper()}"
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield full, False
            yield from _environment_names(annotation, full + "__")
        else:
            origin = getattr(annotation, "__origin__", None)
            yield full, origin in (dict, list)


def unknown_environment(environ: Mapping[str, str]) -> list[str]:
    """``SATSHARE_*`` variables that match no setting: pydantic-settings ignores them, so a
    typo (``SATSHARE_TELEGRAM_TOKEN`` with one underscore) would quietly leave the service
    in sandbox mode. One line each, naming the closest real variable."""
    names = dict(_environment_names(Settings, ENV_PREFIX))
    leaves = [n for n in names if not any(o.startswith(n + "__") for o in names)]
    problems: list[str] = []
    for variable in sorted(environ):
        upper = variable.upper()
        if not upper.startswith(ENV_PREFIX) or upper[len(ENV_PREFIX) :] in OTHER_VARIABLES:
            continue
        if upper in names or any(
            upper.startswith(name + "__") for name, deeper in names.items() if deeper
        ):
            continue
        # Compared without the shared prefix, which would make any two names look alike.
        close = difflib.get_close_matches(
            upper[len(ENV_PREFIX) :], [n[len(ENV_PREFIX) :] for n in leaves], n=1, cutoff=0.6
        )
        hint = (
            f"did you mean {ENV_PREFIX}{close[0]} ({close[0].lower().replace('__', '.')})?"
            if close
            else "settings are SATSHARE_<SECTION>__<KEY> (two underscores), as in "
            "SATSHARE_TELEGRAM__TOKEN; see satshare.example.yaml for the keys"
        )
        problems.append(f"config error: environment variable {variable} matches no setting; {hint}")
    return problems


def resolve_config_path(explicit: str | None) -> Path | None:
    """``--config`` wins, then ``SATSHARE_CONFIG``, then ``./satshare.yaml`` if it exists."""
    chosen = explicit or os.environ.get("SATSHARE_CONFIG")
    path = Path(chosen or DEFAULT_CONFIG_FILE)
    if path.is_dir():
        # A bind mount of a file the host does not have leaves a directory in its place.
        raise ConfigError(
            [f"config file {path} is a directory, not a file; give the path of the YAML file"]
        )
    if chosen and not path.is_file():
        raise ConfigError(
            [f"config file {chosen} does not exist; copy satshare.example.yaml to start"]
        )
    return path if path.is_file() else None


def load_settings(config_path: str | None = None) -> Settings:
    misspelt = unknown_environment(os.environ)
    if misspelt:
        raise ConfigError(misspelt)
    path = resolve_config_path(config_path)
    document: dict[str, Any] = {}
    root: yaml.Node | None = None
    if path is not None:
        root, loaded = _parse_yaml(_read_config(path), path)
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError([f"{path}: the top level must be a mapping of sections"])
        document = loaded
    try:
        settings = Settings(**document)
    except ValidationError as exc:
        raise ConfigError([_describe(p, path, root) for p in _problems_of(exc)]) from exc
    # The values an operator gives, checked here rather than by the model: code and tests
    # build settings with made-up tokens and keys.
    problems = [*_telegram_problems(settings), *_secret_problems(settings)]
    if problems:
        raise ConfigError([_describe(p, path, root) for p in problems])
    return settings


def _read_config(path: Path) -> str:
    """The file's text; one line naming the file when it cannot be read or is not UTF-8."""
    try:
        data = path.read_bytes()
    except PermissionError as exc:
        raise ConfigError(
            [
                f"config file {path} cannot be read (permission denied); make it readable by "
                "the user that runs satshare"
            ]
        ) from exc
    except OSError as exc:
        raise ConfigError([f"config file {path} cannot be read ({exc.strerror or exc})"]) from exc
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = data[: exc.start]
        line = before.count(b"\n") + 1
        column = exc.start - (before.rfind(b"\n") + 1) + 1
        raise ConfigError(
            [
                f"{path} line {line}, column {column}: not UTF-8 text (byte "
                f"0x{data[exc.start]:02x}); save the file as UTF-8"
            ]
        ) from exc


def _parse_yaml(text: str, path: Path) -> tuple[yaml.Node | None, Any]:
    """The composed tree (for line numbers) and the document, parsed once; a key given twice
    or broken syntax is a ConfigError of one line each."""
    try:
        loader = yaml.SafeLoader(text)  # the reader refuses control characters at once
        try:
            root = loader.get_single_node()
            duplicates = _duplicate_keys(root, path)
            if duplicates:
                raise ConfigError(duplicates)
            return root, loader.construct_document(root) if root is not None else None
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        raise ConfigError([_yaml_error(exc, path, text)]) from exc


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _yaml_error(exc: yaml.YAMLError, path: Path, text: str) -> str:
    """PyYAML's error as one line: where, what, and the construct it was reading."""
    if isinstance(exc, yaml.reader.ReaderError):
        before = text[: exc.position]
        line, column = before.count("\n") + 1, exc.position - (before.rfind("\n") + 1) + 1
        return (
            f"{path} line {line}, column {column}: a control character (U+{exc.character:04X}) "
            "is not allowed in YAML; remove it"
        )
    if not isinstance(exc, yaml.MarkedYAMLError):
        return f"{path}: not valid YAML ({_one_line(str(exc))}); fix the YAML syntax"
    mark = exc.problem_mark or exc.context_mark
    where = f" line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    if exc.problem == "but found another document":
        return f"{path}{where}: a second YAML document starts here; keep one document per file"
    problem = _one_line(exc.problem or exc.context or "not valid YAML")
    context = ""
    if exc.problem and exc.context:
        context_mark = exc.context_mark
        at = (
            f" at line {context_mark.line + 1}, column {context_mark.column + 1}"
            if context_mark is not None
            and (
                mark is None or (context_mark.line, context_mark.column) != (mark.line, mark.column)
            )
            else ""
        )
        context = f" ({_one_line(exc.context)}{at})"
    if "'\\t'" in problem:
        fix = "YAML indents with spaces, not tabs: replace the tab there"
    elif problem == "mapping values are not allowed here" or "<block end>" in problem:
        fix = (
            "fix the YAML syntax there: check the line's indentation against the lines "
            "above, and quote a value that contains ': '"
        )
    else:
        fix = "fix the YAML syntax there"
    return f"{path}{where}: {problem}{context}; {fix}"


_MERGE_TAG = "tag:yaml.org,2002:merge"


def _duplicate_keys(root: yaml.Node | None, path: Path) -> list[str]:
    """A key given twice in one mapping, anywhere in the document: PyYAML would quietly keep
    the last value (``server.host`` given twice listens where the later line says)."""
    problems: list[str] = []
    constructor = yaml.constructor.SafeConstructor()
    walked: set[int] = set()

    def identity(key: yaml.Node) -> Any:
        # Keys as PyYAML builds them: "host" and 'host' are one key, so are 1 and 0x1.
        try:
            value = constructor.construct_object(key)
            hash(value)
        except (yaml.YAMLError, TypeError):
            return (key.tag, key.value)
        return value

    def walk(node: yaml.Node, loc: tuple[str | int, ...]) -> None:
        if id(node) in walked:  # an alias: checked where its anchor is
            return
        walked.add(id(node))
        if isinstance(node, yaml.MappingNode):
            first: dict[Any, yaml.Node] = {}
            for key, value in node.value:
                if key.tag == _MERGE_TAG:  # "<<: *defaults": later keys override, by design
                    walk(value, loc)
                    continue
                if not isinstance(key, yaml.ScalarNode):
                    continue
                name = identity(key)
                if name in first:
                    problems.append(
                        f"{path} line {key.start_mark.line + 1}: {_dotted((*loc, key.value))} "
                        f"is given twice (first on line {first[name].start_mark.line + 1}); "
                        "keep one"
                    )
                else:
                    first[name] = key
                walk(value, (*loc, key.value))
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                walk(item, (*loc, index))

    if root is not None:
        walk(root, ())
    return problems


def _dotted(loc: Iterable[Any]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        else:
            parts.append(("." if parts else "") + str(item))
    return "".join(parts)


def _line_of(root: yaml.Node | None, loc: Iterable[Any]) -> int | None:
    """Walk the composed YAML tree along ``loc``; return the 1-based line of the deepest match."""
    node = root
    line: int | None = None
    for item in loc:
        if isinstance(node, yaml.MappingNode):
            match = next((v for k, v in node.value if getattr(k, "value", None) == item), None)
            if match is None:
                key = next((k for k, _ in node.value if getattr(k, "value", None) == item), None)
                return key.start_mark.line + 1 if key is not None else line
            line = match.start_mark.line + 1
            node = match
        elif isinstance(node, yaml.SequenceNode) and isinstance(item, int):
            if item >= len(node.value):
                return line
            node = node.value[item]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def _from_environment(loc: tuple[Any, ...]) -> bool:
    return _env_name(loc) in os.environ


def _where(loc: tuple[Any, ...], path: Path | None, root: yaml.Node | None) -> str:
    """Where a key's value came from, for a message: " (from environment variable X)" or
    " (<file> line N)"; empty when neither is known (a default)."""
    if _from_environment(loc):
        return f" (from environment variable {_env_name(loc)})"
    line = _line_of(root, loc)
    return f" ({path} line {line})" if path is not None and line is not None else ""


def _describe(problem: Problem, path: Path | None, root: yaml.Node | None) -> str:
    """The one line shown for a problem: "config error: <key> (<where>): <message>"."""
    key = _dotted(problem.loc) or "(top level)"
    where = _where(problem.loc, path, root) if problem.located else ""
    return f"config error: {key}{where}: {problem.message}"


def _problems_of(exc: ValidationError) -> Iterable[Problem]:
    for error in exc.errors():
        loc = tuple(error["loc"])
        if error["type"] == "extra_forbidden":
            close = difflib.get_close_matches(str(loc[-1]), _keys_at(loc[:-1]), n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]}?" if close else ""
            yield Problem(loc, f"unknown key{hint} (see satshare.example.yaml for the valid keys)")
        elif error["type"] == "model_type":
            # Not pydantic's "a valid dictionary or instance of ServerSettings".
            yield Problem(loc, "must be a mapping of settings (key: value lines)")
        elif error["type"] == "dict_type":
            yield Problem(loc, "must be a mapping (key: value lines)")
        elif error["type"] == "value_error":
            # The validator's own words, without pydantic's "Value error, " in front.
            yield Problem(loc, str(error["ctx"]["error"]))
        else:
            yield Problem(loc, error["msg"], located=error["type"] != _UNLOCATED)


def _keys_at(loc: Iterable[Any]) -> list[str]:
    """The valid keys of the section at ``loc`` (a path into Settings), for a near-miss hint;
    empty where the keys are free (a mapping of languages, of currencies)."""

    def unwrap(annotation: Any) -> Any:  # X | None and Annotated[X, ...] are X here
        while get_origin(annotation) in (Union, UnionType, Annotated):
            args = [a for a in get_args(annotation) if a is not type(None)]
            if len(args) != 1 and get_origin(annotation) is not Annotated:
                return None
            annotation = args[0]
        return annotation

    annotation: Any = Settings
    for item in loc:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = annotation.model_fields.get(str(item))
            if field is None:
                return []
            annotation = field.annotation
        elif get_origin(annotation) is list and isinstance(item, int):
            annotation = get_args(annotation)[0]
        elif get_origin(annotation) is dict:
            annotation = get_args(annotation)[1]
        else:
            return []
        annotation = unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return list(annotation.model_fields)
    return []


def _telegram_problems(settings: Settings) -> Iterable[Problem]:
    telegram = settings.telegram
    if not telegram.configured:
        return
    assert telegram.token is not None
    token = telegram.token.get_secret_value()
    reason = placeholder_reason(token.partition(":")[2])
    if not TELEGRAM_TOKEN.fullmatch(token) or reason is not None:
        yield Problem(
            ("telegram", "token"),
            "does not look like a bot token from @BotFather (the bot's id, a colon, then 35 "
            "characters"
            + (f"; this one looks like a placeholder: {reason}" if reason else "")
            + "); paste the token @BotFather gave you, or leave it empty for the sandbox bot",
        )
    if telegram.webhook_url and not telegram.webhook_url.startswith("https://"):
        yield Problem(
            ("telegram", "webhook_url"),
            "Telegram only delivers webhooks to https:// URLs (ports 443, 80, 88 or 8443); "
            "leave it empty for long polling",
        )


#: How to get a good value, for the secrets a processor issues.
_SECRET_SOURCES = {
    ("btcpay", "api_key"): "copy the whole key from BTCPay Server (Account, API keys)",
    ("btcpay", "webhook_secret"): "use the secret of the store's webhook in BTCPay Server",
    ("lnbits", "invoice_key"): "copy the wallet's invoice/read key from LNbits (API info)",
    ("lnbits", "admin_key"): "copy the wallet's admin key from LNbits (API info)",
    ("bitpay", "token"): "copy the pos-facade API token from BitPay",
}
#: Secrets SatShare derives from another one when they are left out.
_DERIVED_SECRETS = {
    ("lnbits", "webhook_secret"),
    ("bitpay", "webhook_secret"),
    ("telegram", "webhook_secret"),
}


def _secrets(settings: Settings) -> Iterable[tuple[tuple[str, str], str]]:
    """Every secret setting that holds a value, in every section (new ones included)."""
    for section_name in type(settings).model_fields:
        section = getattr(settings, section_name)
        if isinstance(section, BaseModel):
            for name, value in section:
                if isinstance(value, SecretStr):
                    yield (section_name, name), value.get_secret_value()


def secret_values(settings: Settings) -> list[str]:
    """Every secret the settings hold, and the passwords in their URLs (kept out of logs)."""
    values = [value for _, value in _secrets(settings)]
    values += [p for _, url in _urls(settings) if (p := url_password(url))]
    return values


def _urls(settings: Settings) -> Iterable[tuple[tuple[str, str], str]]:
    for section_name in type(settings).model_fields:
        section = getattr(settings, section_name)
        if isinstance(section, BaseModel):
            for name, value in section:
                if name.endswith("url") and isinstance(value, str):
                    yield (section_name, name), value


def _secret_problems(settings: Settings) -> Iterable[Problem]:
    """Each secret given, in any mode: not empty, not a placeholder, long enough."""
    for loc, value in _secrets(settings):
        if loc == ("telegram", "token"):
            continue  # empty means the sandbox bot; its shape is checked on its own
        problem = weak_secret(value)
        telegram_secret = loc == ("telegram", "webhook_secret")
        if problem is None and telegram_secret and not TELEGRAM_SECRET.fullmatch(value):
            problem = "holds characters Telegram refuses (only A-Z, a-z, 0-9, _ and -)"
        if problem is None:
            continue
        fix = _SECRET_SOURCES.get(
            loc,
            f"use at least {MIN_SECRET_LENGTH} random characters (e.g. `openssl rand -hex 24`)",
        )
        if loc in _DERIVED_SECRETS:
            fix += ", or leave the key out to derive one"
        if not _from_environment(loc):
            fix += f" (better kept in {_env_name(loc)})"
        yield Problem(loc, f"{problem}; {fix}")
    for loc, url in _urls(settings):
        password = url_password(url)
        problem = weak_secret(password) if password is not None else None
        if problem is not None:
            yield Problem(
                loc,
                f"the password in this URL {problem}; set the account's password to at least "
                f"{MIN_SECRET_LENGTH} random characters (e.g. `openssl rand -hex 24`) and put "
                "it here",
            )
