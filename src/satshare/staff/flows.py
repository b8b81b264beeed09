"""Admin account use cases for the adapters (the panel's login and its admin-users page,
``satshare admin``), each in its own unit of work; a change and its audit row commit
together."""

from __future__ import annotations

from collections.abc import Sequence

from satshare.audit import service as audit
from satshare.audit.flows import Actor, audited
from satshare.audit.models import Channel
from satshare.clock import Clock
from satshare.db import Database
from satshare.staff import repository, service
from satshare.staff.models import AdminUser, Role


async def get(db: Database, user_id: int) -> AdminUser | None:
    async with db.reading() as session:
        return await repository.get(session, user_id)


async def list_users(db: Database) -> Sequence[AdminUser]:
    async with db.reading() as session:
        return await repository.list_users(session)


async def create_user(
    db: Database,
    clock: Clock,
    username: str,
    role: Role,
    password: str,
    *,
    by: Actor,
    reason: str = "",
) -> AdminUser:
    async with audited(db, by, "admin.create", now=clock.now(), reason=reason) as work:
        user = await service.create_user(work.session, username, role, password, work.now)
        work.target = f"admin:{user.username}"
        work.after = {"role": role.value}
        return user


async def set_password(
    db: Database, clock: Clock, username: str, password: str, *, by: Actor, reason: str = ""
) -> AdminUser:
    async with audited(db, by, "admin.set_password", now=clock.now(), reason=reason) as work:
        user = await service.set_password(work.session, username, password, work.now)
        work.target = f"admin:{user.username}"
        work.after = {"password_changed": True}
        return user


async def disable(
    db: Database, clock: Clock, username: str, *, by: Actor, reason: str = ""
) -> AdminUser:
    async with audited(db, by, "admin.disable", now=clock.now(), reason=reason) as work:
        user = await service.disable(work.session, username, work.now)
        work.target = f"admin:{user.username}"
        work.before, work.after = {"disabled": False}, {"disabled": True}
        return user


async def login(db: Database, clock: Clock, username: str, password: str) -> service.LoginResult:
    """Check a panel login; the lockout (once, when it happens) and each success go to the
    audit log in the same transaction."""
    now = clock.now()
    async with db.transaction() as session:
        result = await service.login(session, username, password, now)
        if result.just_locked:  # recorded once, not for each refused try after it
            name = username.strip().lower()[:64]
            await audit.record(
                session,
                channel=Channel.PANEL,
                actor=name,
                role="",
                action="admin.locked",
                target=f"admin:{name}",
                reason=f"{service.MAX_FAILED_LOGINS} failed logins in a row",
                now=now,
            )
        elif result.outcome == service.Outcome.OK and result.user is not None:
            await audit.record(
                session,
                channel=Channel.PANEL,
                actor=result.user.username,
                role=result.user.role.value,
                action="admin.login",
                target=f"admin:{result.user.username}",
                now=now,
            )
        return result


async def sandbox_login(db: Database, clock: Clock, password: str) -> AdminUser:
    async with db.transaction() as session:
        return await service.sandbox_login(session, password, clock.now())
