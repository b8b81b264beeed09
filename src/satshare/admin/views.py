"""SQLAdmin model views: lists with search, filters, detail and CSV/JSON export.

All read-only: every change goes through the workflow pages (``pages.py``), which call the
domain services the API uses and write the audit log. SQLAdmin's create/edit/delete routes
answer 403 for every model here.

The list and detail pages show each value as a person reads it (``shown``); the
exports keep the stored values."""

from __future__ import annotations

import builtins
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar

from markupsafe import Markup
from sqladmin import ModelView
from sqladmin.filters import BooleanFilter, StaticValuesFilter
from sqladmin.pagination import Pagination
from sqlalchemy import inspect
from sqlalchemy.exc import StatementError
from starlette.requests import Request

from satshare.admin.auth import Permission, operator
from satshare.admin.services import services_of
from satshare.admin.texts import N_, Label, label, lazy, number, t
from satshare.affiliates.models import AffiliateTerms, TermsAcceptance
from satshare.apikeys.models import ApiKey
from satshare.audit.models import AuditEvent, Channel
from satshare.ledger.models import Entry, EntryKind
from satshare.notifications.models import OutboxMessage
from satshare.payments.models import Invoice, InvoiceStatus, Payment
from satshare.payouts.models import Payout, PayoutStatus
from satshare.plans import flows as plan_flows
from satshare.plans.models import Plan
from satshare.staff.models import AdminUser
from satshare.subscriptions.models import Subscription, SubscriptionStatus
from satshare.users import flows as user_flows
from satshare.users.models import User

