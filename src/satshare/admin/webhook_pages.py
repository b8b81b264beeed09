"""Outgoing webhook endpoints in the panel (#14): list, create (the secret shown once), edit,
enable or disable, delete, rotate the secret (shown once), send a test event, and each
endpoint's delivery log with replays of one delivery or of a time range.

Every change calls ``webhooks_out.flows`` with the operator as the audit ``Actor``, so the
change and its audit row commit together. Reading is for every role; changes need the
``manage`` permission (an endpoint receives every customer's events).
"""

from __future__ import annotations

import json
from typing import Any

from sqladmin import expose
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from satshare.admin.auth import Operator, Permission
from satshare.admin.forms import Refill, field, moment, refilling, ticked
from satshare.admin.pages import FormProblem, Page, _int, actor, render
from satshare.admin.services import AdminServices, services_of
from satshare.admin.texts import N_, lazy, t
from satshare.errors import NotFound
from satshare.webhooks_out import flows, service
from satshare.webhooks_out.models import ALL_EVENTS, SUBSCRIBABLE, DeliveryStatus

PAGE_SIZE = 50
#: A delivery's state in words (``pending`` alone reads as "awaiting payment" elsewhere).
DELIVERY_LABELS: dict[DeliveryStatus, str] = {
    DeliveryStatus.PENDING: N_("waiting"),
    DeliveryStatus.SENDING: N_("sending"),
    DeliveryStatus.DELIVERED: N_("delivered"),
    DeliveryStatus.FAILED: N_("given up"),
}
#: The secret waiting to be shown once, on the next page (the session is signed, HttpOnly).
NEW_SECRET = "new_webhook_secret"  # noqa: S105 - a session key, not a secret


def _spec(form: FormData) -> service.EndpointSpec:
    url = field(form, "url", 2048)
    if not url:
        raise FormProblem(t("Give the URL that receives the events (https://...)."))
    if ticked(form, "all_events"):
        events = [ALL_EVENTS]
    else:
        events = [e for e in SUBSCRIBABLE if ticked(form, f"event_{e}")]
    if not events:
        raise FormProblem(t("Choose at least one event, or all events."))
    return service.EndpointSpec(
        url=url,
        events=events,
        enabled=ticked(form, "enabled"),
        description=field(form, "description", 500),
    )


def _endpoint_id(request: Request) -> int:
    return _int(request.path_params, "endpoint_id", 1, 2**62) or 0


def _keep_secret(request: Request, endpoint_id: int, secret: str) -> None:
    request.session[NEW_SECRET] = {"endpoint_id": endpoint_id, "secret": secret}


