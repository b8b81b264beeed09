"""API keys: shown once, stored as a hash, carrying scopes (admin > write > read)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from satshare.apikeys import repository
from satshare.apikeys.models import SCOPES, ApiKey
from satshare.errors import InvalidRequest, NotFound
from satshare.security import generate_api_key, hash_api_key

_RANK = {scope: rank for rank, scope in enumerate(SCOPES)}


def parse_scopes(text: str) -> tuple[str, ...]:
    scopes = tuple(dict.fromkeys(s.strip().lower() for s in text.split(",") if s.strip()))
    if not scopes:
        raise InvalidRequest(f"give at least one scope: {', '.join(SCOPES)}")
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown:
        raise InvalidRequest(
            f"unknown scope {unknown[0]!r}; scopes are {', '.join(SCOPES)} (comma separated)"
        )
    return scopes


def grants(scopes: Sequence[str], required: str) -> bool:
    """A higher scope includes the lower ones: admin can write, write can read."""
    return any(_RANK.get(s, -1) >= _RANK[required] for s in scopes)


@dataclass(frozen=True, slots=True)
class IssuedKey:
    key: ApiKey
    plaintext: str


async def create(
    session: AsyncSession, name: str, scopes: Sequence[str], now: datetime
) -> IssuedKey:
    name = name.strip()
    if not name or len(name) > 100:
        raise InvalidRequest("the key name must be 1 to 100 characters")
    material = generate_api_key()
    key = ApiKey(
        name=name,
        display_prefix=material.display_prefix,
        key_hash=material.key_hash,
        scopes=",".join(scopes),
        created_at=now,
    )
    session.add(key)
    await session.flush()
    return IssuedKey(key=key, plaintext=material.plaintext)


async def authenticate(session: AsyncSession, plaintext: str) -> ApiKey | None:
    return await repository.live_by_hash(session, hash_api_key(plaintext))


async def list_keys(session: AsyncSession) -> Sequence[ApiKey]:
    return await repository.list_keys(session)


async def revoke(session: AsyncSession, reference: str, now: datetime) -> ApiKey:
    """Revoke by id or by the displayed prefix."""
    matches = await repository.by_id_or_prefix(session, reference)
    if not matches:
        raise NotFound(f"no API key with id or prefix {reference!r}; see `satshare api-key list`")
    if len(matches) > 1:
        raise InvalidRequest(f"{reference!r} matches several keys; revoke by id")
    key = matches[0]
    if key.revoked_at is None:
        key.revoked_at = now
    await session.flush()
    return key


async def revoke_named(session: AsyncSession, name: str, now: datetime) -> int:
    keys = await repository.live_named(session, name)
    for key in keys:
        key.revoked_at = now
    await session.flush()
    return len(keys)


async def touch(session: AsyncSession, key_id: int, now: datetime) -> None:
    key = await session.get(ApiKey, key_id)
    if key is not None:
        key.last_used_at = now
