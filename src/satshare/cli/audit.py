"""Who acts at the command line, and the audit log for the commands that change state: a
decorator records the command once it has succeeded (a refused command records nothing)."""

from __future__ import annotations

import functools
import getpass
from collections.abc import Callable
from typing import Any, TypeVar

from satshare.audit import flows as audit
from satshare.audit.models import Channel
from satshare.cli.common import opened, run, settings

F = TypeVar("F", bound=Callable[..., None])


def author() -> str:
    """Who acted, as recorded on payouts, terms and the audit log: the operating-system user."""
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # no user name in some containers
        return "cli"


def audited(action: str, target: str = "") -> Callable[[F], F]:
    """Record ``action`` on ``target`` (formatted with the command's arguments) after the
    command returns."""

    def decorate(command: F) -> F:
        @functools.wraps(command)
        def wrapper(*args: Any, **kwargs: Any) -> None:
            command(*args, **kwargs)
            cfg = settings()

            async def record() -> None:
                async with opened(cfg) as container:
                    await audit.record(
                        container.db,
                        container.clock,
                        channel=Channel.CLI,
                        actor=author(),
                        role="",
                        action=action,
                        target=target.format(**kwargs),
                        reason=str(kwargs.get("reason") or ""),
                    )

            run(record())

        return wrapper  # type: ignore[return-value]

    return decorate
