"""Users: registration with a referrer fixed once, profile updates, affiliate summary."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from satshare.errors import Conflict, InvalidRequest, NotFound
from satshare.notifications import service as outbox
from satshare.notifications.messages import ReferralRegistered
from satshare.users import repository
from satshare.users.models import LANGUAGES, PLATFORMS, User
from satshare.webhooks_out import events as webhook_events

# No 0/O/1/I/L: codes are read aloud and typed from screenshots.
_CODE_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
_CODE_LENGTH = 8


@dataclass(frozen=True, slots=True)
class Registration:
    platform: str
    username: str | None = None
    external_id: str | None = None
    referral: str | None = None  # the referrer's user id or referral code
    language: str | None = None


def new_referral_code() -> str:
    while True:
        code = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(_CODE_LENGTH))
        if not code.isdigit():  # a code must never look like a user id
            return code


async def resolve_referrer(session: AsyncSession, reference: str) -> User:
    reference = reference.strip()
    referrer: User | None
    if reference.isdigit():
        referrer = await repository.get(session, int(reference))
    else:
        referrer = await repository.by_referral_code(session, reference.lower())
    if referrer is None:
        raise InvalidRequest(
            f"referral_id {reference!r} matches no user id or referral code",
            field="referral_id",
        )
    return referrer


def check(data: Registration) -> str:
    """The registration's language; InvalidRequest for an unknown platform or language."""
    if data.platform not in PLATFORMS:
        raise InvalidRequest(f"platform must be one of {', '.join(PLATFORMS)}", field="platform")
    language = data.language or "en"
    if language not in LANGUAGES:
        raise InvalidRequest(f"language must be one of {', '.join(LANGUAGES)}", field="language")
    return language


def _row(data: Registration, referrer_id: int | None, now: datetime) -> dict[str, Any]:
    """A new user's row, with a fresh referral code."""
    return {
        "platform": data.platform,
        "external_id": data.external_id,
        "username": data.username,
        "language": check(data),
        "referral_code": new_referral_code(),
        "referrer_id": referrer_id,
        "created_at": now,
        "updated_at": now,
        "unreachable_at": None,
        "leaderboard_name": None,
    }


async def register(session: AsyncSession, data: Registration, now: datetime) -> User:
    language = check(data)
    if data.external_id is not None:
        existing = await repository.by_external_id(session, data.platform, data.external_id)
        if existing is not None:
            raise Conflict(
                f"a {data.platform} user with external_id {data.external_id!r} already exists",
                existing_user_id=existing.id,
            )
    referrer = await resolve_referrer(session, data.referral) if data.referral else None
    code = new_referral_code()
    while await repository.referral_code_taken(session, code):
        code = new_referral_code()
    user = User(
        platform=data.platform,
        external_id=data.external_id,
        username=data.username,
        language=language,
        referral_code=code,
        referrer_id=referrer.id if referrer else None,
        created_at=now,
        updated_at=now,
    )
    session.add(user)
    await session.flush()
    await registered(session, [user], now)
    return user


#: Draws of referral codes for one batch before giving up (a clash is ~1 in 10^11).
_CODE_DRAWS = 10


async def register_accounts(
    session: AsyncSession,
    accounts: Sequence[tuple[Registration, int | None]],
    now: datetime,
) -> list[tuple[User, bool]]:
    """Register platform accounts seen for the first time, each with its referrer's id (or
    None), in one INSERT: (user, True) for each registered here, (user, False) for one that
    another process registered meanwhile (its row stands; nothing more is written for it).
    Relies on the unique indexes, not on a read before the write: no race can register an
    account twice. The external ids are distinct and not None."""
    if not accounts:
        return []
    rows = [_row(data, referrer_id, now) for data, referrer_id in accounts]
    platform = accounts[0][0].platform
    assert all(data.platform == platform and data.external_id for data, _ in accounts)
    answers: dict[int, tuple[User, bool]] = {}
    waiting = dict(enumerate(rows))
    for _ in range(_CODE_DRAWS):
        inserted = {
            u.external_id: u for u in await repository.insert_new(session, [*waiting.values()])
        }
        for index, row in list(waiting.items()):
            if (user := inserted.get(row["external_id"])) is not None:
                answers[index] = (user, True)
                del waiting[index]
        if not waiting:
            break
        # The others met a unique index: their account was registered meanwhile, or their
        # referral code was taken (then they draw again).
        others = [row["external_id"] for row in waiting.values()]
        raced = {
            u.external_id: u for u in await repository.by_external_ids(session, platform, others)
        }
        for index, row in list(waiting.items()):
            if (user := raced.get(row["external_id"])) is not None:
                answers[index] = (user, False)
                del waiting[index]
            else:
                row["referral_code"] = new_referral_code()
        if not waiting:
            break
    else:
        raise RuntimeError("could not draw free referral codes")  # pragma: no cover
    await registered(session, [user for user, created in answers.values() if created], now)
    return [answers[index] for index in range(len(rows))]


async def registered(session: AsyncSession, new_users: Sequence[User], now: datetime) -> None:
    """What a registration writes besides the user's row: ``user.created`` for outgoing
    webhooks (#14), and the referrer's count and notice."""
    await webhook_events.users_created(session, new_users, now)
    for user in new_users:
        if user.referrer_id is None:
            continue
        await repository.count_referral(session, user.referrer_id, registered=1)
        await outbox.enqueue(
            session,
            ReferralRegistered(
                referral_user_id=user.id,
                referral_username=user.username,
                referral_platform=user.platform,
            ),
            dedupe_key=f"user:{user.id}:referred",
            user_id=user.referrer_id,
            now=now,
        )


async def require(session: AsyncSession, user_id: int) -> User:
    user = await repository.get(session, user_id)
    if user is None:
        raise NotFound(f"user {user_id} does not exist")
    return user


async def update_profile(
    session: AsyncSession,
    user_id: int,
    *,
    username: str | None,
    language: str | None,
    now: datetime,
) -> User:
    user = await require(session, user_id)
    if language is not None:
        if language not in LANGUAGES:
            raise InvalidRequest(f"language must be one of {', '.join(LANGUAGES)}")
        user.language = language
    if username is not None:
        user.username = username
    user.updated_at = now
    await session.flush()
    return user


async def mark_unreachable(session: AsyncSession, user_id: int, now: datetime) -> None:
    user = await repository.get(session, user_id)
    if user is not None and user.unreachable_at is None:
        user.unreachable_at = now
        user.updated_at = now
        await session.flush()


async def mark_reachable(session: AsyncSession, user: User, now: datetime) -> None:
    """The user talked to the bot again (after unblocking it)."""
    if user.unreachable_at is not None:
        user.unreachable_at = None
        user.updated_at = now
        await session.flush()
