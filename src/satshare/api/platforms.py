"""Platform-bound API keys (#14): ``satshare api-key create --platform website``.

Such a key reaches only the users of its platform and what is theirs (subscriptions,
invoices, payouts, affiliate pages, statements). Anything of another platform's user is
answered exactly as if it did not exist — the same status and words as for an id nobody
has — so a bound key cannot even learn that it exists. Operations over every platform at
once (the ledger, the monthly reports, the payout export, the webhook endpoints) are
forbidden to bound keys. Unbound keys are not affected.

One guard for every route (``app.include_router(..., dependencies=[PLATFORM_GUARD])``)
reads the ids a request names — in its path, its ``user_id`` query parameter or its JSON
body's ``user_id`` — before the route runs; the list routes filter by the key's platform
themselves (``Principal.platform``).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, Request

from satshare.api.deps import ContainerDep, Principal, principal_for
from satshare.errors import Forbidden, InvalidRequest, NotFound
from satshare.payments import repository as payments_repo
from satshare.payouts import service as payouts
from satshare.subscriptions import repository as subscriptions_repo
from satshare.users import repository as users_repo

#: Operations that span every platform: a bound key gets 403 there.
ALL_PLATFORMS_PREFIXES = (
    "/api/v1/transactions",
    "/api/v1/reports/monthly",
    "/api/v1/reports/chart",
    "/api/v1/payouts/export",
    "/api/v1/webhook-endpoints",
    "/api/v1/webhook-event-types",
)


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 19:
        return int(value)
    return None


async def _body(request: Request) -> dict[str, Any]:
    if request.method not in ("POST", "PUT", "PATCH"):
        return {}
    try:
        document = json.loads(await request.body() or b"{}")
    except (ValueError, UnicodeDecodeError):
        return {}  # the route's validation answers
    return document if isinstance(document, dict) else {}


async def _principal(request: Request, container: ContainerDep) -> Principal | None:
    """The request's key, read from the header itself: a security dependency here would
    mark every operation, public ones included, as needing a key in the OpenAPI."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return await principal_for(request, container, token.strip())


async def platform_guard(
    request: Request,
    container: ContainerDep,
    principal: Annotated[Principal | None, Depends(_principal)],
) -> None:
    if principal is None or principal.platform is None:
        return
    platform = principal.platform
    path = request.url.path
    if path.startswith(ALL_PLATFORMS_PREFIXES):
        raise Forbidden(
            f"this API key is bound to the {platform} platform; this operation spans every "
            "platform and needs an unbound key"
        )
    params = request.path_params
    body = await _body(request)
    async with container.db.reading() as session:

        async def owned(user_id: int) -> bool:
            user = await users_repo.get(session, user_id)
            return user is not None and user.platform == platform

        if (user_id := _int(params.get("user_id"))) is not None and not await owned(user_id):
            raise NotFound(f"user {user_id} does not exist")
        if (sub_id := _int(params.get("subscription_id"))) is not None:
            subscription = await subscriptions_repo.get(session, sub_id)
            if subscription is not None and not await owned(subscription.user_id):
                raise NotFound(f"subscription {sub_id} does not exist")
        if (payout_id := _int(params.get("payout_id"))) is not None:
            try:
                payout = await payouts.require(session, payout_id)
            except NotFound:
                payout = None
            if payout is not None and not await owned(payout.user_id):
                raise NotFound(f"payout {payout_id} does not exist")
        if isinstance(invoice_id := params.get("invoice_id"), str):
            invoice = await payments_repo.get_invoice(session, invoice_id)
            if invoice is not None and not await owned(invoice.user_id):
                raise NotFound(f"invoice {invoice_id} does not exist")
        query_user = _int(request.query_params.get("user_id"))
        if query_user is not None and not await owned(query_user):
            # A list for one user: as for a user with nothing, or a 404 on a user's page.
            raise NotFound(f"user {query_user} does not exist")
        body_user = _int(body.get("user_id"))
        if body_user is not None and not await owned(body_user):
            raise _absent_user(path, body_user)
        if path == "/api/v1/users" and request.method == "POST":
            await _check_registration(platform, body, owned)


def _absent_user(path: str, user_id: int) -> Exception:
    """What each route answers for a body's user_id that nobody has."""
    if path == "/api/v1/subscriptions":
        return InvalidRequest(f"user_id {user_id} does not exist", field="user_id")
    return NotFound(f"user {user_id} does not exist")


async def _check_registration(
    platform: str, body: dict[str, Any], owned: Callable[[int], Awaitable[bool]]
) -> None:
    given = body.get("platform")
    if isinstance(given, str) and given != platform:
        raise InvalidRequest(
            f"this API key is bound to the {platform} platform: it registers {platform} users "
            f'only; send "platform": "{platform}"',
            field="platform",
        )
    referrer = body.get("referral_id")
    # A referral code works across platforms (it is shared publicly); a user id only names
    # a user of the key's own platform.
    referrer_id = (
        _int(referrer)
        if isinstance(referrer, int) or (isinstance(referrer, str) and referrer.strip().isdigit())
        else None
    )
    if referrer_id is not None and not await owned(referrer_id):
        raise InvalidRequest(
            f"referral_id {str(referrer).strip()!r} matches no user id or referral code",
            field="referral_id",
        )


PLATFORM_GUARD = Depends(platform_guard)
