"""The panel's own pages and workflows (Jinja2, server-rendered).

Every action is a POST form carrying the session's CSRF token; it checks the operator's role,
calls the same domain flow or service the API uses, and records an audit event (who, role,
what, before → after, reason). Bad input changes nothing and comes back as a notice in the
operator's language; no input gives a 500.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqladmin import BaseView, expose
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

from satshare.admin import charts
from satshare.admin.auth import Operator, Permission, csrf_ok, operator
from satshare.admin.services import AdminServices, services_of
from satshare.admin.texts import lazy, t
from satshare.affiliates import flows as affiliate_flows
from satshare.apikeys import flows as apikey_flows
from satshare.apikeys.models import SCOPES
from satshare.audit import flows as audit_flows
from satshare.audit import service as audit
from satshare.audit.flows import Actor
from satshare.audit.models import Channel
from satshare.errors import DomainError, NotFound
from satshare.ledger import flows as ledger_flows
from satshare.payments import flows as payment_flows
from satshare.payments.models import InvoiceStatus
from satshare.payouts import export, flows
from satshare.payouts.destinations import mask
from satshare.payouts.models import Payout, PayoutStatus
from satshare.plans import flows as plan_flows
from satshare.plans import service as plans
from satshare.plans.models import PlanSource
from satshare.reports import dashboard as dashboards
from satshare.reports import flows as report_flows
from satshare.staff import flows as staff
from satshare.staff.models import Role
from satshare.subscriptions import flows as subscription_flows
from satshare.subscriptions import service as subscriptions
from satshare.users import flows as user_flows

if TYPE_CHECKING:
    from sqladmin import Admin

#: Support may give at most this many days at once (the issue's rule).
SUPPORT_MAX_DAYS = 7
MAX_GRANT_DAYS = 366
MAX_REASON = 500
NOTICES = "notices"


def notice(request: Request, text: str, level: str = "success") -> None:
    """A message shown once on the next page (kept in the session)."""
    request.session.setdefault(NOTICES, []).append({"level": level, "text": text})
    request.session[NOTICES] = request.session[NOTICES][-5:]


def take_notices(request: Request) -> list[dict[str, str]]:
    found: list[dict[str, str]] = request.session.pop(NOTICES, [])
    return found


def back(request: Request, path: str) -> RedirectResponse:
    return RedirectResponse(request.scope.get("root_path", "") + path, status_code=303)


def _text(form: FormData, name: str, limit: int = 200) -> str:
    value = form.get(name)
    return value.strip()[:limit] if isinstance(value, str) else ""


def _int(form: FormData | Mapping[str, str], name: str, low: int, high: int) -> int | None:
    value = form.get(name)
    if not isinstance(value, str) or not value.strip().isascii() or not value.strip().isdigit():
        return None
    number = int(value.strip())
    return number if low <= number <= high else None


def _reason(form: FormData) -> str:
    return _text(form, "reason", MAX_REASON)


async def render(
    view: BaseView | Admin, request: Request, template: str, status_code: int = 200, **context: Any
) -> Response:
    context.setdefault("notices", take_notices(request))
    context.setdefault("status_code", status_code)  # refused.html: not found, or not allowed
    response: Response = await view.templates.TemplateResponse(
        request, template, context, status_code=status_code
    )
    return response


async def refuse_forged(view: BaseView | Admin, request: Request) -> Response:
    """A form without this session's CSRF token: refused (403), nothing done."""
    return await render(
        view,
        request,
        "satshare/refused.html",
        status_code=403,
        message=t(
            "This form has expired or did not come from this panel. Reload the page and try again."
        ),
    )


