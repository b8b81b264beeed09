"""All SQL of the admin panel's accounts. The audit log has its own domain."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from satshare.staff.models import AdminUser


async def by_username(
    session: AsyncSession, username: str, *, lock: bool = False
) -> AdminUser | None:
    query = select(AdminUser).where(AdminUser.username == username)
    if lock:
        query = query.with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


async def get(session: AsyncSession, user_id: int) -> AdminUser | None:
    return await session.get(AdminUser, user_id)


async def list_users(session: AsyncSession) -> Sequence[AdminUser]:
    return (await session.execute(select(AdminUser).order_by(AdminUser.id))).scalars().all()


async def add(session: AsyncSession, user: AdminUser) -> AdminUser:
    session.add(user)
    await session.flush()
    return user


async def sandbox_users(session: AsyncSession) -> Sequence[AdminUser]:
    query = select(AdminUser).where(AdminUser.sandbox.is_(True), AdminUser.disabled_at.is_(None))
    return (await session.execute(query)).scalars().all()