#: What each record column is called on the list and detail pages, in English here and in
#: Russian in the panel's catalog (by column name: a name means the same in every table).
#: A column missing here would show its raw name; tests/test_admin_texts.py fails then.
COLUMN_LABELS: dict[str, str] = {
    "id": N_("Id"),
    "accepted_at": N_("Accepted"),
    "action": N_("Action"),
    "active": N_("On sale"),
    "actor": N_("Who"),
    "address": N_("Bitcoin address"),
    "affiliate_user_id": N_("Affiliate"),
    "after": N_("After the change"),
    "amount_sats": N_("Amount, sats"),
    "amount_stars": N_("Amount, Stars"),
    "approved_by": N_("Approved by"),
    "attempts": N_("Attempts"),
    "before": N_("Before the change"),
    "bonus_days": N_("Bonus days"),
    "channel": N_("Where from"),
    "channels": N_("Channels"),
    "chat_id": N_("Chat"),
    "checkout_link": N_("Checkout link"),
    "checks": N_("Checks so far"),
    "completed_at": N_("Completed"),
    "created_at": N_("Created"),
    "created_by": N_("Created by"),
    "currency": N_("Currency"),
    "dedupe_key": N_("Deduplication key"),
    "description": N_("Description"),
    "destination": N_("Destination"),
    "destination_kind": N_("Destination type"),
    "disabled_at": N_("Disabled"),
    "discount_sats": N_("Discount, sats"),
    "display_prefix": N_("Key prefix"),
    "duration_days": N_("Duration, days"),
    "ends_at": N_("Ends"),
    "escalated_at": N_("Admins alerted"),
    "expires_at": N_("Expires"),
    "external_id": N_("Id on the platform"),
    "failed_logins": N_("Failed logins"),
    "failure": N_("Failure"),
    "fee_sats": N_("Fee, sats"),
    "fiat_amount": N_("Fiat amount"),
    "fiat_currency": N_("Fiat currency"),
    "gross_sats": N_("Gross, sats"),
    "idempotency_key": N_("Idempotency key"),
    "instant": N_("Instant"),
    "invoice_id": N_("Invoice"),
    "key_hash": N_("Key hash"),
    "kind": N_("Kind"),
    "language": N_("Language"),
    "last_error": N_("Last error"),
    "last_login_at": N_("Last login"),
    "last_used_at": N_("Last used"),
    "last_paid_sats": N_("Last paid, sats"),
    "leaderboard_name": N_("Leaderboard name"),
    "ledger_entry_id": N_("Ledger entry"),
    "locked_until": N_("Locked until"),
    "name": N_("Name"),
    "network_fee_sats": N_("Network fee, sats"),
    "next_attempt_at": N_("Next attempt"),
    "next_check_at": N_("Next check"),
    "original_sats": N_("Price before discount, sats"),
    "overpaid_sats": N_("Overpaid, sats"),
    "paid_late": N_("Paid late"),
    "paid_sats": N_("Paid, sats"),
    "password_changed_at": N_("Password changed"),
    "password_hash": N_("Password hash"),
    "payload": N_("Contents"),
    "payment_hash": N_("Payment hash"),
    "payment_request": N_("Payment request (BOLT11)"),
    "payments": N_("Payments"),
    "plan_id": N_("Plan"),
    "platform": N_("Platform"),
    "price_sats": N_("Price, sats"),
    "price_stars": N_("Price, Stars"),
    "promo_code": N_("Promo code"),
    "proof": N_("Proof (txid or preimage)"),
    "provider": N_("Provider"),
    "provider_additional_status": N_("Provider's extra status"),
    "provider_invoice_id": N_("Provider's invoice id"),
    "provider_ref": N_("Provider's reference"),
    "provider_status": N_("Provider's status"),
    "providers": N_("Rails"),
    "rate": N_("Exchange rate"),
    "rate_at": N_("Rate time"),
    "rate_source": N_("Rate source"),
    "reason": N_("Reason"),
    "received_sats": N_("Received, sats"),
    "referral_code": N_("Referral code"),
    "referrer_id": N_("Referrer"),
    "requested_by": N_("Requested by"),
    "reverses_entry_id": N_("Reverses entry"),
    "revoked_at": N_("Revoked"),
    "role": N_("Role"),
    "sandbox": N_("Sandbox account"),
    "scopes": N_("Scopes"),
    "send_sats": N_("Sent, sats"),
    "sent_at": N_("Sent"),
    "set_by": N_("Set by"),
    "settled_at": N_("Settled"),
    "share_bps": N_("Share, basis points"),
    "source": N_("Source"),
    "started_at": N_("Started"),
    "status": N_("Status"),
    "subscription_id": N_("Subscription"),
    "target": N_("Target"),
    "terms": N_("Terms applied"),
    "title": N_("Title"),
    "trial_days": N_("Trial days"),
    "unreachable_at": N_("Unreachable since"),
    "updated_at": N_("Updated"),
    "user_id": N_("User"),
    "username": N_("User name"),
    "version": N_("Terms version"),
}


def _label(name: str) -> str:
    """A column's label, translated when shown (the raw name if it has none)."""
    return Label(COLUMN_LABELS[name]) if name in COLUMN_LABELS else name


class KnownValuesFilter(StaticValuesFilter):
    """A value filter that ignores a value not among its choices (SQLAdmin would put it in
    the query, and a typed column refuses it with an error). Its choices are shown in the
    operator's language (states and kinds are words of the panel's catalog)."""

    async def get_filtered_query(self, query: Any, value: Any, model: Any) -> Any:
        if value not in {choice for choice, _ in self.values}:
            return query
        return await super().get_filtered_query(query, value, model)

    async def lookups(self, request: Any, model: Any, run_query: Any) -> list[tuple[str, str]]:
        return [("__all", t("All"))] + [(value, label(shown)) for value, shown in self.values]


class YesNoFilter(BooleanFilter):
    """SQLAdmin's yes/no filter, its choices in the operator's language."""

    async def lookups(self, request: Any, model: Any, run_query: Any) -> list[tuple[str, str]]:
        return [("all", t("All")), ("true", t("Yes")), ("false", t("No"))]


def _values(enum: Any) -> list[tuple[str, str]]:
    return [(member.value, member.value) for member in enum]