class Page(BaseView):
    needs: Permission = Permission.READ

    def is_accessible(self, request: Request) -> bool:
        found = operator(request)
        return found is not None and found.can(self.needs)

    def is_visible(self, request: Request) -> bool:
        return self.is_accessible(request)

    async def act(
        self,
        request: Request,
        *,
        needs: Permission,
        then: str,
        work: Callable[[FormData, Operator, AdminServices], Awaitable[str]],
    ) -> Response:
        """Run a form's action: CSRF and role first, then ``work`` (which returns the notice
        to show); a domain refusal becomes a notice and changes nothing."""
        form = await request.form()
        who = operator(request)
        if not csrf_ok(request, form.get("csrf_token")):
            return await refuse_forged(self, request)
        if who is None or not who.can(needs):
            return await render(
                self,
                request,
                "satshare/refused.html",
                status_code=403,
                message=t("Your role ({role}) may not do this.", role=who.role if who else "-"),
            )
        try:
            notice(request, await work(form, who, services_of(request)))
        except DomainError as exc:
            notice(request, t("Not done: {detail}", detail=exc.detail), "danger")
        except FormProblem as exc:
            notice(request, str(exc), "danger")
        return back(request, then)


class FormProblem(Exception):
    """A form field is missing or wrong; the message (translated) says which and how."""


async def record(
    services: AdminServices,
    who: Operator,
    action: str,
    target: str,
    *,
    before: Mapping[str, object] | None = None,
    after: Mapping[str, object] | None = None,
    reason: str = "",
) -> None:
    """An action whose change a domain flow has committed: its own row, right after."""
    await audit_flows.record(
        services.db,
        services.clock,
        channel=Channel.PANEL,
        actor=who.username,
        role=who.role.value,
        action=action,
        target=target,
        before=before,
        after=after,
        reason=reason,
    )


def actor(who: Operator) -> Actor:
    """How the audit log names the operator (the flows write the row with the change)."""
    return Actor(Channel.PANEL, who.username, who.role.value)


def _chosen_subscription(form: FormData) -> int:
    found = _int(form, "subscription_id", 1, 2**62)
    if found is None:
        raise FormProblem(t("Choose a subscription."))
    return found


async def _their_subscription(change: Awaitable[object]) -> None:
    """Run a change to one of the page's user's subscriptions; another user's is refused in
    the operator's language."""
    try:
        await change
    except subscriptions.NotTheirs:
        raise FormProblem(t("That subscription belongs to another user.")) from None


def author(who: Operator) -> str:
    """How the panel signs the records it writes (payouts, ledger entries, terms)."""
    return f"admin:{who.username}"[:64]


# -- dashboard -------------------------------------------------------------------------------


def _day(text: str | None) -> date | None:
    if not text:
        return None
    try:
        parsed = date.fromisoformat(text[:10])
    except ValueError:
        return None
    return parsed if 2000 <= parsed.year <= 9998 else None


async def dashboard_page(panel: Admin, request: Request) -> Response:
    services = services_of(request)
    now = services.clock.now()
    preset = request.query_params.get("period", "30d")
    if preset not in ("today", "7d", "30d", "custom"):
        preset = "30d"
    first = _day(request.query_params.get("start"))
    last = _day(request.query_params.get("end"))
    if preset == "custom" and (first is None or last is None):
        preset = "30d"
    start, end = dashboards.period(preset, now, first, last)
    data = await report_flows.panel_dashboard(services.db, start, end, now)
    chart = charts.daily_bars(
        [d.date for d in data.days],
        [
            (t("Gross"), "#206bc4", [d.figures.gross_sats for d in data.days]),
            (t("Affiliate share"), "#f76707", [d.figures.affiliate_share_sats for d in data.days]),
        ],
    )
    return await render(
        panel,
        request,
        "satshare/dashboard.html",
        data=data,
        preset=preset,
        start_day=start.date().isoformat(),
        end_day=(end - timedelta(days=1)).date().isoformat(),
        chart=chart,
        PayoutStatus=PayoutStatus,
    )


# -- payouts ---------------------------------------------------------------------------------

DESK_STATUSES = (
    PayoutStatus.AWAITING_APPROVAL,
    PayoutStatus.APPROVED,
    PayoutStatus.SENDING,
    PayoutStatus.UNKNOWN,
    PayoutStatus.FAILED,
    PayoutStatus.PAID,
    PayoutStatus.CANCELED,
)


