"""Broadcasts in the panel (#13): the composer (Telegram HTML in English and optionally
Russian, a photo, URL buttons), the segment picker with the recipient count before
anything is sent, a preview in the admin chats, send now or at a time, cancel, and the
list with a live progress bar (the page polls a JSON endpoint; no build step, no CDN).

Every change calls ``broadcasts.flows`` with the operator as the audit ``Actor``, so the
change and its audit row commit together. Reading is for every role; composing, sending,
previewing and canceling need the ``manage`` permission. Delivery itself is the bot's
``send_broadcasts`` job, as for a broadcast sent through the API or the CLI.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqladmin import expose
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from satshare.admin.auth import Operator, Permission
from satshare.admin.forms import Refill, field, moment, refilling
from satshare.admin.pages import FormProblem, Page, _int, actor, render
from satshare.admin.services import AdminServices, services_of
from satshare.admin.texts import N_, lazy, t
from satshare.aftercommit import Produced
from satshare.broadcasts import flows
from satshare.broadcasts.compose import MAX_BUTTONS, Button, Content
from satshare.broadcasts.models import Broadcast, BroadcastStatus
from satshare.broadcasts.repository import Progress
from satshare.broadcasts.segments import LANGUAGES, MAX_DAYS, TAKES, Segment, SegmentKind
from satshare.errors import DomainError, NotFound
from satshare.plans import flows as plan_flows

PAGE_SIZE = 30
#: The progress endpoint answers for at most this many broadcasts at once.
MAX_LIVE = 50
#: States whose progress can still move: the page keeps polling them.
LIVE = (BroadcastStatus.SCHEDULED, BroadcastStatus.SENDING)

SEGMENT_LABELS: dict[SegmentKind, str] = {
    SegmentKind.ALL: N_("Everyone who started the bot"),
    SegmentKind.ACTIVE: N_("Active subscribers"),
    SegmentKind.EXPIRING: N_("Subscriptions ending soon"),
    SegmentKind.EXPIRED: N_("Expired and not renewed"),
    SegmentKind.NEVER_PAID: N_("Never paid"),
    SegmentKind.LANGUAGE: N_("By language"),
    SegmentKind.AFFILIATES: N_("Affiliates with at least one referral"),
}
STATUS_LABELS: dict[BroadcastStatus, str] = {
    BroadcastStatus.DRAFT: N_("draft"),
    BroadcastStatus.SCHEDULED: N_("scheduled"),
    BroadcastStatus.SENDING: N_("sending"),
    BroadcastStatus.DONE: N_("done"),
    BroadcastStatus.CANCELED: N_("canceled"),
}


def describe(stored: Mapping[str, object]) -> str:
    """A broadcast's segment in the operator's language."""
    try:
        segment = Segment.from_json(dict(stored))
    except (DomainError, KeyError, ValueError):
        return str(stored)
    parts = [t(SEGMENT_LABELS[segment.kind])]
    if segment.plan_id is not None:
        parts.append(t("plan {plan}", plan=segment.plan_id))
    if segment.days is not None:
        parts.append(t("within {days} days", days=segment.days))
    if segment.language is not None:
        parts.append(t("language {language}", language=segment.language))
    return ", ".join(parts)


def _segment(values: Mapping[str, str]) -> Segment:
    """The segment the picker describes; fields its kind does not take are ignored (the form
    hides them, but a browser without scripts still sends them)."""
    kind = next((k for k in SegmentKind if k.value == values.get("kind", "")), None)
    if kind is None:
        raise FormProblem(t("Choose who gets the message."))
    takes = TAKES[kind]
    plan_id = values.get("plan_id", "").strip()[:64] if "plan_id" in takes else ""
    language = values.get("language", "").strip()[:8] if "language" in takes else ""
    days_text = values.get("days", "").strip()[:10] if "days" in takes else ""
    days = None
    if days_text or kind == SegmentKind.EXPIRING:
        if (
            not days_text.isascii()
            or not days_text.isdigit()
            or not 1 <= int(days_text) <= MAX_DAYS
        ):
            raise FormProblem(t("Give the number of days, from 1 to {most}.", most=MAX_DAYS))
        days = int(days_text)
    if kind == SegmentKind.LANGUAGE and not language:
        raise FormProblem(t("Choose the language."))
    if language and language not in LANGUAGES:
        raise FormProblem(t("Choose the language."))
    return Segment(kind=kind, plan_id=plan_id or None, days=days, language=language or None)


def _content(form: FormData) -> Content:
    text = field(form, "text", 20_000)
    if not text:
        raise FormProblem(t("Write the message."))
    buttons = []
    for index in range(1, MAX_BUTTONS + 1):
        label = field(form, f"button_text_{index}", 64)
        url = field(form, f"button_url_{index}", 2048)
        label_ru = field(form, f"button_text_ru_{index}", 64)
        if not (label or url or label_ru):
            continue
        if not label or not url:
            raise FormProblem(t("Button {n}: give both its text and its URL.", n=index))
        buttons.append(Button(label, url, label_ru or None))
    return Content(
        text=text,
        text_ru=field(form, "text_ru", 20_000) or None,
        photo=field(form, "photo", 2048) or None,
        buttons=tuple(buttons),
    )


def _live(broadcast: Broadcast, progress: Progress) -> dict[str, Any]:
    return {
        "status": broadcast.status.value,
        "status_label": t(STATUS_LABELS[broadcast.status]),
        "live": broadcast.status in LIVE,
        "recipients": broadcast.recipients,
        "sent": progress.sent,
        "blocked": progress.blocked,
        "failed": progress.failed,
        "pending": progress.open,
    }


class BroadcastsDesk(Page):
    name = lazy("Broadcasts")
    icon = "fa-solid fa-bullhorn"

    @expose("/desk/broadcasts", methods=["GET"], identity="broadcasts")
    async def broadcasts(self, request: Request) -> Response:
        return await self._list(request)

    async def _list(
        self, request: Request, refill: Refill | None = None, status_code: int = 200
    ) -> Response:
        services = services_of(request)
        before = _int(request.query_params, "before", 1, 2**62)
        rows = await flows.listing(services.db, limit=PAGE_SIZE + 1, before_id=before)
        shown = rows[:PAGE_SIZE]
        return await render(
            self,
            request,
            "satshare/broadcasts.html",
            status_code=status_code,
            rows=[(b, p, _live(b, p)) for b, p in shown],
            more=len(rows) > PAGE_SIZE,
            older=shown[-1][0].id if shown else None,
            refill=refill,
            kinds=list(SegmentKind),
            labels=SEGMENT_LABELS,
            statuses=STATUS_LABELS,
            takes={k.value: " ".join(sorted(TAKES[k])) for k in SegmentKind},
            plans=await plan_flows.list_all(services.db),
            languages=LANGUAGES,
            max_buttons=MAX_BUTTONS,
            describe=describe,
            now=services.clock.now(),
            can_preview=bool(services.settings.telegram.admin_chat_ids),
        )

    @expose("/desk/broadcasts-count", methods=["GET"], identity="broadcasts-count")
    async def count(self, request: Request) -> Response:
        """How many users the picked segment holds now (the composer asks as it changes)."""
        services = services_of(request)
        try:
            segment = _segment(request.query_params)
            recipients = await flows.count(services.db, segment, services.clock.now())
        except FormProblem as exc:
            return JSONResponse({"problem": str(exc)}, status_code=422)
        except DomainError as exc:
            return JSONResponse(
                {"problem": t("Not done: {detail}", detail=exc.detail)}, status_code=422
            )
        return JSONResponse(
            {
                "recipients": recipients,
                "text": t("This segment holds {count} users now.", count=recipients),
            }
        )

    @expose("/desk/broadcasts-progress", methods=["GET"], identity="broadcasts-progress")
    async def progress(self, request: Request) -> Response:
        """Each asked-for broadcast's state and counts, for the live progress bars."""
        services = services_of(request)
        wanted = request.query_params.get("ids", "")[:1000].split(",")
        ids = [int(i) for i in wanted if i.isascii() and i.isdigit() and 0 < int(i) < 2**62]
        found: dict[str, Any] = {}
        for broadcast_id in dict.fromkeys(ids[:MAX_LIVE]):
            try:
                broadcast, progress = await flows.show(services.db, broadcast_id)
            except NotFound:
                continue
            found[str(broadcast_id)] = _live(broadcast, progress)
        return JSONResponse(found, headers={"Cache-Control": "no-store"})

    @expose("/desk/broadcasts/create", methods=["POST"], identity="broadcasts-create")
    async def create(self, request: Request) -> Response:
        async def work(form: FormData, who: Operator, services: AdminServices) -> str:
            values = {k: v for k, v in form.items() if isinstance(v, str)}
            segment = _segment(values)
            content = _content(form)
            send_at = moment(form, "send_at", t("Send at"))
            broadcast = await flows.create(
                services.db,
                content,
                segment,
                send_at=send_at,
                author=f"admin:{who.username}"[:200],
                now=services.clock.now(),
                by=actor(who),
            )
            return t(
                "Draft {id} saved for {count} recipients. Check it, then send it.",
                id=broadcast.id,
                count=broadcast.recipients,
            )

        try:
            return await self.act(
                request, needs=Permission.MANAGE, then="/desk/broadcasts", work=refilling(work)
            )
        except Refill as refused:
            return await self._list(request, refused, status_code=422)

    async def _action(self, request: Request, verb: str) -> Response:
        broadcast_id = _int(request.path_params, "broadcast_id", 1, 2**62) or 0

        async def work(form: FormData, who: Operator, services: AdminServices) -> str:
            now, by = services.clock.now(), actor(who)
            if verb == "preview":
                if not services.settings.telegram.admin_chat_ids:
                    raise FormProblem(
                        t(
                            "No admin chat to preview in: set telegram.admin_chat_ids in "
                            "satshare.yaml to your Telegram user id."
                        )
                    )
                languages = await flows.queue_preview(services.db, broadcast_id, now, by=by)
                services.after_commit.committed(Produced(outbox=True))  # wake the sender
                return t(
                    "Preview of broadcast {id} sent to the admin chats ({languages}).",
                    id=broadcast_id,
                    languages=", ".join(languages),
                )
            if verb == "send":
                broadcast, _ = await flows.request_send(
                    services.db, broadcast_id, now, services.after_commit, by=by
                )
            else:
                broadcast, _ = await flows.cancel(services.db, broadcast_id, now, by=by)
            return t(
                "Broadcast {id} is now {status}.",
                id=broadcast_id,
                status=t(STATUS_LABELS[broadcast.status]),
            )

        return await self.act(request, needs=Permission.MANAGE, then="/desk/broadcasts", work=work)

    @expose("/desk/broadcasts/{broadcast_id}/send", methods=["POST"], identity="broadcasts-send")
    async def send(self, request: Request) -> Response:
        return await self._action(request, "send")

    @expose(
        "/desk/broadcasts/{broadcast_id}/cancel", methods=["POST"], identity="broadcasts-cancel"
    )
    async def cancel(self, request: Request) -> Response:
        return await self._action(request, "cancel")

    @expose(
        "/desk/broadcasts/{broadcast_id}/preview", methods=["POST"], identity="broadcasts-preview"
    )
    async def preview(self, request: Request) -> Response:
        return await self._action(request, "preview")


PAGES: tuple[type[Page], ...] = (BroadcastsDesk,)