#: What an empty value shows.
EMPTY = "—"
#: Columns that hold a user's id.
USER_COLUMNS = frozenset({"user_id", "affiliate_user_id", "referrer_id"})
#: Columns that hold another record's id, and that record's view (its page is a link).
REFERENCES: dict[str, str] = {
    **dict.fromkeys(USER_COLUMNS, "user"),
    "plan_id": "plan",
    "invoice_id": "invoice",
    "subscription_id": "subscription",
    "ledger_entry_id": "entry",
    "reverses_entry_id": "entry",
}
#: Text columns whose values are the states and kinds the panel's catalog words.
STATE_COLUMNS = frozenset({"status", "role", "channel"})
#: Integer columns that are amounts (written 10,000 / 10 000).
AMOUNT_SUFFIXES = ("_sats", "_stars")


@dataclass(slots=True)
class Names:
    """The users and plans the records on a page refer to (read once per page)."""

    users: dict[int, User] = field(default_factory=dict)
    plans: dict[str, Plan] = field(default_factory=dict)


def _when(moment: datetime) -> str:
    """A moment in UTC to the second (stored with microseconds)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _user(user_id: int, names: Names) -> str:
    found = names.users.get(user_id)
    if found is None or not found.username:
        return f"#{user_id}"
    handle = f"@{found.username}" if found.platform == "telegram" else found.username
    return f"#{user_id} {handle}"


def _plan(plan_id: str, names: Names) -> str:
    found = names.plans.get(plan_id)
    return f"{found.title} ({plan_id})" if found is not None else plan_id


def _reference(request: Request | None, name: str, value: Any) -> str:
    """How a reference to another record names it: a user by id and user name, a plan by
    title, anything else by its id."""
    names: Names = getattr(request.state, "record_names", Names()) if request else Names()
    if name in USER_COLUMNS:
        return _user(value, names)
    if name == "plan_id":
        return _plan(value, names)
    return str(value)


def shown(request: Request | None, name: str, value: Any) -> Any:
    """``value`` of column ``name`` as the list and detail pages show it: a dash when empty,
    a moment in UTC to the second, an amount with thousands separators (still whole sats),
    a state in the panel's words, yes or no, JSON as JSON, and a reference to another record
    as a link naming it (a user by id and user name, a plan by title)."""
    if value is None or value == "":
        return EMPTY
    if name in REFERENCES:
        text = _reference(request, name, value)
        if request is None:
            return text
        url = request.url_for("admin:details", identity=REFERENCES[name], pk=str(value))
        return Markup('<a href="{}">{}</a>').format(url, text)
    if isinstance(value, bool):
        return t("Yes") if value else t("No")
    if isinstance(value, datetime):
        return _when(value)
    if isinstance(value, int) and name.endswith(AMOUNT_SUFFIXES):
        return number(value)
    if isinstance(value, StrEnum) or (name in STATE_COLUMNS and isinstance(value, str)):
        return label(str(value))
    if isinstance(value, dict | builtins.list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    return value


class ReadOnly(ModelView):
    can_create = False
    can_edit = False
    can_delete = False
    can_view_details = True
    can_export = True
    export_types: ClassVar[list[str]] = ["csv", "json"]
    page_size = 50
    page_size_options: ClassVar[list[int]] = [25, 50, 100, 200]
    category = lazy("Records")
    needs: ClassVar[Permission] = Permission.READ

    def is_accessible(self, request: Request) -> bool:
        found = operator(request)
        return found is not None and found.can(self.needs)

    def is_visible(self, request: Request) -> bool:
        return self.is_accessible(request)

    def search_placeholder(self) -> str:
        # SQLAdmin joins the labels as strings; ours are translated when shown.
        return ", ".join(str(self._column_labels.get(f, f)) for f in self._search_fields)

    async def get_object_for_details(self, request: Request) -> Any:
        """None (SQLAdmin answers 404) for an id that is not one: SQLAdmin would raise on
        ``details/abc`` or an id past the column's range."""
        try:
            found = await super().get_object_for_details(request)
        except (ValueError, OverflowError, StatementError):
            return None
        if found is not None:
            await self._read_names(request, [found], self._details_prop_names)
        return found

    async def list(self, request: Request) -> Pagination:
        page = await super().list(request)
        await self._read_names(request, page.rows, self._list_prop_names)
        return page

    async def _read_names(
        self, request: Request, rows: builtins.list[Any], columns: builtins.list[str]
    ) -> None:
        """The users and plans ``rows`` refer to in ``columns``, for ``shown``: one read of
        each kind per page, not one per cell."""
        names = Names()
        db = services_of(request).db
        users = {
            value
            for row in rows
            for name in USER_COLUMNS.intersection(columns)
            if isinstance(value := getattr(row, name, None), int)
        }
        if users:
            names.users = await user_flows.get_many(db, users)
        if "plan_id" in columns:
            names.plans = {plan.id: plan for plan in await plan_flows.list_all(db)}
        request.state.record_names = names

    async def get_list_value(
        self, obj: Any, prop: str, request: Request | None = None
    ) -> tuple[Any, Any]:
        value = await self.get_prop_value(obj, prop)
        return value, shown(request, prop, value)

    get_detail_value = get_list_value  # the same on both pages


