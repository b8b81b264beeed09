"""`satshare admin ...`: the web panel's accounts (create-user, list, set-password, disable).

Each change is written to the audit log (channel ``cli``, actor ``cli:<os user>``)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from satshare.audit.flows import Actor
from satshare.audit.models import Channel
from satshare.cli.audit import author
from satshare.cli.common import Group, fail, opened, out, run, settings
from satshare.errors import InvalidRequest
from satshare.security import random_token
from satshare.staff import flows as staff
from satshare.staff import service as accounts
from satshare.staff.models import AdminUser, Role

if TYPE_CHECKING:
    from satshare.container import Container


async def issue_sandbox_login(container: Container) -> tuple[str, str]:
    """The panel's sandbox-only owner login for this start: (user name, password). Refused
    at login outside sandbox mode (see ``admin.auth``)."""
    password = random_token(18)
    user = await staff.sandbox_login(container.db, container.clock, password)
    return user.username, password


admin_app = typer.Typer(cls=Group, help="Admin panel accounts (/admin).", no_args_is_help=True)

STDIN_HELP = "Read the password from standard input (one line), e.g. from a secret store."


def _password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        password = line.removesuffix("\n").removesuffix("\r")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        return accounts.check_password(password)
    except InvalidRequest as exc:
        raise fail(exc.detail) from None


def _role(text: str) -> Role:
    try:
        return accounts.parse_role(text)
    except InvalidRequest as exc:
        raise fail(exc.detail) from None


@admin_app.command("create-user")
def create_user(
    username: Annotated[
        str, typer.Option(metavar="USERNAME", help="Lower-case letters, digits, '_', '.', '-'.")
    ],
    role: Annotated[str, typer.Option(metavar="ROLE", help="owner | manager | support")],
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help=STDIN_HELP)] = False,
) -> None:
    """Create an admin panel account (owner: everything; manager: all but accounts and API
    keys; support: reads, resends access, extends a subscription by up to 7 days)."""
    chosen = _role(role)
    password = _password(password_stdin)
    cfg = settings()

    async def go() -> AdminUser:
        async with opened(cfg) as container:
            return await staff.create_user(
                container.db,
                container.clock,
                username,
                chosen,
                password,
                by=Actor(Channel.CLI, author()),
            )

    user = run(go())
    out.print(
        f"Admin user {user.username} ({user.role}) created; log in at /admin/login.",
        highlight=False,
    )


@admin_app.command("list")
def list_users() -> None:
    """List admin panel accounts."""
    cfg = settings()

    async def go() -> list[AdminUser]:
        async with opened(cfg) as container:
            return list(await staff.list_users(container.db))

    rows = run(go())
    table = Table("id", "username", "role", "created", "last login", "state")
    for user in rows:
        state = "disabled" if user.disabled_at else "active"
        if user.locked_until and not user.disabled_at:
            state = f"locked until {user.locked_until:%Y-%m-%d %H:%M} UTC (or active)"
        table.add_row(
            str(user.id),
            user.username,
            user.role.value,
            f"{user.created_at:%Y-%m-%d}",
            f"{user.last_login_at:%Y-%m-%d %H:%M}" if user.last_login_at else "-",
            state,
        )
    out.print(table)
    if not rows:
        out.print("No admin users: satshare admin create-user --username NAME --role owner")


@admin_app.command("set-password")
def set_password(
    username: Annotated[str, typer.Option(metavar="USERNAME", help="The account's user name.")],
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help=STDIN_HELP)] = False,
) -> None:
    """Set a new password: the account's sessions end and a lockout is lifted."""
    password = _password(password_stdin)
    cfg = settings()

    async def go() -> AdminUser:
        async with opened(cfg) as container:
            return await staff.set_password(
                container.db,
                container.clock,
                username,
                password,
                by=Actor(Channel.CLI, author()),
            )

    user = run(go())
    out.print(
        f"Password of {escape(user.username)} changed; their sessions have ended.", highlight=False
    )


@admin_app.command("disable")
def disable(
    username: Annotated[str, typer.Option(metavar="USERNAME", help="The account's user name.")],
) -> None:
    """Disable an account: it cannot log in, and its sessions end at the next request."""
    cfg = settings()

    async def go() -> AdminUser:
        async with opened(cfg) as container:
            return await staff.disable(
                container.db, container.clock, username, by=Actor(Channel.CLI, author())
            )

    user = run(go())
    out.print(f"Admin user {escape(user.username)} disabled.", highlight=False)
