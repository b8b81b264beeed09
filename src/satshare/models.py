"""Import every table so the metadata is complete (Alembic, tests)."""

from satshare.access.models import ChannelAccess, ChannelLink
from satshare.affiliates.models import AffiliateSuspension, AffiliateTerms, TermsAcceptance
from satshare.apikeys.models import ApiKey
from satshare.audit.models import AuditEvent
from satshare.bot.models import ProcessedUpdate
from satshare.broadcasts.models import Broadcast, BroadcastRecipient
from satshare.db import Base
from satshare.idempotency.models import IdempotencyRecord
from satshare.ledger.figures.models import (
    FiguresBuyer,
    FiguresBuyerDay,
    FiguresDay,
    FiguresState,
    FiguresUser,
    FiguresUserDay,
    FiguresUserMonth,
    SaleBuyer,
)
from satshare.ledger.models import Account, ChainHead, Entry, EntryNote, Posting
from satshare.notifications.models import OutboxMessage
from satshare.onchain.models import OnchainAddress
from satshare.payments.models import Invoice, Payment, WebhookDelivery
from satshare.payouts.models import Payout, PayoutDestination
from satshare.plans.models import Plan
from satshare.promos.models import PromoCode, PromoRedemption
from satshare.ratelimits.models import RateLimitCounter
from satshare.staff.models import AdminUser
from satshare.subscriptions.models import Subscription
from satshare.tallies.models import Tally, TallyChange, TallyEndsDay, TallySubscriber
from satshare.trials.models import Trial
from satshare.users.models import User
from satshare.webhooks_out.models import (
    DeliveryAttempt,
    EndpointDelivery,
    WebhookEndpoint,
    WebhookMessage,
)

__all__ = [
    "Account",
    "AdminUser",
    "AffiliateSuspension",
    "AffiliateTerms",
    "ApiKey",
    "AuditEvent",
    "Base",
    "Broadcast",
    "BroadcastRecipient",
    "ChainHead",
    "ChannelAccess",
    "ChannelLink",
    "DeliveryAttempt",
    "EndpointDelivery",
    "Entry",
    "EntryNote",
    "FiguresBuyer",
    "FiguresBuyerDay",
    "FiguresDay",
    "FiguresState",
    "FiguresUser",
    "FiguresUserDay",
    "FiguresUserMonth",
    "IdempotencyRecord",
    "Invoice",
    "OnchainAddress",
    "OutboxMessage",
    "Payment",
    "Payout",
    "PayoutDestination",
    "Plan",
    "Posting",
    "ProcessedUpdate",
    "PromoCode",
    "PromoRedemption",
    "RateLimitCounter",
    "SaleBuyer",
    "Subscription",
    "Tally",
    "TallyChange",
    "TallyEndsDay",
    "TallySubscriber",
    "TermsAcceptance",
    "Trial",
    "User",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WebhookMessage",
]