class WebhooksDesk(Page):
    name = lazy("Webhooks")
    icon = "fa-solid fa-satellite-dish"

    @expose("/desk/webhooks", methods=["GET"], identity="webhooks")
    async def endpoints(self, request: Request) -> Response:
        return await self._list(request)

    async def _list(
        self, request: Request, refill: Refill | None = None, status_code: int = 200
    ) -> Response:
        services = services_of(request)
        return await render(
            self,
            request,
            "satshare/webhooks.html",
            status_code=status_code,
            rows=await flows.endpoint_summaries(services.webhooks),
            events=SUBSCRIBABLE,
            new_secret=request.session.pop(NEW_SECRET, None),
            refill=refill,
            insecure=services.webhooks.allow_insecure,
            # The sandbox's receiver (/sim/receiver/<name>, shown at /sandbox/webhooks).
            receiver=services.sandbox,
            DeliveryStatus=DeliveryStatus,
        )

    @expose("/desk/webhooks/create", methods=["POST"], identity="webhooks-create")
    async def create(self, request: Request) -> Response:
        async def work(form: FormData, who: Operator, services: AdminServices) -> str:
            endpoint = await flows.create_endpoint(services.webhooks, _spec(form), by=actor(who))
            _keep_secret(request, endpoint.id, endpoint.secret)
            return t("Endpoint {id} added.", id=endpoint.id)

        try:
            return await self.act(
                request, needs=Permission.MANAGE, then="/desk/webhooks", work=refilling(work)
            )
        except Refill as refused:
            return await self._list(request, refused, status_code=422)

    @expose("/desk/webhooks/{endpoint_id}", methods=["GET"], identity="webhooks-one")
    async def endpoint(self, request: Request) -> Response:
        services = services_of(request)
        endpoint_id = _endpoint_id(request)
        params = request.query_params
        wanted = params.get("status", "")
        status = next((s for s in DeliveryStatus if s.value == wanted), None)
        before = _int(params, "before", 1, 2**62)
        try:
            endpoint = await flows.get_endpoint(services.webhooks, endpoint_id)
            fetched, deliveries = await flows.deliveries_page(
                services.webhooks,
                endpoint_id,
                limit=PAGE_SIZE,
                fetch=PAGE_SIZE + 1,
                before_id=before,
                status=status,
            )
        except NotFound:
            return await render(
                self,
                request,
                "satshare/refused.html",
                status_code=404,
                message=t("No such webhook endpoint."),
            )
        shown = request.session.get(NEW_SECRET)
        new_secret = None
        if isinstance(shown, dict) and shown.get("endpoint_id") == endpoint_id:
            new_secret = request.session.pop(NEW_SECRET)
        return await render(
            self,
            request,
            "satshare/webhook.html",
            endpoint=endpoint,
            deliveries=deliveries,
            more=fetched > PAGE_SIZE,
            status=status,
            statuses=list(DeliveryStatus),
            labels=DELIVERY_LABELS,
            events=SUBSCRIBABLE,
            new_secret=new_secret,
            pretty=_pretty,
            now=services.clock.now(),
            insecure=services.webhooks.allow_insecure,
        )

    async def _action(self, request: Request, verb: str) -> Response:
        endpoint_id = _endpoint_id(request)
        then = f"/desk/webhooks/{endpoint_id}"

        async def work(form: FormData, who: Operator, services: AdminServices) -> str:
            ctx, by = services.webhooks, actor(who)
            if verb == "edit":
                await flows.update_endpoint(ctx, endpoint_id, _spec(form), by=by)
                return t("Endpoint {id} saved.", id=endpoint_id)
            if verb in ("enable", "disable"):
                await flows.set_enabled(ctx, endpoint_id, verb == "enable", by=by)
                if verb == "enable":
                    return t(
                        "Endpoint {id} enabled: its waiting deliveries go now.", id=endpoint_id
                    )
                return t(
                    "Endpoint {id} disabled: its events wait until it is enabled.", id=endpoint_id
                )
            if verb == "rotate":
                endpoint = await flows.rotate_secret(ctx, endpoint_id, by=by)
                _keep_secret(request, endpoint_id, endpoint.secret)
                return t("A new secret signs from now on; the old one also signs for 24 hours.")
            if verb == "test":
                view = await flows.send_test(ctx, endpoint_id, by=by)
                return t(
                    "Test event sent as delivery {id}: its outcome shows in the log below.",
                    id=view.delivery.id,
                )
            if verb == "replay":
                delivery_id = _int(request.path_params, "delivery_id", 1, 2**62) or 0
                await flows.replay(ctx, endpoint_id, delivery_id, by=by)
                return t("Delivery {id} is being sent again.", id=delivery_id)
            # A time range.
            since = moment(form, "since", t("From"))
            until = moment(form, "until", t("Until"))
            if since is None or until is None:
                raise FormProblem(t("Give both ends of the time range."))
            count = await flows.replay_range(
                ctx, endpoint_id, since, until, only_failed=ticked(form, "only_failed"), by=by
            )
            return t("{count} deliveries are being sent again.", count=count)

        return await self.act(request, needs=Permission.MANAGE, then=then, work=work)

    @expose("/desk/webhooks/{endpoint_id}/edit", methods=["POST"], identity="webhooks-one-edit")
    async def edit(self, request: Request) -> Response:
        return await self._action(request, "edit")

    @expose("/desk/webhooks/{endpoint_id}/enable", methods=["POST"], identity="webhooks-one-enable")
    async def enable(self, request: Request) -> Response:
        return await self._action(request, "enable")

    @expose(
        "/desk/webhooks/{endpoint_id}/disable", methods=["POST"], identity="webhooks-one-disable"
    )
    async def disable(self, request: Request) -> Response:
        return await self._action(request, "disable")

    @expose("/desk/webhooks/{endpoint_id}/rotate", methods=["POST"], identity="webhooks-one-rotate")
    async def rotate(self, request: Request) -> Response:
        return await self._action(request, "rotate")

    @expose("/desk/webhooks/{endpoint_id}/test", methods=["POST"], identity="webhooks-one-test")
    async def test(self, request: Request) -> Response:
        return await self._action(request, "test")

    @expose(
        "/desk/webhooks/{endpoint_id}/deliveries/{delivery_id}/replay",
        methods=["POST"],
        identity="webhooks-one-replay",
    )
    async def replay(self, request: Request) -> Response:
        return await self._action(request, "replay")

    @expose(
        "/desk/webhooks/{endpoint_id}/replay-range",
        methods=["POST"],
        identity="webhooks-one-replay-range",
    )
    async def replay_range(self, request: Request) -> Response:
        return await self._action(request, "replay-range")

    @expose("/desk/webhooks/{endpoint_id}/delete", methods=["POST"], identity="webhooks-one-delete")
    async def delete(self, request: Request) -> Response:
        endpoint_id = _endpoint_id(request)

        async def work(form: FormData, who: Operator, services: AdminServices) -> str:
            await flows.delete_endpoint(services.webhooks, endpoint_id, by=actor(who))
            return t("Endpoint {id} deleted with its delivery log.", id=endpoint_id)

        return await self.act(request, needs=Permission.MANAGE, then="/desk/webhooks", work=work)


def _pretty(body: str) -> str:
    """A delivery's payload, indented for reading."""
    try:
        document: Any = json.loads(body)
    except ValueError:
        return body
    return json.dumps(document, indent=2, ensure_ascii=False)


PAGES: tuple[type[Page], ...] = (WebhooksDesk,)
