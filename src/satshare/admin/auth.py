"""Who is using the panel: the login, the session, CSRF tokens, roles and the guard.

The session is Starlette's signed cookie (itsdangerous): HttpOnly, SameSite=Lax, Secure when
the public URL is https, path ``/admin``. Its signature carries a timestamp checked against
the idle timeout, and it is re-signed on every answer, so a session ends after that long
without a request. The session holds the admin user's id and the time their password last
changed: a new password or a disabled account ends every session at the next request.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

from limits import RateLimitItemPerMinute
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter
from sqladmin.authentication import AuthenticationBackend
from starlette.requests import HTTPConnection, Request
from starlette.responses import RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from satshare.admin.services import AdminServices
from satshare.admin.texts import t
from satshare.staff import flows as staff
from satshare.staff import service as accounts
from satshare.staff.models import Role

if TYPE_CHECKING:
    from sqladmin import Admin

SESSION_COOKIE = "satshare_admin"
#: Paths below /admin that answer without a session: the login form and static assets.
PUBLIC_PATHS = ("/login",)
PUBLIC_PREFIXES = ("/statics/", "/assets/")
#: Where a login never returns to: the login form itself, and the logout question.
NOT_RETURNED_TO = ("/login", "/logout")
#: Longer addresses are not kept for after the login (the dashboard instead).
MAX_RETURN = 2000


class Permission(StrEnum):
    READ = "read"
    #: Resend access links; extend a subscription by up to 7 days with a reason.
    SUPPORT = "support"
    #: Money and catalogue: payouts, refunds, plans, subscriptions, affiliates.
    MANAGE = "manage"
    #: Admin users and API keys.
    OWN = "own"


GRANTS: dict[Role, frozenset[Permission]] = {
    Role.OWNER: frozenset(Permission),
    Role.MANAGER: frozenset({Permission.READ, Permission.SUPPORT, Permission.MANAGE}),
    Role.SUPPORT: frozenset({Permission.READ, Permission.SUPPORT}),
}


@dataclass(frozen=True, slots=True)
class Operator:
    """The admin user behind a request."""

    id: int
    username: str
    role: Role

    def can(self, permission: Permission) -> bool:
        return permission in GRANTS[self.role]


def operator(request: HTTPConnection) -> Operator | None:
    found: Operator | None = request.scope.get("state", {}).get("operator")
    return found


def csrf_token(request: HTTPConnection) -> str:
    """The session's CSRF token (made at the first form shown)."""
    token = request.session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


def csrf_ok(request: HTTPConnection, submitted: object) -> bool:
    expected = request.session.get("csrf")
    return (
        isinstance(expected, str)
        and isinstance(submitted, str)
        and hmac.compare_digest(expected.encode(), submitted.encode())
    )


def _relative(scope: Scope) -> str:
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def return_path(root: str, wanted: object) -> str | None:
    """``wanted`` if a login may send the operator there: a path of this site under the panel
    (``root``, /admin), with no scheme, host, backslash, control character or dot segment
    that a browser could read as another site or another place; else None (the dashboard).
    """
    if not isinstance(wanted, str) or not wanted or len(wanted) > MAX_RETURN:
        return None
    if not wanted.isprintable() or "\\" in wanted or any(c.isspace() for c in wanted):
        return None
    parts = urlsplit(wanted)
    if parts.scheme or parts.netloc or parts.fragment or not parts.path.startswith(root + "/"):
        return None
    segments = parts.path.split("/")
    if "" in segments[1:-1] or {".", ".."} & set(segments):  # "//" or "/../" anywhere
        return None
    if parts.path.removeprefix(root) in NOT_RETURNED_TO or "%2e" in parts.path.lower():
        return None
    return wanted


def login_address(scope: Scope) -> str:
    """The login form, told (``?next=``) to return afterwards to the page asked for: a GET
    of a page other than the dashboard (a form posted without a session is not repeated)."""
    root: str = scope.get("root_path", "")
    login = root + "/login"
    if scope.get("method") not in ("GET", "HEAD"):
        return login
    wanted = root + _relative(scope)
    query = scope.get("query_string", b"").decode("latin-1")
    if query:
        wanted += "?" + query
    if wanted == root + "/" or return_path(root, wanted) is None:
        return login
    return login + "?" + urlencode({"next": wanted})