def _payout_facts(p: Payout) -> dict[str, object]:
    return {"status": p.status.value, "amount_sats": p.amount_sats, "proof": p.proof}


class PayoutsDesk(Page):
    name = lazy("Payouts desk")
    icon = "fa-solid fa-money-bill-transfer"

    @expose("/desk/payouts", methods=["GET"], identity="payouts")
    async def desk(self, request: Request) -> Response:
        services = services_of(request)
        wanted = request.query_params.get("status", PayoutStatus.AWAITING_APPROVAL.value)
        status = next((s for s in DESK_STATUSES if s.value == wanted), DESK_STATUSES[0])
        desk = await report_flows.payouts_desk(services.db, status, limit=200)
        return await render(
            self,
            request,
            "satshare/payouts.html",
            rows=desk.rows,
            status=status,
            statuses=DESK_STATUSES,
            counts=desk.counts,
            mask=mask,
            manual=services.payouts.provider is None,
            alert_minutes=services.settings.payouts.unknown_alert_minutes,
        )

    async def _payout_action(self, request: Request, verb: str) -> Response:
        payout_id = _int(request.path_params, "payout_id", 1, 2**62)
        if payout_id is None:
            return await render(
                self,
                request,
                "satshare/refused.html",
                status_code=404,
                message=t("No such payout."),
            )
        status = request.query_params.get("status", "awaiting_approval")[:32]

        async def work(form: FormData, who: Operator, services: AdminServices) -> str:
            ctx = services.payouts
            before = _payout_facts(await flows.get_payout(ctx, payout_id))
            reason = _reason(form)
            if verb == "approve":
                payout = await flows.approve(ctx, payout_id, author(who))
            elif verb == "cancel":
                payout = await flows.cancel(ctx, payout_id, author(who), reason or None)
            elif verb == "mark-paid":
                proof = _text(form, "proof", 128)
                if not proof:
                    raise FormProblem(t("Give the transaction id (txid) or the preimage."))
                fee = _text(form, "network_fee_sats", 20)
                fee_sats = _int(form, "network_fee_sats", 0, 10**12) if fee else None
                if fee and fee_sats is None:
                    raise FormProblem(t("The network fee must be a whole number of sats."))
                payout = await flows.mark_paid(ctx, payout_id, proof, fee_sats, author(who))
            else:  # mark-failed
                if not reason:
                    raise FormProblem(t("Say why: what does the provider show for this payout?"))
                payout = await flows.release_unknown(ctx, payout_id, reason, author(who))
            await record(
                services,
                who,
                f"payout.{verb}",
                f"payout:{payout_id}",
                before=before,
                after=_payout_facts(payout),
                reason=reason,
            )
            return t("Payout {id} is now {status}.", id=payout_id, status=payout.status.value)

        return await self.act(
            request, needs=Permission.MANAGE, then=f"/desk/payouts?status={status}", work=work
        )

    @expose("/desk/payouts/{payout_id}/approve", methods=["POST"], identity="payouts-one-approve")
    async def approve(self, request: Request) -> Response:
        return await self._payout_action(request, "approve")

    @expose("/desk/payouts/{payout_id}/cancel", methods=["POST"], identity="payouts-one-cancel")
    async def cancel(self, request: Request) -> Response:
        return await self._payout_action(request, "cancel")

    @expose(
        "/desk/payouts/{payout_id}/mark-paid", methods=["POST"], identity="payouts-one-mark-paid"
    )
    async def mark_paid(self, request: Request) -> Response:
        return await self._payout_action(request, "mark-paid")

    @expose(
        "/desk/payouts/{payout_id}/mark-failed",
        methods=["POST"],
        identity="payouts-one-mark-failed",
    )
    async def mark_failed(self, request: Request) -> Response:
        return await self._payout_action(request, "mark-failed")

    @expose("/desk/payouts/export", methods=["GET"], identity="payouts-export")
    async def export(self, request: Request) -> Response:
        who = operator(request)
        if who is None or not who.can(Permission.MANAGE):
            return await render(
                self,
                request,
                "satshare/refused.html",
                status_code=403,
                message=t("Your role ({role}) may not do this.", role=who.role if who else "-"),
            )
        services = services_of(request)
        rows = await flows.awaiting_manual_payment(services.payouts)
        if request.query_params.get("format") == "batch":
            return PlainTextResponse(
                export.as_batch(rows),
                headers={"Content-Disposition": 'attachment; filename="payouts-batch.txt"'},
            )
        return PlainTextResponse(
            export.as_csv(rows),
            media_type="text/csv",
            headers={"Content-Disposition": 'attachment; filename="payouts.csv"'},
        )


