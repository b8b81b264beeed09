"""Tables of the ledger's figures: sums of sealed entries, kept by the sealer.

None of them is the ledger: they are derived, rewritten at will (``satshare figures
rebuild`` empties and refills them) and never read by ``ledger verify``. Each figure has the
definition of the read it serves (``docs/ledger.md``, "Figures"); a test recomputes every
one of them from the ledger itself.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import BigInteger, Boolean, Date, ForeignKey, Index, Integer, false
from sqlalchemy.orm import Mapped, mapped_column

from satshare.db import Base
from satshare.ledger.models import Entry

#: The rolling windows kept per user, in days (today included): the dashboard's "today",
#: "7d" and "30d" and the leaderboard's week and month.
WINDOWS = (1, 7, 30)


class SaleBuyer(Base):
    """Who bought a sale entry and who referred them (set once, at registration): what the
    referral figures (leaderboard, paying referrals, affiliate levels) count by. Written
    with the entry, never changed; not part of the entry's hash."""

    __tablename__ = "ledger_sale_buyers"
    __table_args__ = (Index("ix_ledger_sale_buyers_buyer", "buyer_user_id"),)

    entry_id: Mapped[int] = mapped_column(
        ForeignKey("ledger_entries.id"), primary_key=True, autoincrement=False
    )
    buyer_user_id: Mapped[int] = mapped_column(BigInteger)
    referrer_user_id: Mapped[int | None] = mapped_column(BigInteger)
    #: Its subscription had a payment before this one (the dashboard's renewals).
    renewal: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class FiguresState(Base):
    """Row 1: a version bumped by every sealer run that changes a figure (a reader that
    sees it change while reading reads again), and the day the rolling windows end on."""

    __tablename__ = "figures_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    version: Mapped[int] = mapped_column(BigInteger, default=0)
    #: Window counters are sums over days after ``rolled_day - window``; NULL: none yet.
    rolled_day: Mapped[date | None] = mapped_column(Date)


class FiguresDay(Base):
    """The whole ledger's figures per UTC day (the transparency page, the monthly report,
    the dashboard): the same definitions as ``reports.transparency``."""

    __tablename__ = "figures_days"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    entries: Mapped[int] = mapped_column(BigInteger, default=0)
    sales: Mapped[int] = mapped_column(BigInteger, default=0)
    refunds: Mapped[int] = mapped_column(BigInteger, default=0)
    gross_sats: Mapped[int] = mapped_column(BigInteger, default=0)
    owner_share_sats: Mapped[int] = mapped_column(BigInteger, default=0)
    affiliate_share_sats: Mapped[int] = mapped_column(BigInteger, default=0)
    stars_received: Mapped[int] = mapped_column(BigInteger, default=0)
    paid_out_sats: Mapped[int] = mapped_column(BigInteger, default=0)
    #: How much what affiliates are owed (balances and held payouts) changed that day.
    owed_delta_sats: Mapped[int] = mapped_column(BigInteger, default=0)
    #: Payments settled that day: a subscription's first, and the ones after it.
    new_payments: Mapped[int] = mapped_column(BigInteger, default=0)
    renewals: Mapped[int] = mapped_column(BigInteger, default=0)
    #: Users who registered that day and have paid since (the dashboard's funnel).
    paid_registrations: Mapped[int] = mapped_column(BigInteger, default=0)


class FiguresUserDay(Base):
    """One user's figures per UTC day: as an affiliate (the report's lines, earnings per
    month, commissions in the hold period) and as a referrer (the leaderboard's sales)."""

    __tablename__ = "figures_user_days"

    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    #: Gross of the sales that credited them a commission (refunds not taken off).
    referred_sales_sats: Mapped[int] = mapped_column(BigInteger, default=0)
    commissions: Mapped[int] = mapped_column(BigInteger, default=0)
    #: Commissions net of clawbacks and adjustments (payout entries only move money).
    earned_sats: Mapped[int] = mapped_column(BigInteger, default=0)
    clawed_back_sats: Mapped[int] = mapped_column(BigInteger, default=0)
    #: Postings to their account other than payouts' (a month with any is listed).
    earning_postings: Mapped[int] = mapped_column(BigInteger, default=0)
    paid_out_sats: Mapped[int] = mapped_column(BigInteger, default=0)
    owed_delta_sats: Mapped[int] = mapped_column(BigInteger, default=0)
    #: Commissions of that day's sales not refunded since (the hold period's pending sum).
    unrefunded_commission_sats: Mapped[int] = mapped_column(BigInteger, default=0)
    #: As a referrer: that day's sales to their referrals, refunded ones taken off.
    referral_value_sats: Mapped[int] = mapped_column(BigInteger, default=0)