class UserView(ReadOnly, model=User):
    name = lazy("User")
    name_plural = lazy("Users")
    icon = "fa-solid fa-user"
    column_list: ClassVar[Any] = [
        User.id,
        User.username,
        User.platform,
        User.external_id,
        User.referral_code,
        User.referrer_id,
        User.language,
        User.created_at,
    ]
    column_searchable_list: ClassVar[Any] = [
        User.username,
        User.external_id,
        User.referral_code,
    ]
    column_sortable_list: ClassVar[Any] = [User.id, User.created_at, User.username]
    column_default_sort: ClassVar[Any] = [(User.id, True)]
    column_filters: ClassVar[Any] = [
        KnownValuesFilter(
            User.platform, [(p, p) for p in ("telegram", "discord", "website", "api")]
        )
    ]


class SubscriptionView(ReadOnly, model=Subscription):
    name = lazy("Subscription")
    name_plural = lazy("Subscriptions")
    icon = "fa-solid fa-calendar-check"
    column_list: ClassVar[Any] = [
        Subscription.id,
        Subscription.user_id,
        Subscription.plan_id,
        Subscription.status,
        Subscription.started_at,
        Subscription.ends_at,
    ]
    column_searchable_list: ClassVar[Any] = [Subscription.plan_id]
    column_sortable_list: ClassVar[Any] = [Subscription.id, Subscription.ends_at]
    column_default_sort: ClassVar[Any] = [(Subscription.id, True)]
    column_filters: ClassVar[Any] = [
        KnownValuesFilter(Subscription.status, _values(SubscriptionStatus))
    ]


class InvoiceView(ReadOnly, model=Invoice):
    name = lazy("Invoice")
    name_plural = lazy("Invoices")
    icon = "fa-solid fa-file-invoice"
    column_list: ClassVar[Any] = [
        Invoice.id,
        Invoice.user_id,
        Invoice.plan_id,
        Invoice.provider,
        Invoice.amount_sats,
        Invoice.paid_sats,
        Invoice.status,
        Invoice.created_at,
        Invoice.settled_at,
    ]
    column_searchable_list: ClassVar[Any] = [Invoice.id, Invoice.provider_invoice_id]
    column_sortable_list: ClassVar[Any] = [Invoice.created_at, Invoice.amount_sats]
    column_default_sort: ClassVar[Any] = [(Invoice.created_at, True)]
    column_filters: ClassVar[Any] = [
        KnownValuesFilter(Invoice.status, _values(InvoiceStatus)),
        KnownValuesFilter(
            Invoice.provider, [(p, p) for p in ("btcpay", "lnbits", "onchain", "bitpay", "stars")]
        ),
    ]