# -- users -----------------------------------------------------------------------------------


class UsersDesk(Page):
    name = lazy("Users desk")
    icon = "fa-solid fa-users"

    @expose("/desk/users", methods=["GET"], identity="users")
    async def search(self, request: Request) -> Response:
        services = services_of(request)
        query = request.query_params.get("q", "").strip()[:128]
        found = await user_flows.search(services.db, query, limit=50)
        return await render(self, request, "satshare/users.html", users=found, query=query)

    @expose("/desk/users/{user_id}", methods=["GET"], identity="users-one")
    async def detail(self, request: Request) -> Response:
        services = services_of(request)
        user_id = _int(request.path_params, "user_id", 1, 2**62)
        now = services.clock.now()
        hold_days = services.payouts.program.hold_days
        found = (
            await report_flows.user_detail(services.db, user_id, hold_days, now)
            if user_id
            else None
        )
        if found is None:
            return await render(
                self, request, "satshare/refused.html", status_code=404, message=t("No such user.")
            )
        return await render(
            self,
            request,
            "satshare/user.html",
            user=found.user,
            facts=found.facts,
            balance=found.balance,
            suspended=found.suspended,
            custom=found.custom,
            now=now,
            effective=subscriptions.effective_status,
            support_max_days=SUPPORT_MAX_DAYS,
        )

    async def _user_action(self, request: Request, verb: str) -> Response:
        user_id = _int(request.path_params, "user_id", 1, 2**62) or 0
        needs = Permission.SUPPORT if verb in ("extend", "resend") else Permission.MANAGE

        async def work(form: FormData, who: Operator, services: AdminServices) -> str:
            reason = _reason(form)
            now, by = services.clock.now(), actor(who)
            if verb == "resend":
                subscription_id = _chosen_subscription(form)
                await _their_subscription(
                    subscription_flows.resend_access(
                        services.db,
                        services.after_commit,
                        by,
                        user_id=user_id,
                        subscription_id=subscription_id,
                        reason=reason,
                        now=now,
                    )
                )
                return t("The access links are on their way to the user.")
            if not reason:
                raise FormProblem(t("Give a reason: it is kept in the audit log."))
            if verb == "extend":
                subscription_id = _chosen_subscription(form)
                limit = MAX_GRANT_DAYS if who.can(Permission.MANAGE) else SUPPORT_MAX_DAYS
                days = _int(form, "days", 1, limit)
                if days is None:
                    raise FormProblem(t("Give a number of days from 1 to {limit}.", limit=limit))
                await _their_subscription(
                    subscription_flows.extend(
                        services.db,
                        by,
                        user_id=user_id,
                        subscription_id=subscription_id,
                        days=days,
                        reason=reason,
                        now=now,
                    )
                )
                return t("Subscription {id} saved.", id=subscription_id)
            if verb == "cancel":
                subscription_id = _chosen_subscription(form)
                await _their_subscription(
                    subscription_flows.cancel(
                        services.db,
                        by,
                        user_id=user_id,
                        subscription_id=subscription_id,
                        reason=reason,
                        now=now,
                    )
                )
                return t("Subscription {id} saved.", id=subscription_id)
            signed = author(who)
            if verb == "suspend":
                await affiliate_flows.suspend(
                    services.db, user_id, reason=reason, author=signed, now=now, by=by
                )
            elif verb == "reinstate":
                await affiliate_flows.reinstate(
                    services.db, user_id, author=signed, now=now, by=by, reason=reason
                )
            else:  # terms
                text = _text(form, "share_percent", 8)
                percent = _int(form, "share_percent", 0, 100) if text else None
                if text and percent is None:
                    raise FormProblem(t("The share is a whole percent from 0 to 100."))
                await affiliate_flows.set_custom_terms(
                    services.db,
                    user_id,
                    percent * 100 if percent is not None else None,
                    reason=reason,
                    author=signed,
                    now=now,
                    by=by,
                )
            return t("Saved.")

        return await self.act(request, needs=needs, then=f"/desk/users/{user_id}", work=work)

    @expose("/desk/users/{user_id}/extend", methods=["POST"], identity="users-one-extend")
    async def extend(self, request: Request) -> Response:
        return await self._user_action(request, "extend")

    @expose("/desk/users/{user_id}/resend", methods=["POST"], identity="users-one-resend")
    async def resend(self, request: Request) -> Response:
        return await self._user_action(request, "resend")

    @expose("/desk/users/{user_id}/cancel", methods=["POST"], identity="users-one-cancel")
    async def cancel(self, request: Request) -> Response:
        return await self._user_action(request, "cancel")

    @expose("/desk/users/{user_id}/suspend", methods=["POST"], identity="users-one-suspend")
    async def suspend(self, request: Request) -> Response:
        return await self._user_action(request, "suspend")

    @expose("/desk/users/{user_id}/reinstate", methods=["POST"], identity="users-one-reinstate")
    async def reinstate(self, request: Request) -> Response:
        return await self._user_action(request, "reinstate")

    @expose("/desk/users/{user_id}/terms", methods=["POST"], identity="users-one-terms")
    async def terms(self, request: Request) -> Response:
        return await self._user_action(request, "terms")


