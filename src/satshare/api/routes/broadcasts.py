"""Broadcasts: compose (with the recipient count), preview, send or schedule, cancel, watch.

Delivery runs in the bot's ``send_broadcasts`` job (``satshare serve``, or a ``satshare
worker`` in ``jobs.mode: workers``); these routes only change the broadcast's state, and
``/send`` wakes that job after its commit."""

from __future__ import annotations

from fastapi import APIRouter

from satshare.aftercommit import Produced
from satshare.api.deps import AdminKey, AfterCommitDep, ClockDep, DbDep, IdPath, Page, SettingsDep
from satshare.api.problems import openapi_responses
from satshare.api.routing import StrictJSONRoute
from satshare.broadcasts import flows
from satshare.broadcasts.compose import Button, Content
from satshare.broadcasts.models import Broadcast
from satshare.broadcasts.repository import Progress
from satshare.broadcasts.schemas import (
    BroadcastCreate,
    BroadcastCreated,
    BroadcastOut,
    BroadcastPreviewQueued,
    BroadcastProgress,
)
from satshare.broadcasts.segments import Segment, SegmentKind
from satshare.errors import InvalidRequest
from satshare.schemas import PageOf

router = APIRouter(route_class=StrictJSONRoute, prefix="/api/v1/broadcasts", tags=["broadcasts"])


def broadcast_out(b: Broadcast, progress: Progress) -> BroadcastOut:
    return BroadcastOut(
        broadcast_id=b.id,
        status=b.status,
        text=b.text,
        text_ru=b.text_ru,
        photo=b.photo,
        buttons=b.buttons,
        segment=b.segment,
        send_at=b.send_at,
        recipients=b.recipients,
        progress=BroadcastProgress(
            pending=progress.open,
            sent=progress.sent,
            blocked=progress.blocked,
            failed=progress.failed,
        ),
        created_by=b.created_by,
        created_at=b.created_at,
        started_at=b.started_at,
        finished_at=b.finished_at,
    )


@router.post(
    "",
    status_code=201,
    response_model=BroadcastCreated,
    summary="Compose a broadcast",
    description="Saved as a draft with the number of users its segment holds now; nothing is "
    "sent until `/send`. The recipients themselves are chosen when sending starts. Honours "
    "`Idempotency-Key`.",
    responses=openapi_responses(400, 401, 403, 422),
)
async def create_broadcast(
    db: DbDep, clock: ClockDep, key: AdminKey, body: BroadcastCreate
) -> BroadcastCreated:
    content = Content(
        text=body.text,
        text_ru=body.text_ru,
        photo=body.photo,
        buttons=tuple(Button(b.text, b.url, b.text_ru) for b in body.buttons),
    )
    segment = Segment(
        kind=SegmentKind(body.segment.kind),
        plan_id=body.segment.plan_id,
        days=body.segment.days,
        language=body.segment.language,
    )
    now = clock.now()
    broadcast = await flows.create(
        db, content, segment, send_at=body.send_at, author=key.author, now=now
    )
    return BroadcastCreated(broadcast_id=broadcast.id, recipients=broadcast.recipients)


@router.get(
    "",
    response_model=PageOf[BroadcastOut],
    summary="List broadcasts, newest first",
    responses=openapi_responses(400, 401, 403, 422),
)
async def list_broadcasts(db: DbDep, _: AdminKey, page: Page) -> PageOf[BroadcastOut]:
    rows = await flows.listing(db, limit=page.fetch, before_id=page.before_id)
    items = [broadcast_out(b, progress) for b, progress in rows[: page.limit]]
    return page.of(len(rows), items, lambda item: item.broadcast_id)


@router.get(
    "/{broadcast_id}",
    response_model=BroadcastOut,
    summary="A broadcast and its progress",
    description="`progress` counts the recipients: `pending` (not yet tried, or waiting out a "
    "429), `sent`, `blocked` (they blocked the bot), `failed`.",
    responses=openapi_responses(401, 403, 404, 422),
)
async def get_broadcast(db: DbDep, _: AdminKey, broadcast_id: IdPath) -> BroadcastOut:
    return broadcast_out(*await flows.show(db, broadcast_id))


@router.post(
    "/{broadcast_id}/send",
    response_model=BroadcastOut,
    summary="Send a broadcast (or schedule it for its send_at)",
    description="A draft starts sending now (the segment's members at this moment become its "
    "recipients; the running service's sender starts at once), or is scheduled when its "
    "`send_at` is still ahead. Sending again changes nothing; a canceled broadcast is 409.",
    responses=openapi_responses(401, 403, 404, 409, 422),
)
async def send_broadcast(
    db: DbDep, clock: ClockDep, after_commit: AfterCommitDep, _: AdminKey, broadcast_id: IdPath
) -> BroadcastOut:
    return broadcast_out(*await flows.request_send(db, broadcast_id, clock.now(), after_commit))


@router.post(
    "/{broadcast_id}/cancel",
    response_model=BroadcastOut,
    summary="Cancel a broadcast",
    description="Nobody still pending gets it; messages already handed to Telegram stay sent. "
    "Canceling a broadcast sent to everyone is 409.",
    responses=openapi_responses(401, 403, 404, 409, 422),
)
async def cancel_broadcast(
    db: DbDep, clock: ClockDep, _: AdminKey, broadcast_id: IdPath
) -> BroadcastOut:
    return broadcast_out(*await flows.cancel(db, broadcast_id, clock.now()))


@router.post(
    "/{broadcast_id}/preview",
    status_code=202,
    response_model=BroadcastPreviewQueued,
    summary="Preview a broadcast in the admin chats",
    description="Sends the broadcast, as its recipients will see it (each language it has), "
    "to every chat in `telegram.admin_chat_ids`. Needs at least one admin chat.",
    responses=openapi_responses(401, 403, 404, 422),
)
async def preview_broadcast(
    db: DbDep,
    clock: ClockDep,
    settings: SettingsDep,
    after_commit: AfterCommitDep,
    _: AdminKey,
    broadcast_id: IdPath,
) -> BroadcastPreviewQueued:
    chats = settings.telegram.admin_chat_ids
    if not chats:
        raise InvalidRequest(
            "no admin chat to preview in: set telegram.admin_chat_ids to your Telegram user id"
        )
    languages = await flows.queue_preview(db, broadcast_id, clock.now())
    after_commit.committed(Produced(outbox=True))
    return BroadcastPreviewQueued(chats=list(chats), languages=languages)