class PaymentView(ReadOnly, model=Payment):
    name = lazy("Payment")
    name_plural = lazy("Payments")
    icon = "fa-solid fa-bolt"
    column_list: ClassVar[Any] = [
        Payment.id,
        Payment.invoice_id,
        Payment.user_id,
        Payment.provider,
        Payment.overpaid_sats,
        Payment.paid_late,
        Payment.ledger_entry_id,
        Payment.settled_at,
    ]
    column_searchable_list: ClassVar[Any] = [Payment.invoice_id, Payment.proof]
    column_default_sort: ClassVar[Any] = [(Payment.id, True)]
    column_filters: ClassVar[Any] = [YesNoFilter(Payment.paid_late)]


class PayoutView(ReadOnly, model=Payout):
    name = lazy("Payout")
    name_plural = lazy("Payouts")
    icon = "fa-solid fa-money-bill-transfer"
    column_list: ClassVar[Any] = [
        Payout.id,
        Payout.user_id,
        Payout.amount_sats,
        Payout.fee_sats,
        Payout.status,
        Payout.provider,
        Payout.destination_kind,
        Payout.created_at,
        Payout.completed_at,
    ]
    column_details_exclude_list: ClassVar[Any] = [Payout.payment_request]
    column_searchable_list: ClassVar[Any] = [Payout.destination, Payout.proof]
    column_default_sort: ClassVar[Any] = [(Payout.id, True)]
    column_filters: ClassVar[Any] = [KnownValuesFilter(Payout.status, _values(PayoutStatus))]


class EntryView(ReadOnly, model=Entry):
    name = lazy("Ledger entry")
    name_plural = lazy("Ledger entries")
    icon = "fa-solid fa-book"
    column_list: ClassVar[Any] = [
        Entry.id,
        Entry.kind,
        Entry.created_at,
        Entry.invoice_id,
        Entry.gross_sats,
        Entry.share_bps,
        Entry.affiliate_user_id,
        Entry.reverses_entry_id,
        Entry.created_by,
    ]
    column_searchable_list: ClassVar[Any] = [Entry.invoice_id, Entry.idempotency_key]
    column_default_sort: ClassVar[Any] = [(Entry.id, True)]
    column_filters: ClassVar[Any] = [KnownValuesFilter(Entry.kind, _values(EntryKind))]


class PlanView(ReadOnly, model=Plan):
    name = lazy("Plan")
    name_plural = lazy("Plans (records)")
    icon = "fa-solid fa-tags"
    column_list: ClassVar[Any] = [
        Plan.id,
        Plan.source,
        Plan.title,
        Plan.price_sats,
        Plan.duration_days,
        Plan.active,
    ]
    column_searchable_list: ClassVar[Any] = [Plan.id, Plan.title]


class TermsView(ReadOnly, model=AffiliateTerms):
    name = lazy("Custom terms")
    name_plural = lazy("Custom terms")
    icon = "fa-solid fa-handshake"
    column_list: ClassVar[Any] = [
        AffiliateTerms.id,
        AffiliateTerms.user_id,
        AffiliateTerms.version,
        AffiliateTerms.share_bps,
        AffiliateTerms.set_by,
        AffiliateTerms.reason,
        AffiliateTerms.created_at,
    ]
    column_default_sort: ClassVar[Any] = [(AffiliateTerms.id, True)]


class AcceptanceView(ReadOnly, model=TermsAcceptance):
    name = lazy("Terms acceptance")
    name_plural = lazy("Terms acceptances")
    icon = "fa-solid fa-signature"
    column_list: ClassVar[Any] = [
        TermsAcceptance.id,
        TermsAcceptance.user_id,
        TermsAcceptance.version,
        TermsAcceptance.accepted_at,
    ]
    column_searchable_list: ClassVar[Any] = [TermsAcceptance.version]
    column_default_sort: ClassVar[Any] = [(TermsAcceptance.id, True)]