# -- invoices --------------------------------------------------------------------------------


class InvoicesDesk(Page):
    name = lazy("Payments and refunds")
    icon = "fa-solid fa-file-invoice-dollar"

    @expose("/desk/invoices", methods=["GET"], identity="invoices")
    async def invoices(self, request: Request) -> Response:
        services = services_of(request)
        params = request.query_params
        status = params.get("status", "")
        chosen = next((s for s in InvoiceStatus if s.value == status), None)
        rail = params.get("rail", "")[:16]
        plan = params.get("plan", "")[:64]
        first, last = _day(params.get("start")), _day(params.get("end"))
        since = datetime.combine(first, datetime.min.time(), tzinfo=UTC) if first else None
        until = (
            datetime.combine(last, datetime.min.time(), tzinfo=UTC) + timedelta(days=1)
            if last
            else None
        )
        rows = await payment_flows.search_invoices(
            services.db,
            status=chosen,
            provider=rail or None,
            plan_id=plan or None,
            since=since,
            until=until,
            limit=200,
        )
        every_plan = await plan_flows.list_all(services.db)
        return await render(
            self,
            request,
            "satshare/invoices.html",
            rows=rows,
            status=status,
            rail=rail,
            plan=plan,
            start=first.isoformat() if first else "",
            end=last.isoformat() if last else "",
            statuses=list(InvoiceStatus),
            rails=sorted(services.payments.providers),
            plans=every_plan,
        )

    @expose("/desk/invoices/{invoice_id}/refund", methods=["POST"], identity="invoices-one-refund")
    async def refund(self, request: Request) -> Response:
        invoice_id = str(request.path_params.get("invoice_id", ""))[:40]

        async def work(form: FormData, who: Operator, services: AdminServices) -> str:
            # The API's refund flow: Stars go back through the running bot first; the
            # reversal and this audit row commit together.
            try:
                reversal = await payment_flows.refund(
                    services.payments,
                    invoice_id,
                    note=_text(form, "note", 500) or None,
                    author=author(who),
                    stars=services.stars_refunds(),
                    by=actor(who),
                )
            except NotFound:
                raise FormProblem(t("No such invoice.")) from None
            return t("Invoice {id} refunded (ledger entry {entry}).", id=invoice_id, entry=reversal)

        return await self.act(request, needs=Permission.MANAGE, then="/desk/invoices", work=work)


