"""Promo codes in the panel (#13): create (percent off, fixed sats off or extra days; some
plans or all; max uses; once per user; valid from/until; first purchase only), the list with
each code's usage (uses, revenue, discount given), disable and enable again.

Every change calls ``promos.flows`` with the operator as the audit ``Actor``, so the change
and its audit row commit together. Reading is for every role; changes need the ``manage``
permission.
"""

from __future__ import annotations

from sqladmin import expose
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from satshare.admin.auth import Operator, Permission
from satshare.admin.forms import Refill, field, moment, number, refilling, ticked
from satshare.admin.pages import FormProblem, Page, actor, render
from satshare.admin.services import AdminServices, services_of
from satshare.admin.texts import N_, lazy, t
from satshare.plans import flows as plan_flows
from satshare.promos import flows, service
from satshare.promos.models import CODE_MAX_LENGTH, PromoKind
from satshare.promos.service import MAX_DAYS

PAGE_SIZE = 100
KIND_LABELS: dict[PromoKind, str] = {
    PromoKind.PERCENT: N_("Percent off"),
    PromoKind.FIXED_SATS: N_("Sats off"),
    PromoKind.EXTRA_DAYS: N_("Extra days"),
}
MAX_USES = 10_000_000


def _spec(form: FormData, plan_ids: set[str]) -> service.PromoSpec:
    code = service.normalise(field(form, "code", 64))
    if not service.CODE_PATTERN.match(code):
        raise FormProblem(t("The code is 3 to 32 letters, digits, _ or - (case does not matter)."))
    kind = next((k for k in PromoKind if k.value == field(form, "kind", 16)), None)
    if kind is None:
        raise FormProblem(t("Choose what the code gives."))
    limits = {
        PromoKind.PERCENT: (100, t("A percent off is a whole number from 1 to 100.")),
        PromoKind.FIXED_SATS: (21 * 10**14, t("Sats off is a whole number, at least 1.")),
        PromoKind.EXTRA_DAYS: (MAX_DAYS, t("Extra days are 1 to {most}.", most=MAX_DAYS)),
    }
    most, problem = limits[kind]
    value = number(form, "value", 1, most, problem)
    if value is None:
        raise FormProblem(problem)
    chosen = tuple(p for p in sorted(plan_ids) if ticked(form, f"plan_{p}"))
    valid_from = moment(form, "valid_from", t("Valid from"))
    valid_until = moment(form, "valid_until", t("Valid until"))
    if valid_from and valid_until and valid_until <= valid_from:
        raise FormProblem(t("The end of the validity must be after its start."))
    return service.PromoSpec(
        code=code,
        kind=kind,
        value=value,
        plans=chosen or None,  # none ticked: every plan
        max_uses=number(
            form, "max_uses", 1, MAX_USES, t("Max uses is a whole number, at least 1 (or empty).")
        ),
        once_per_user=ticked(form, "once_per_user"),
        first_purchase_only=ticked(form, "first_purchase_only"),
        valid_from=valid_from,
        valid_until=valid_until,
    )


class PromoCodesDesk(Page):
    name = lazy("Promo codes")
    icon = "fa-solid fa-ticket"

    @expose("/desk/promo-codes", methods=["GET"], identity="promo-codes")
    async def codes(self, request: Request) -> Response:
        return await self._list(request)

    async def _list(
        self, request: Request, refill: Refill | None = None, status_code: int = 200
    ) -> Response:
        services = services_of(request)
        after = service.normalise(request.query_params.get("after", "")[:CODE_MAX_LENGTH]) or None
        rows = await flows.listing(
            services.db, limit=PAGE_SIZE + 1, after_code=after, now=services.clock.now()
        )
        shown = rows[:PAGE_SIZE]
        return await render(
            self,
            request,
            "satshare/promo_codes.html",
            status_code=status_code,
            rows=shown,
            more=len(rows) > PAGE_SIZE,
            last=shown[-1][0].code if shown else None,
            refill=refill,
            kinds=list(PromoKind),
            code_max_length=CODE_MAX_LENGTH,
            labels=KIND_LABELS,
            plans=await plan_flows.list_all(services.db),
            now=services.clock.now(),
        )

    @expose("/desk/promo-codes/create", methods=["POST"], identity="promo-codes-create")
    async def create(self, request: Request) -> Response:
        async def work(form: FormData, who: Operator, services: AdminServices) -> str:
            plan_ids = {p.id for p in await plan_flows.list_all(services.db)}
            spec = _spec(form, plan_ids)
            promo, _ = await flows.create(
                services.db,
                spec,
                f"admin:{who.username}"[:200],
                services.clock.now(),
                by=actor(who),
            )
            return t("Promo code {code} created.", code=promo.code)

        try:
            return await self.act(
                request, needs=Permission.MANAGE, then="/desk/promo-codes", work=refilling(work)
            )
        except Refill as refused:
            return await self._list(request, refused, status_code=422)

    async def _switch(self, request: Request, active: bool) -> Response:
        code = service.normalise(str(request.path_params.get("code", ""))[:32])

        async def work(form: FormData, who: Operator, services: AdminServices) -> str:
            await flows.change(
                services.db,
                code,
                {"active": active},
                services.clock.now(),
                by=actor(who),
                action="promo.enable" if active else "promo.disable",
            )
            if active:
                return t("Promo code {code} works again.", code=code)
            return t("Promo code {code} disabled: nobody can use it from now on.", code=code)

        return await self.act(request, needs=Permission.MANAGE, then="/desk/promo-codes", work=work)

    @expose(
        "/desk/promo-codes/{code}/disable", methods=["POST"], identity="promo-codes-one-disable"
    )
    async def disable(self, request: Request) -> Response:
        return await self._switch(request, active=False)

    @expose("/desk/promo-codes/{code}/enable", methods=["POST"], identity="promo-codes-one-enable")
    async def enable(self, request: Request) -> Response:
        return await self._switch(request, active=True)


PAGES: tuple[type[Page], ...] = (PromoCodesDesk,)