class OutboxView(ReadOnly, model=OutboxMessage):
    name = lazy("Notification")
    name_plural = lazy("Notifications")
    icon = "fa-solid fa-bell"
    column_list: ClassVar[Any] = [
        OutboxMessage.id,
        OutboxMessage.kind,
        OutboxMessage.user_id,
        OutboxMessage.chat_id,
        OutboxMessage.status,
        OutboxMessage.created_at,
        OutboxMessage.sent_at,
    ]
    column_searchable_list: ClassVar[Any] = [OutboxMessage.kind]
    column_default_sort: ClassVar[Any] = [(OutboxMessage.id, True)]
    column_filters: ClassVar[Any] = [
        KnownValuesFilter(
            OutboxMessage.status,
            [(s, s) for s in ("pending", "sending", "sent", "skipped", "failed")],
        )
    ]


class AuditView(ReadOnly, model=AuditEvent):
    name = lazy("Audit event")
    name_plural = lazy("Audit events")
    icon = "fa-solid fa-clipboard-list"
    column_list: ClassVar[Any] = [
        AuditEvent.id,
        AuditEvent.created_at,
        AuditEvent.channel,
        AuditEvent.actor,
        AuditEvent.role,
        AuditEvent.action,
        AuditEvent.target,
        AuditEvent.reason,
    ]
    column_searchable_list: ClassVar[Any] = [
        AuditEvent.actor,
        AuditEvent.action,
        AuditEvent.target,
        AuditEvent.reason,
    ]
    column_default_sort: ClassVar[Any] = [(AuditEvent.id, True)]
    column_filters: ClassVar[Any] = [KnownValuesFilter(AuditEvent.channel, _values(Channel))]


class ApiKeyView(ReadOnly, model=ApiKey):
    name = lazy("API key")
    name_plural = lazy("API keys (records)")
    icon = "fa-solid fa-key"
    needs = Permission.OWN
    # The hash is of no use to anyone reading the panel.
    column_list: ClassVar[Any] = [
        ApiKey.id,
        ApiKey.name,
        ApiKey.display_prefix,
        ApiKey.scopes,
        ApiKey.created_at,
        ApiKey.last_used_at,
        ApiKey.revoked_at,
    ]
    column_details_exclude_list: ClassVar[Any] = [ApiKey.key_hash]
    column_export_exclude_list: ClassVar[Any] = [ApiKey.key_hash]


class AdminUserView(ReadOnly, model=AdminUser):
    name = lazy("Admin user")
    name_plural = lazy("Admin users (records)")
    icon = "fa-solid fa-user-shield"
    needs = Permission.OWN
    column_list: ClassVar[Any] = [
        AdminUser.id,
        AdminUser.username,
        AdminUser.role,
        AdminUser.created_at,
        AdminUser.last_login_at,
        AdminUser.locked_until,
        AdminUser.disabled_at,
    ]
    column_details_exclude_list: ClassVar[Any] = [AdminUser.password_hash]
    column_export_exclude_list: ClassVar[Any] = [AdminUser.password_hash]


MODEL_VIEWS: tuple[type[ReadOnly], ...] = (
    UserView,
    SubscriptionView,
    InvoiceView,
    PaymentView,
    PayoutView,
    EntryView,
    PlanView,
    TermsView,
    AcceptanceView,
    OutboxView,
    AuditView,
    ApiKeyView,
    AdminUserView,
)


def _label_columns(views: tuple[type[ReadOnly], ...]) -> None:
    """Every column of every view, and every filter, gets its label (SQLAdmin reads
    ``column_labels`` when the view is added to the panel)."""
    for view in views:
        names: list[str] = list(inspect(view.model).column_attrs.keys())
        view.column_labels = {name: _label(name) for name in names}
        for found in view.column_filters:
            found.title = _label(found.parameter_name)


_label_columns(MODEL_VIEWS)