# -- plans -----------------------------------------------------------------------------------


def _plan_spec(form: FormData, plan_id: str) -> plans.PlanSpec:
    price = _int(form, "price_sats", 1, 2_100_000_000_000_000)
    if price is None:
        raise FormProblem(t("The price must be a whole number of sats, at least 1."))
    days = _int(form, "duration_days", 1, 3650)
    if days is None:
        raise FormProblem(t("The duration must be 1 to 3650 days."))
    title = _text(form, "title", 200)
    if not title:
        raise FormProblem(t("Give the plan a title."))
    channels = []
    for part in _text(form, "channels", 2000).replace(",", " ").split():
        try:
            channels.append(int(part))
        except ValueError:
            raise FormProblem(
                t("Channels are Telegram chat ids such as -1001234567890, separated by spaces.")
            ) from None
    return plans.PlanSpec(
        id=plan_id,
        title=title,
        description=_text(form, "description", 2000),
        price_sats=price,
        duration_days=days,
        channels=tuple(channels),
    )


class PlansDesk(Page):
    name = lazy("Plans")
    icon = "fa-solid fa-tags"

    @expose("/desk/plans", methods=["GET"], identity="plans")
    async def plans(self, request: Request) -> Response:
        services = services_of(request)
        rows = await plan_flows.list_all(services.db)
        return await render(self, request, "satshare/plans.html", rows=rows, PlanSource=PlanSource)

    @expose("/desk/plans/create", methods=["POST"], identity="plans-create")
    async def create(self, request: Request) -> Response:
        async def work(form: FormData, who: Operator, services: AdminServices) -> str:
            plan_id = _text(form, "id", 64).lower()
            spec = _plan_spec(form, plan_id)
            await plan_flows.create_panel_plan(
                services.db, spec, by=actor(who), now=services.clock.now()
            )
            return t("Plan {id} created and on sale.", id=plan_id)

        return await self.act(request, needs=Permission.MANAGE, then="/desk/plans", work=work)

    async def _plan_action(self, request: Request, verb: str) -> Response:
        plan_id = str(request.path_params.get("plan_id", ""))[:64]

        async def work(form: FormData, who: Operator, services: AdminServices) -> str:
            now, by, reason = services.clock.now(), actor(who), _reason(form)
            if verb == "edit":
                spec = _plan_spec(form, plan_id)
                await plan_flows.update_panel_plan(services.db, spec, by=by, reason=reason, now=now)
            else:
                await plan_flows.set_panel_plan_on_sale(
                    services.db, plan_id, verb == "restore", by=by, reason=reason, now=now
                )
            return t("Plan {id} saved.", id=plan_id)

        return await self.act(request, needs=Permission.MANAGE, then="/desk/plans", work=work)

    @expose("/desk/plans/{plan_id}/edit", methods=["POST"], identity="plans-one-edit")
    async def edit(self, request: Request) -> Response:
        return await self._plan_action(request, "edit")

    @expose("/desk/plans/{plan_id}/archive", methods=["POST"], identity="plans-one-archive")
    async def archive(self, request: Request) -> Response:
        return await self._plan_action(request, "archive")

    @expose("/desk/plans/{plan_id}/restore", methods=["POST"], identity="plans-one-restore")
    async def restore(self, request: Request) -> Response:
        return await self._plan_action(request, "restore")


# -- affiliates ------------------------------------------------------------------------------