class SessionGuard:
    """Everything below /admin but the login form and static assets needs a live session of
    an enabled admin user: anything else is sent to the login page (303)."""

    def __init__(self, app: ASGIApp, services: AdminServices) -> None:
        self.app = app
        self.services = services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        relative = _relative(scope)
        scope.setdefault("state", {})
        if relative in PUBLIC_PATHS or relative.startswith(PUBLIC_PREFIXES):
            await self.app(scope, receive, send)
            return
        connection = HTTPConnection(scope)
        found = await self._operator(connection)
        if found is None:
            connection.session.clear()
            await RedirectResponse(login_address(scope), status_code=303)(scope, receive, send)
            return
        scope["state"]["operator"] = found
        await self.app(scope, receive, send)

    async def _operator(self, connection: HTTPConnection) -> Operator | None:
        session = connection.session
        user_id, stamp = session.get("user_id"), session.get("stamp")
        if not isinstance(user_id, int) or not isinstance(stamp, str):
            return None
        user = await staff.get(self.services.db, user_id)
        if (
            user is None
            or user.disabled_at is not None
            or user.password_changed_at.isoformat() != stamp
            or (user.sandbox and not self.services.sandbox)
        ):
            return None
        return Operator(id=user.id, username=user.username, role=user.role)


class PanelAuth(AuthenticationBackend):
    """SQLAdmin's login hooks: the form posts ``username``, ``password`` and ``csrf_token``."""

    def __init__(self, services: AdminServices, secret: str) -> None:
        settings = services.settings
        super().__init__(
            secret_key=secret,
            session_cookie=SESSION_COOKIE,
            max_age=settings.admin.idle_timeout_minutes * 60,
            path="/admin",
            same_site="lax",
            https_only=settings.server.base_url.startswith("https://"),
        )
        self.services = services
        self.admin: Admin | None = None
        self.limiter = MovingWindowRateLimiter(MemoryStorage())
        self.per_ip = RateLimitItemPerMinute(settings.admin.login_attempts_per_minute)

    async def _refuse(self, request: Request, message: str, status: int) -> Response:
        """The login form again with ``message``: the user name typed stays (never the
        password), and so does the page to return to."""
        assert self.admin is not None
        form = await request.form()
        username = form.get("username")
        context = {
            "error": message,
            "username": username if isinstance(username, str) and len(username) <= 64 else "",
            "next": return_path(request.scope.get("root_path", ""), form.get("next")),
        }
        response: Response = await self.admin.templates.TemplateResponse(
            request, "sqladmin/login.html", context, status_code=status
        )
        return response

    async def login(self, request: Request) -> Response | bool:
        form = await request.form()
        if not csrf_ok(request, form.get("csrf_token")):
            return await self._refuse(request, t("The form had expired. Please log in again."), 403)
        client = request.client.host if request.client else "unknown"
        if not await self.limiter.hit(self.per_ip, "admin-login", client):
            return await self._refuse(
                request, t("Too many login attempts from your address. Wait a minute."), 429
            )
        username, password = form.get("username"), form.get("password")
        if not isinstance(username, str) or not isinstance(password, str):
            return await self._refuse(request, t("Enter your user name and password."), 400)
        if not username.strip() or len(username) > 64 or len(password) > accounts.MAX_PASSWORD:
            return await self._refuse(request, t("Wrong user name or password."), 400)
        result = await staff.login(self.services.db, self.services.clock, username, password)
        if result.outcome == accounts.Outcome.LOCKED:
            until = result.locked_until.strftime("%H:%M UTC") if result.locked_until else ""
            return await self._refuse(
                request,
                t("Too many failed logins: this account is locked until {until}.", until=until),
                423,
            )
        # The sandbox's own account works only in sandbox mode.
        sandbox_only = result.user is not None and result.user.sandbox
        if (
            result.outcome != accounts.Outcome.OK
            or result.user is None
            or (sandbox_only and not self.services.sandbox)
        ):
            return await self._refuse(request, t("Wrong user name or password."), 400)
        user = result.user
        request.session.clear()  # a fresh session (and CSRF token) at each login
        request.session.update(
            {
                "user_id": user.id,
                "stamp": user.password_changed_at.isoformat(),
                "csrf": secrets.token_urlsafe(32),
            }
        )
        return True

    async def logout(self, request: Request) -> Response | bool:
        # Called by Panel.logout for a POST carrying the CSRF token (never for a GET).
        request.session.clear()
        return False

    async def authenticate(self, request: Request) -> Response | bool:
        # The SessionGuard has already checked the session against the database.
        return operator(request) is not None

    async def get_user_id(self, request: Request) -> Any:
        found = operator(request)
        return found.id if found else None


def when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if moment else ""
