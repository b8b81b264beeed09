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
from typing import Annotated, Any

from fastapi import Depends, Request

from satshare.api.deps import ClockDep, DbDep, Principal, principal_for
from satshare.errors import Forbidden, InvalidRequest, NotFound
from satshare.payouts.owners import owners

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


async def _principal(request: Request, db: DbDep, clock: ClockDep) -> Principal | None:
    """The request's key, read from the header itself: a security dependency here would
    mark every operation, public ones included, as needing a key in the OpenAPI."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return await principal_for(request, db, clock, token.strip())


async def platform_guard(
    request: Request,
    db: DbDep,
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
    path_user = _int(params.get("user_id"))
    query_user = _int(request.query_params.get("user_id"))
    body_user = _int(body.get("user_id"))
    registration = path == "/api/v1/users" and request.method == "POST"
    referrer_id = _referrer_id(body) if registration else None
    invoice_id = params.get("invoice_id")
    found = await owners(
        db,
        user_ids=[u for u in (path_user, query_user, body_user, referrer_id) if u is not None],
        subscription_id=_int(params.get("subscription_id")),
        payout_id=_int(params.get("payout_id")),
        invoice_id=invoice_id if isinstance(invoice_id, str) else None,
    )

    def foreign(owner: int | None) -> bool:
        """Exists and belongs to another platform's user."""
        return owner is not None and not found.on(owner, platform)

    if path_user is not None and not found.on(path_user, platform):
        raise NotFound(f"user {path_user} does not exist")
    if foreign(found.subscription):
        raise NotFound(f"subscription {params['subscription_id']} does not exist")
    if foreign(found.payout):
        raise NotFound(f"payout {params['payout_id']} does not exist")
    if foreign(found.invoice):
        raise NotFound(f"invoice {invoice_id} does not exist")
    if query_user is not None and not found.on(query_user, platform):
        # A list for one user: as for a user with nothing, or a 404 on a user's page.
        raise NotFound(f"user {query_user} does not exist")
    if body_user is not None and not found.on(body_user, platform):
        raise _absent_user(path, body_user)
    if registration:
        _check_registration(
            platform,
            body,
            referrer_id,
            found.on(referrer_id, platform) if referrer_id is not None else True,
        )


def _absent_user(path: str, user_id: int) -> Exception:
    """What each route answers for a body's user_id that nobody has."""
    if path == "/api/v1/subscriptions":
        return InvalidRequest(f"user_id {user_id} does not exist", field="user_id")
    return NotFound(f"user {user_id} does not exist")


def _referrer_id(body: dict[str, Any]) -> int | None:
    """The user id a registration names as its referrer (a referral code names none)."""
    referrer = body.get("referral_id")
    if isinstance(referrer, int) or (isinstance(referrer, str) and referrer.strip().isdigit()):
        return _int(referrer if isinstance(referrer, int) else referrer.strip())
    return None


def _check_registration(
    platform: str, body: dict[str, Any], referrer_id: int | None, referrer_owned: bool
) -> None:
    given = body.get("platform")
    if isinstance(given, str) and given != platform:
        raise InvalidRequest(
            f"this API key is bound to the {platform} platform: it registers {platform} users "
            f'only; send "platform": "{platform}"',
            field="platform",
        )
    # A referral code works across platforms (it is shared publicly); a user id only names
    # a user of the key's own platform.
    if referrer_id is not None and not referrer_owned:
        raise InvalidRequest(
            f"referral_id {str(body.get('referral_id')).strip()!r} matches no user id or "
            "referral code",
            field="referral_id",
        )


PLATFORM_GUARD = Depends(platform_guard)
