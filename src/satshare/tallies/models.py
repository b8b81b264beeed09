"""The tallies' tables.

Every change to a counted row appends a ``tally_changes`` row in the changing transaction
(an INSERT: no row that concurrent settlements would queue on); a job folds them into the
totals (``tallies``, ``tally_ends_days``, ``tally_subscribers``) and a read adds the few not
folded yet. None of them is a source of truth: ``satshare figures rebuild`` counts them
anew from the subscriptions and payouts, and ``satshare figures check`` compares.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import BigInteger, Date, String
from sqlalchemy.orm import Mapped, mapped_column

from satshare.db import Base, BigId

#: ``tallies`` keys: ``active:<plan id>`` (subscriptions in the active state with an end,
#: and the sum of their last bitcoin payments), ``payouts:<state>`` (how many, their
#: amounts), ``subscribers`` (users with at least one active subscription) and ``version``
#: (bumped by each fold: a read that sees it change reads again).
ACTIVE = "active:"
PAYOUTS = "payouts:"
SUBSCRIBERS = "subscribers"
VERSION = "version"
#: ``tally_changes`` key of a move between days of ``tally_ends_days``.
ENDS = "ends"


class TallyChange(Base):
    """One change not folded yet: ``count`` and ``sats`` added to the total ``key`` (for
    ``ends``: to the day ``day``); ``user_id``: whose subscription (the subscribers)."""

    __tablename__ = "tally_changes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(80))
    day: Mapped[date | None] = mapped_column(Date)
    user_id: Mapped[int | None] = mapped_column(BigInteger)
    count: Mapped[int] = mapped_column(BigInteger)
    sats: Mapped[int] = mapped_column(BigInteger, default=0)


class Tally(Base):
    __tablename__ = "tallies"

    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger, default=0)
    sats: Mapped[int] = mapped_column(BigInteger, default=0)


class TallyEndsDay(Base):
    """Subscriptions ever paid for (or tried) whose paid time ends on that UTC day."""

    __tablename__ = "tally_ends_days"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger, default=0)


class TallySubscriber(Base):
    """A user's subscriptions in the active state (rows at 0 are deleted)."""

    __tablename__ = "tally_subscribers"

    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    subscriptions: Mapped[int] = mapped_column(BigInteger, default=0)