class AffiliatesDesk(Page):
    name = lazy("Affiliate program")
    icon = "fa-solid fa-handshake"

    @expose("/desk/affiliates", methods=["GET"], identity="affiliates")
    async def program(self, request: Request) -> Response:
        services = services_of(request)
        overview = await report_flows.program_overview(services.db, services.clock.now(), top=50)
        return await render(
            self,
            request,
            "satshare/affiliates.html",
            program=services.payouts.program,
            settings=services.settings,
            leaderboard=overview.leaderboard,
            acceptances=overview.acceptances,
        )


# -- ledger ----------------------------------------------------------------------------------


class LedgerDesk(Page):
    name = lazy("Ledger")
    icon = "fa-solid fa-book"

    async def _page(self, request: Request, report: Any = None) -> Response:
        services = services_of(request)
        before = _int(request.query_params, "before", 1, 2**62)
        found = await ledger_flows.page(services.db, limit=50, before_id=before)
        return await render(
            self,
            request,
            "satshare/ledger.html",
            entries=found.entries,
            head_seq=found.head_seq,
            head_hash=found.head_hash,
            count=found.count,
            report=report,
        )

    @expose("/desk/ledger", methods=["GET"], identity="ledger")
    async def ledger(self, request: Request) -> Response:
        return await self._page(request)

    @expose("/desk/ledger/verify", methods=["POST"], identity="ledger-verify")
    async def verify(self, request: Request) -> Response:
        form = await request.form()
        if not csrf_ok(request, form.get("csrf_token")):
            return await refuse_forged(self, request)
        services = services_of(request)
        await services.seal_ledger()
        report = await ledger_flows.verify(services.db)
        return await self._page(request, report)


# -- API keys --------------------------------------------------------------------------------


class ApiKeysDesk(Page):
    name = lazy("API keys")
    icon = "fa-solid fa-key"
    needs = Permission.OWN

    @expose("/desk/api-keys", methods=["GET"], identity="api-keys")
    async def keys(self, request: Request) -> Response:
        services = services_of(request)
        rows = await apikey_flows.list_keys(services.db)
        shown = request.session.pop("new_api_key", None)
        return await render(
            self, request, "satshare/api_keys.html", rows=rows, scopes=SCOPES, new_key=shown
        )

    @expose("/desk/api-keys/create", methods=["POST"], identity="api-keys-create")
    async def create(self, request: Request) -> Response:
        async def work(form: FormData, who: Operator, services: AdminServices) -> str:
            name = _text(form, "name", 100)
            chosen = [s for s in SCOPES if form.get(f"scope_{s}") == "on"]
            if not name:
                raise FormProblem(t("Give the key a name (what will use it)."))
            if not chosen:
                raise FormProblem(t("Choose at least one scope."))
            issued = await apikey_flows.create(
                services.db, name, tuple(chosen), services.clock.now()
            )
            await record(
                services,
                who,
                "api_key.create",
                f"api-key:{issued.key.id}",
                after={
                    "name": name,
                    "scopes": ",".join(chosen),
                    "prefix": issued.key.display_prefix,
                },
            )
            # Shown once, on the next page; the session is signed, HttpOnly and short-lived.
            request.session["new_api_key"] = issued.plaintext
            return t("API key {name} created.", name=name)

        return await self.act(request, needs=Permission.OWN, then="/desk/api-keys", work=work)

    @expose("/desk/api-keys/{key_id}/revoke", methods=["POST"], identity="api-keys-one-revoke")
    async def revoke(self, request: Request) -> Response:
        key_id = _int(request.path_params, "key_id", 1, 2**62) or 0

        async def work(form: FormData, who: Operator, services: AdminServices) -> str:
            key = await apikey_flows.revoke(services.db, str(key_id), services.clock.now())
            await record(
                services,
                who,
                "api_key.revoke",
                f"api-key:{key_id}",
                before={"revoked": False},
                after={"revoked": True, "name": key.name},
                reason=_reason(form),
            )
            return t("API key {id} revoked.", id=key_id)

        return await self.act(request, needs=Permission.OWN, then="/desk/api-keys", work=work)


# -- admin users -----------------------------------------------------------------------------


