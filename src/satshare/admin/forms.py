"""What the growth and integration pages (webhook endpoints, broadcasts, promo codes) share
for their forms: reading form fields, and showing a refused form again with what was typed.

Each action goes through ``pages.Page.act`` (CSRF token, role, notice); a create form whose
input is refused raises ``Refill`` out of it instead, so the page is drawn again with the
operator's input and the reason, rather than redirected to an empty form.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from starlette.datastructures import FormData

from satshare.admin.auth import Operator
from satshare.admin.pages import FormProblem
from satshare.admin.services import AdminServices
from satshare.admin.texts import t
from satshare.errors import DomainError

Work = Callable[[FormData, Operator, AdminServices], Awaitable[str]]


def field(form: FormData, name: str, limit: int = 200) -> str:
    value = form.get(name)
    return value.strip()[:limit] if isinstance(value, str) else ""


def ticked(form: FormData, name: str) -> bool:
    return form.get(name) == "on"


def number(form: FormData, name: str, low: int, high: int, problem: str) -> int | None:
    """A whole number in [low, high], None when the field is empty; ``problem`` (translated)
    when it is something else."""
    text = field(form, name, 30)
    if not text:
        return None
    if not text.isascii() or not text.isdigit() or not low <= int(text) <= high:
        raise FormProblem(problem)
    return int(text)


def moment(form: FormData, name: str, label: str) -> datetime | None:
    """A ``datetime-local`` field read as UTC (the panel shows every time in UTC), None when
    empty."""
    text = field(form, name, 40)
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        parsed = None
    if parsed is None or not 2000 <= parsed.year <= 9998:
        raise FormProblem(
            t("{field}: give a date and time such as 2026-12-01 09:00 (UTC).", field=label)
        )
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def shown(when: datetime | None) -> str:
    """A time as the panel shows it, and as a ``datetime-local`` field takes it back."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M") if when else ""


class Refill(Exception):
    """The form's input was refused: draw the form again with it and this message."""

    def __init__(self, message: str, form: FormData) -> None:
        super().__init__(message)
        self.message = message
        self.values: dict[str, str] = {}
        self.lists: dict[str, list[str]] = {}
        for key in form:
            values = [v for v in form.getlist(key) if isinstance(v, str)]
            if key != "csrf_token" and values:
                self.values[key] = values[-1]
                self.lists[key] = values


def refilling(work: Work) -> Work:
    """``work`` whose refusal (a domain error or a form problem) comes back as ``Refill``."""

    async def wrapped(form: FormData, who: Operator, services: AdminServices) -> str:
        try:
            return await work(form, who, services)
        except DomainError as exc:
            raise Refill(t("Not done: {detail}", detail=exc.detail), form) from exc
        except FormProblem as exc:
            raise Refill(str(exc), form) from exc

    return wrapped
