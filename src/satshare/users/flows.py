"""Use cases over users that open their own units of work (for the API and the bot).

The adapters call these instead of opening sessions: registering (a duplicate is a 409, not a
database error) and the bot's first contact with a Telegram user.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy.exc import IntegrityError

from satshare.db import Database
from satshare.errors import Conflict, InvalidRequest
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


async def first_contacts(
    db: Database, registrations: Sequence[service.Registration], now: datetime
) -> list[Contact | Exception]:
    """The users behind platform accounts, each registered on first contact (a known user
    who had become unreachable is reachable again), for many accounts of one platform at
    once (the bot's burst of updates): one read, and one write transaction when someone is
    new or comes back. Each gets what it would have got alone, in the order given (the
    same account twice: the first contact registers, the second finds the user): its
    contact, or the error that was its own (InvalidRequest for a language that does not
    exist)."""
    answers: list[Contact | Exception | None] = [None] * len(registrations)
    valid: list[int] = []
    for index, registration in enumerate(registrations):
        assert registration.external_id is not None
        try:
            service.check(registration)
        except InvalidRequest as exc:
            answers[index] = exc
        else:
            valid.append(index)
    platforms = {registrations[index].platform for index in valid}
    assert len(platforms) <= 1, "one platform per batch"
    if not valid:
        return [answer for answer in answers if answer is not None]
    platform = platforms.pop()
    external_ids = {registrations[index].external_id or "" for index in valid}
    async with db.reading() as session:
        known = {
            u.external_id: u
            for u in await repository.by_external_ids(session, platform, external_ids)
        }
        codes = {
            (registrations[index].referral or "").lower()
            for index in valid
            if registrations[index].referral and registrations[index].external_id not in known
        }
        referrers = (
            {u.referral_code: u for u in await repository.by_referral_codes(session, codes)}
            if codes
            else {}
        )
    # The first contact of each new account registers it (with its referrer, when its code
    # names one); every later one in the batch finds the user.
    first: dict[str, int] = {}
    accounts: list[tuple[service.Registration, int | None]] = []
    for index in valid:
        registration = registrations[index]
        external_id = registration.external_id or ""
        if external_id in known or external_id in first:
            continue
        first[external_id] = index
        referrer = referrers.get((registration.referral or "").lower())
        accounts.append((registration, referrer.id if referrer else None))
    returning = [u for u in known.values() if u.unreachable_at is not None]
    created: set[str] = set()
    if accounts or returning:
        async with db.transaction() as session:
            for stale in returning:
                user = await repository.get(session, stale.id)
                assert user is not None
                await service.mark_reachable(session, user, now)
                known[user.external_id or ""] = user
            for user, new in await service.register_accounts(session, accounts, now):
                known[user.external_id or ""] = user
                if new:
                    created.add(user.external_id or "")
    for index in valid:
        registration = registrations[index]
        external_id = registration.external_id or ""
        user = known[external_id]
        referral = registration.referral
        problem: ReferralProblem | None = None
        if first.get(external_id) == index and external_id in created:
            if referral is not None and user.referrer_id is None:
                problem = ReferralProblem.UNKNOWN
            answers[index] = Contact(user, True, problem)
            continue
        if referral is not None:
            own = referral.lower() == user.referral_code
            problem = ReferralProblem.OWN if own else ReferralProblem.ALREADY
        answers[index] = Contact(user, False, problem)
    return [answer for answer in answers if answer is not None]


async def get(db: Database, user_id: int) -> User | None:
    async with db.reading() as session:
        return await repository.get(session, user_id)


async def get_many(db: Database, user_ids: Iterable[int]) -> dict[int, User]:
    """Several users in one read (the outbox sender's batch of recipients), by id; no
    read at all for none."""
    ids = list(user_ids)
    if not ids:
        return {}
    async with db.reading() as session:
        return await repository.get_many(session, ids)


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


async def search(db: Database, text: str, *, limit: int) -> Sequence[User]:
    """Users by (part of) user name, Telegram id, referral code or id (the admin panel)."""
    async with db.reading() as session:
        return await repository.search(session, text, limit=limit)


async def accounts_on(db: Database, platform: str) -> Sequence[User]:
    """Every user of ``platform`` with an external id (the sandbox restores its chat users)."""
    async with db.reading() as session:
        return await repository.with_external_ids(session, platform)
