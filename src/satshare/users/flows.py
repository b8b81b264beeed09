"""Use cases over users that open their own units of work (for the API and the bot).

The adapters call these instead of opening sessions: registering (a duplicate is a 409, not a
database error) and the bot's first contact with a Telegram user.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy.exc import IntegrityError

from satshare.db import Database
from satshare.errors import Conflict
from satshare.notifications import service as outbox
from satshare.users import repository, service
from satshare.users.models import User


async def register(db: Database, registration: service.Registration, now: datetime) -> User:
    """Register a new user; Conflict when the platform already has this external id."""
    try:
        async with db.transaction() as session:
            return await service.register(session, registration, now)
    except IntegrityError:
        raise Conflict(
            f"a {registration.platform} user with external_id {registration.external_id!r} "
            "already exists"
        ) from None


class ReferralProblem(StrEnum):
    """Why a referral code given at first contact was not used."""

    OWN = "own"  # the user's own code
    UNKNOWN = "unknown"  # no such code
    ALREADY = "already"  # registered before: the referrer is set once, at registration


@dataclass(frozen=True, slots=True)
class Contact:
    user: User
    created: bool
    referral_problem: ReferralProblem | None


async def first_contact(db: Database, registration: service.Registration, now: datetime) -> Contact:
    """The user behind a platform account, registered on first contact (a known user who
    had become unreachable is reachable again)."""
    assert registration.external_id is not None
    platform, external_id, referral = (
        registration.platform,
        registration.external_id,
        registration.referral,
    )
    async with db.reading() as session:
        existing = await repository.by_external_id(session, platform, external_id)
    if existing is not None:
        if existing.unreachable_at is not None:
            async with db.transaction() as session:
                user = await repository.get(session, existing.id)
                assert user is not None
                await service.mark_reachable(session, user, now)
        problem = None
        if referral is not None:
            own = referral.lower() == existing.referral_code
            problem = ReferralProblem.OWN if own else ReferralProblem.ALREADY
        return Contact(existing, False, problem)
    problem = None
    if referral is not None:
        async with db.reading() as session:
            referrer = await repository.by_referral_code(session, referral.lower())
        if referrer is None:
            problem = ReferralProblem.UNKNOWN
            registration = service.Registration(
                platform=platform,
                external_id=external_id,
                username=registration.username,
                language=registration.language,
            )
    try:
        async with db.transaction() as session:
            user = await service.register(session, registration, now)
    except IntegrityError:  # the same user's other update registered them a moment ago
        async with db.reading() as session:
            raced = await repository.by_external_id(session, platform, external_id)
        assert raced is not None
        return Contact(raced, False, problem)
    return Contact(user, True, problem)


async def get(db: Database, user_id: int) -> User | None:
    async with db.reading() as session:
        return await repository.get(session, user_id)


async def unreachable(
    db: Database, user_id: int | None, message_id: int, reason: str, now: datetime
) -> None:
    """The user blocked the bot: they are unreachable until they come back, and the message
    that found out is skipped with ``reason`` (in one transaction)."""
    async with db.transaction() as session:
        if user_id is not None:
            await service.mark_unreachable(session, user_id, now)
        await outbox.mark_skipped(session, message_id, reason, now)


async def by_external_id(db: Database, platform: str, external_id: str) -> User | None:
    async with db.reading() as session:
        return await repository.by_external_id(session, platform, external_id)


async def update_profile(
    db: Database, user_id: int, *, username: str | None, language: str | None, now: datetime
) -> User:
    async with db.transaction() as session:
        return await service.update_profile(
            session, user_id, username=username, language=language, now=now
        )


async def list_users(
    db: Database,
    *,
    limit: int,
    before_id: int | None = None,
    platform: str | None = None,
    referrer_id: int | None = None,
    external_id: str | None = None,
) -> Sequence[User]:
    async with db.reading() as session:
        return await repository.list_users(
            session,
            limit=limit,
            before_id=before_id,
            platform=platform,
            referrer_id=referrer_id,
            external_id=external_id,
        )


async def accounts_on(db: Database, platform: str) -> Sequence[User]:
    """Every user of ``platform`` with an external id (the sandbox restores its chat users)."""
    async with db.reading() as session:
        return await repository.with_external_ids(session, platform)
