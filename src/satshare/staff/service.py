"""Admin accounts: creation, passwords (argon2id via argon2-cffi), disabling, and the login
check with its lockout (5 failed logins lock the account for 15 minutes)."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy.ext.asyncio import AsyncSession

from satshare.errors import Conflict, InvalidRequest, NotFound
from satshare.staff import repository
from satshare.staff.models import AdminUser, Role

MAX_FAILED_LOGINS = 5
LOCKOUT = timedelta(minutes=15)
MIN_PASSWORD = 10
MAX_PASSWORD = 1024
_USERNAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")

_hasher = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the user name is unknown, so that answer takes as long as a
    wrong password does (no user-name probing by timing). Made at the first login, not at
    import: an argon2 hash costs ~0.1 s and 64 MiB of scratch memory, which every process
    importing this module (``serve`` included) would otherwise pay at start."""
    return _hasher.hash("not a password of anyone")


class Outcome(StrEnum):
    OK = "ok"
    INVALID = "invalid"  # unknown user or wrong password: the same answer for both
    LOCKED = "locked"
    DISABLED = "disabled"


@dataclass(frozen=True, slots=True)
class LoginResult:
    outcome: Outcome
    user: AdminUser | None = None
    locked_until: datetime | None = None
    #: This failure is the one that locked the account.
    just_locked: bool = False


def check_username(username: str) -> str:
    name = username.strip().lower()
    if not _USERNAME.fullmatch(name):
        raise InvalidRequest(
            "the user name must be 1 to 64 characters: lower-case letters, digits, '_', '.' "
            "or '-', starting with a letter or digit",
            field="username",
        )
    return name


def check_password(password: str) -> str:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise InvalidRequest(
            f"the password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters long",
            field="password",
        )
    if "\x00" in password:
        raise InvalidRequest("the password must not contain a NUL character", field="password")
    return password


def parse_role(text: str) -> Role:
    try:
        return Role(text.strip().lower())
    except ValueError:
        raise InvalidRequest(
            f"unknown role {text!r}; roles are {', '.join(r.value for r in Role)}", field="role"
        ) from None


async def create_user(
    session: AsyncSession,
    username: str,
    role: Role,
    password: str,
    now: datetime,
    *,
    sandbox: bool = False,
) -> AdminUser:
    name = check_username(username)
    check_password(password)
    if await repository.by_username(session, name) is not None:
        raise Conflict(f"an admin user named {name!r} exists; use set-password to change it")
    return await repository.add(
        session,
        AdminUser(
            username=name,
            role=role,
            password_hash=_hasher.hash(password),
            created_at=now,
            password_changed_at=now,
            failed_logins=0,
            sandbox=sandbox,
        ),
    )


async def require(session: AsyncSession, username: str, *, lock: bool = False) -> AdminUser:
    user = await repository.by_username(session, username.strip().lower(), lock=lock)
    if user is None:
        raise NotFound(f"no admin user named {username!r}; see `satshare admin list`")
    return user


async def set_password(
    session: AsyncSession, username: str, password: str, now: datetime
) -> AdminUser:
    """A new password ends every session of the user and lifts a lockout."""
    check_password(password)
    user = await require(session, username, lock=True)
    user.password_hash = _hasher.hash(password)
    user.password_changed_at = now
    user.failed_logins = 0
    user.locked_until = None
    await session.flush()
    return user


async def disable(session: AsyncSession, username: str, now: datetime) -> AdminUser:
    """A disabled user cannot log in and their sessions end at the next request."""
    user = await require(session, username, lock=True)
    if user.disabled_at is None:
        user.disabled_at = now
    await session.flush()
    return user


async def login(session: AsyncSession, username: str, password: str, now: datetime) -> LoginResult:
    """Check a login; counts failures and locks the account on the fifth one in a row."""
    name = username.strip().lower()
    user = await repository.by_username(session, name, lock=True) if name else None
    if user is None:
        _verify(_dummy_hash(), password)
        return LoginResult(Outcome.INVALID)
    if user.locked_until is not None and user.locked_until > now:
        return LoginResult(Outcome.LOCKED, locked_until=user.locked_until)
    if not _verify(user.password_hash, password):
        user.failed_logins += 1
        if user.failed_logins >= MAX_FAILED_LOGINS:
            user.failed_logins = 0
            user.locked_until = now + LOCKOUT
            await session.flush()
            return LoginResult(Outcome.LOCKED, locked_until=user.locked_until, just_locked=True)
        await session.flush()
        return LoginResult(Outcome.INVALID)
    if user.disabled_at is not None:
        return LoginResult(Outcome.DISABLED)
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    await session.flush()
    return LoginResult(Outcome.OK, user=user)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


SANDBOX_USERNAME = "sandbox"


async def sandbox_login(session: AsyncSession, password: str, now: datetime) -> AdminUser:
    """The sandbox's owner account, with a fresh password for this start. It is marked
    ``sandbox`` and refused outside sandbox mode (see ``auth``)."""
    user = await repository.by_username(session, SANDBOX_USERNAME, lock=True)
    if user is None:
        return await create_user(session, SANDBOX_USERNAME, Role.OWNER, password, now, sandbox=True)
    if not user.sandbox:
        raise Conflict(
            f"an admin user named {SANDBOX_USERNAME!r} exists and is not the sandbox's own"
        )
    user.password_hash = _hasher.hash(check_password(password))
    user.password_changed_at = now
    user.disabled_at = None
    user.failed_logins = 0
    user.locked_until = None
    await session.flush()
    return user
