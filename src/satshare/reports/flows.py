"""Report reads in their own units of work (for the API, the bot, the CLI and the admin
panel's pages: the dashboard, the payouts desk, a user's page, the affiliate program)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from satshare.affiliates import service as affiliates
from satshare.affiliates.models import AffiliateSuspension, AffiliateTerms
from satshare.db import Database
from satshare.payouts import service as payouts
from satshare.payouts.models import Payout, PayoutStatus
from satshare.reports import recompute, repository, statements, tallied
from satshare.reports import transparency as public
from satshare.reports.dashboard import Dashboard, dashboard
from satshare.reports.monthly import MonthlyReport, monthly_report
from satshare.users import repository as users_repository
from satshare.users import service as users
from satshare.users.models import User


async def month(
    db: Database,
    month: str,
    now: datetime,
    *,
    limit: int | None = None,
    cursor: str | None = None,
) -> MonthlyReport:
    """The month's report; ``limit``: a page of its affiliate lines (after ``cursor``),
    None: every line (the files)."""
    async with db.reading() as session:
        return await monthly_report(session, month, now, limit=limit, cursor=cursor)


async def commission_statements(
    db: Database, user_id: int, *, limit: int, before_id: int | None = None
) -> list[statements.Statement]:
    async with db.reading() as session:
        return await statements.commission_statements(
            session, user_id, limit=limit, before_id=before_id
        )


async def statements_of_user(
    db: Database, user_id: int, *, limit: int, before_id: int | None = None
) -> list[statements.Statement]:
    """``commission_statements`` of a user who may not exist (NotFound)."""
    async with db.reading() as session:
        await users.require(session, user_id)
        return await statements.commission_statements(
            session, user_id, limit=limit, before_id=before_id
        )


async def transparency(db: Database, now: datetime) -> public.Transparency:
    async with db.reading() as session:
        return await public.transparency(session, now)


# -- the admin panel's pages ------------------------------------------------------------


async def panel_dashboard(db: Database, start: datetime, end: datetime, now: datetime) -> Dashboard:
    """The dashboard's figures for [start, end), in one snapshot."""
    async with db.reading() as session:
        return await dashboard(session, start, end, now)


@dataclass(frozen=True, slots=True)
class PayoutsDesk:
    rows: Sequence[Payout]
    #: status → (how many, their amount in sats), every status.
    counts: dict[PayoutStatus, tuple[int, int]]


async def payouts_desk(db: Database, status: PayoutStatus, *, limit: int) -> PayoutsDesk:
    """The payouts in one state, newest first, and how many there are in each state."""
    async with db.reading() as session:
        rows = await payouts.list_payouts(session, limit=limit, status=status)
        return PayoutsDesk(rows, await tallied.payouts(session))


@dataclass(frozen=True, slots=True)
class UserDetail:
    user: User
    facts: repository.UserOverview
    balance: affiliates.Balance
    suspended: AffiliateSuspension | None
    custom: AffiliateTerms | None


async def user_detail(
    db: Database, user_id: int, hold_days: int, now: datetime
) -> UserDetail | None:
    """Everything the panel shows about one user; None for an unknown id."""
    async with db.reading() as session:
        user = await users_repository.get(session, user_id)
        if user is None:
            return None
        return UserDetail(
            user=user,
            facts=await repository.user_overview(session, user.id),
            balance=await affiliates.balance(session, user.id, hold_days, now),
            suspended=await affiliates.open_suspension(session, user.id),
            custom=await affiliates.current_custom(session, user.id),
        )


@dataclass(frozen=True, slots=True)
class ProgramOverview:
    #: (user id, user name, all-time figures), the top earners first.
    leaderboard: list[tuple[int, str | None, public.AffiliateFigures]]
    #: (terms version, how many accepted it).
    acceptances: list[tuple[str, int]]


async def program_overview(db: Database, now: datetime, *, top: int = 50) -> ProgramOverview:
    """The affiliate program's all-time leaderboard (the top rows of the ledger's figures,
    the transparency page's definitions) and the terms acceptances per version."""
    async with db.reading() as session:
        ranked = await public.top_earners(session, top, now)
        names = await repository.usernames(session, [uid for uid, _ in ranked])
        return ProgramOverview(
            leaderboard=[(uid, names.get(uid), f) for uid, f in ranked],
            acceptances=await repository.acceptances_by_version(session),
        )


async def rebuild_tallies(db: Database) -> None:
    """Count the dashboard's tallies anew from the subscriptions and payouts."""
    async with db.transaction() as session:
        await tallied.rebuild(session)


async def check_figures(db: Database, now: datetime, *, months: bool = True) -> recompute.Report:
    """Every figure against its recomputation from the ledger (``satshare figures check``)."""
    async with db.reading() as session:
        return await recompute.check(session, now, months=months)