class AdminUsersDesk(Page):
    name = lazy("Admin users")
    icon = "fa-solid fa-user-shield"
    needs = Permission.OWN

    @expose("/desk/admins", methods=["GET"], identity="admins")
    async def admins(self, request: Request) -> Response:
        services = services_of(request)
        return await render(
            self,
            request,
            "satshare/admins.html",
            rows=await staff.list_users(services.db),
            roles=list(Role),
            now=services.clock.now(),
        )

    @expose("/desk/admins/create", methods=["POST"], identity="admins-create")
    async def create(self, request: Request) -> Response:
        async def work(form: FormData, who: Operator, services: AdminServices) -> str:
            role = _text(form, "role", 16)
            if role not in {r.value for r in Role}:
                raise FormProblem(t("Choose a role."))
            user = await staff.create_user(
                services.db,
                services.clock,
                _text(form, "username", 64),
                Role(role),
                str(form.get("password") or ""),
                by=actor(who),
            )
            return t("Admin user {name} created.", name=user.username)

        return await self.act(request, needs=Permission.OWN, then="/desk/admins", work=work)

    async def _account_action(self, request: Request, verb: str) -> Response:
        username = str(request.path_params.get("username", ""))[:64]

        async def work(form: FormData, who: Operator, services: AdminServices) -> str:
            if verb == "disable":
                if username == who.username:
                    raise FormProblem(t("You cannot disable your own account."))
                await staff.disable(
                    services.db, services.clock, username, by=actor(who), reason=_reason(form)
                )
            else:
                await staff.set_password(
                    services.db,
                    services.clock,
                    username,
                    str(form.get("password") or ""),
                    by=actor(who),
                    reason=_reason(form),
                )
            return t("Saved.")

        return await self.act(request, needs=Permission.OWN, then="/desk/admins", work=work)

    @expose("/desk/admins/{username}/disable", methods=["POST"], identity="admins-one-disable")
    async def disable(self, request: Request) -> Response:
        return await self._account_action(request, "disable")

    @expose("/desk/admins/{username}/password", methods=["POST"], identity="admins-one-password")
    async def password(self, request: Request) -> Response:
        return await self._account_action(request, "set_password")


# -- audit log -------------------------------------------------------------------------------


class AuditDesk(Page):
    name = lazy("Audit log")
    icon = "fa-solid fa-clipboard-list"

    async def _events(self, request: Request, limit: int) -> tuple[list[Any], dict[str, str]]:
        params = request.query_params
        text = params.get("q", "").strip()[:128]
        action = params.get("action", "").strip()[:64]
        first, last = _day(params.get("start")), _day(params.get("end"))
        services = services_of(request)
        rows = await audit_flows.search(
            services.db,
            text=text,
            action=action,
            since=datetime.combine(first, datetime.min.time(), tzinfo=UTC) if first else None,
            until=(
                datetime.combine(last, datetime.min.time(), tzinfo=UTC) + timedelta(days=1)
                if last
                else None
            ),
            limit=limit,
        )
        chosen = {
            "q": text,
            "action": action,
            "start": first.isoformat() if first else "",
            "end": last.isoformat() if last else "",
        }
        return list(rows), chosen

    @expose("/desk/audit", methods=["GET"], identity="audit")
    async def log(self, request: Request) -> Response:
        rows, chosen = await self._events(request, 200)
        return await render(self, request, "satshare/audit.html", rows=rows, chosen=chosen)

    @expose("/desk/audit/export", methods=["GET"], identity="audit-export")
    async def export(self, request: Request) -> Response:
        rows, _ = await self._events(request, 100_000)
        return PlainTextResponse(
            audit.as_csv(rows),
            media_type="text/csv",
            headers={"Content-Disposition": 'attachment; filename="audit-log.csv"'},
        )


PAGES: tuple[type[Page], ...] = (
    PayoutsDesk,
    UsersDesk,
    InvoicesDesk,
    PlansDesk,
    AffiliatesDesk,
    LedgerDesk,
    ApiKeysDesk,
    AdminUsersDesk,
    AuditDesk,
)
