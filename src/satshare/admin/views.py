"""SQLAdmin model views: lists with search, filters, detail and CSV/JSON export.

All read-only: every change goes through the workflow pages (``pages.py``), which call the
domain services the API uses and write the audit log. SQLAdmin's create/edit/delete routes
answer 403 for every model here."""

from __future__ import annotations

from typing import Any, ClassVar

from sqladmin import ModelView
from sqladmin.filters import BooleanFilter, StaticValuesFilter
from sqlalchemy.exc import StatementError
from starlette.requests import Request

from satshare.admin.auth import Permission, operator
from satshare.admin.texts import lazy
from satshare.affiliates.models import AffiliateTerms, TermsAcceptance
from satshare.apikeys.models import ApiKey
from satshare.audit.models import AuditEvent, Channel
from satshare.ledger.models import Entry, EntryKind
from satshare.notifications.models import OutboxMessage
from satshare.payments.models import Invoice, InvoiceStatus, Payment
from satshare.payouts.models import Payout, PayoutStatus
from satshare.plans.models import Plan
from satshare.staff.models import AdminUser
from satshare.subscriptions.models import Subscription, SubscriptionStatus
from satshare.users.models import User


class KnownValuesFilter(StaticValuesFilter):
    """A value filter that ignores a value not among its choices (SQLAdmin would put it in
    the query, and a typed column refuses it with an error)."""

    async def get_filtered_query(self, query: Any, value: Any, model: Any) -> Any:
        if value not in {choice for choice, _ in self.values}:
            return query
        return await super().get_filtered_query(query, value, model)


def _values(enum: Any) -> list[tuple[str, str]]:
    return [(member.value, member.value) for member in enum]


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

    async def get_object_for_details(self, request: Request) -> Any:
        """None (SQLAdmin answers 404) for an id that is not one: SQLAdmin would raise on
        ``details/abc`` or an id past the column's range."""
        try:
            return await super().get_object_for_details(request)
        except (ValueError, OverflowError, StatementError):
            return None


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
    column_filters: ClassVar[Any] = [BooleanFilter(Payment.paid_late)]


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