class FiguresUserMonth(Base):
    """One user's figures as an affiliate per UTC month (``month``: its first day): the
    monthly report's lines, read a page at a time from the top earners down."""

    __tablename__ = "figures_user_months"

    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    month: Mapped[date] = mapped_column(Date, primary_key=True)
    referred_sales_sats: Mapped[int] = mapped_column(BigInteger, default=0)
    commissions: Mapped[int] = mapped_column(BigInteger, default=0)
    earned_sats: Mapped[int] = mapped_column(BigInteger, default=0)
    clawed_back_sats: Mapped[int] = mapped_column(BigInteger, default=0)
    paid_out_sats: Mapped[int] = mapped_column(BigInteger, default=0)


#: The month's top earners: a page of the report reads only its rows.
Index(
    "ix_figures_user_months_ranked",
    FiguresUserMonth.month,
    FiguresUserMonth.earned_sats.desc(),
    FiguresUserMonth.user_id,
)


class FiguresUser(Base):
    """One user's figures over all time and over the rolling windows (``WINDOWS``)."""

    __tablename__ = "figures_users"
    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    # As an affiliate: their account (payable:affiliate:<id>).
    balance_sats: Mapped[int] = mapped_column(BigInteger, default=0)
    earned_sats: Mapped[int] = mapped_column(BigInteger, default=0)
    #: Their balance plus their payouts held and not yet paid.
    owed_sats: Mapped[int] = mapped_column(BigInteger, default=0)
    commissions: Mapped[int] = mapped_column(BigInteger, default=0)
    referred_sales_sats: Mapped[int] = mapped_column(BigInteger, default=0)
    clawed_back_sats: Mapped[int] = mapped_column(BigInteger, default=0)
    paid_out_sats: Mapped[int] = mapped_column(BigInteger, default=0)
    # As a referrer: their referrals' payments, refunded ones left out.
    #: Referrals with at least one payment not refunded.
    referral_paying: Mapped[int] = mapped_column(BigInteger, default=0)
    #: What those referrals paid in bitcoin (the affiliate levels' threshold).
    referral_sales_sats: Mapped[int] = mapped_column(BigInteger, default=0)
    #: Their sales at their sats value, Stars included (the leaderboard).
    referral_value_sats: Mapped[int] = mapped_column(BigInteger, default=0)
    # Rolling windows: sums over the days after figures_state.rolled_day minus the window.
    referral_value_7d: Mapped[int] = mapped_column(BigInteger, default=0)
    referral_value_30d: Mapped[int] = mapped_column(BigInteger, default=0)
    referral_buyers_7d: Mapped[int] = mapped_column(BigInteger, default=0)
    referral_buyers_30d: Mapped[int] = mapped_column(BigInteger, default=0)
    earned_1d: Mapped[int] = mapped_column(BigInteger, default=0)
    earned_7d: Mapped[int] = mapped_column(BigInteger, default=0)
    earned_30d: Mapped[int] = mapped_column(BigInteger, default=0)
    commissions_1d: Mapped[int] = mapped_column(BigInteger, default=0)
    commissions_7d: Mapped[int] = mapped_column(BigInteger, default=0)
    commissions_30d: Mapped[int] = mapped_column(BigInteger, default=0)
    referred_sales_1d: Mapped[int] = mapped_column(BigInteger, default=0)
    referred_sales_7d: Mapped[int] = mapped_column(BigInteger, default=0)
    referred_sales_30d: Mapped[int] = mapped_column(BigInteger, default=0)


#: What the rankings order by: each gets an index, so a ranking reads only its top rows.
RANKED = (
    "referral_value_sats",
    "referral_paying",
    "referral_value_7d",
    "referral_value_30d",
    "referral_buyers_7d",
    "referral_buyers_30d",
    "earned_sats",
    "earned_1d",
    "earned_7d",
    "earned_30d",
)
for _column in RANKED:
    Index(
        f"ix_figures_users_{_column}",
        getattr(FiguresUser, _column).desc(),
        FiguresUser.user_id,
    )


class FiguresBuyerDay(Base):
    """A referred buyer's payments per UTC day, refunded ones taken off."""

    __tablename__ = "figures_buyer_days"

    buyer_user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    payments: Mapped[int] = mapped_column(BigInteger, default=0)


class FiguresBuyer(Base):
    """A buyer: their payments ever (refunded ones too), and if they were referred, their
    payments not refunded and the last day they paid one."""

    __tablename__ = "figures_buyers"
    __table_args__ = (Index("ix_figures_buyers_last_day", "last_day"),)

    buyer_user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    referrer_user_id: Mapped[int | None] = mapped_column(BigInteger)
    sales: Mapped[int] = mapped_column(BigInteger, default=0)
    payments: Mapped[int] = mapped_column(BigInteger, default=0)
    last_day: Mapped[date | None] = mapped_column(Date)


#: An affiliate's sales in a time range (the part of a day the per-day sums cannot cut).
Index("ix_ledger_entries_affiliate_created", Entry.affiliate_user_id, Entry.created_at)
