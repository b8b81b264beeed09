"""Users: registration with a referrer fixed once, profile updates, affiliate summary."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

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


async def register(session: AsyncSession, data: Registration, now: datetime) -> User:
    if data.platform not in PLATFORMS:
        raise InvalidRequest(f"platform must be one of {', '.join(PLATFORMS)}", field="platform")
    language = data.language or "en"
    if language not in LANGUAGES:
        raise InvalidRequest(f"language must be one of {', '.join(LANGUAGES)}", field="language")
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
    await webhook_events.user_created(session, user, now)  # outgoing webhooks (#14)
    if referrer is not None:
        await repository.count_referral(session, referrer.id, registered=1)
        await outbox.enqueue(
            session,
            ReferralRegistered(
                referral_user_id=user.id,
                referral_username=user.username,
                referral_platform=user.platform,
            ),
            dedupe_key=f"user:{user.id}:referred",
            user_id=referrer.id,
            now=now,
        )
    return user


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
