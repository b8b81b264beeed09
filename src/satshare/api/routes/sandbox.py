"""/sandbox: a Telegram-like chat page over the Bot API emulator (sandbox mode only).

A newcomer plays one or more Telegram users: talks to the bot, presses its buttons, follows
invite links into the channels, and watches balances move. Everything goes through the
emulator exactly as Telegram would deliver it; the page only reads what the bot sent.

The links the emulated Telegram makes (invite links, Stars invoice links) lead to
``/sandbox/link/<code>``: a page that shows what Telegram would (the channel and "Request to
join", or the Stars invoice and "Pay"), acting as the sandbox user who opened it.
"""

from __future__ import annotations

import mimetypes
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field

from satshare.access import flows as access_flows
from satshare.api.deps import ClockDep, DbDep, PayoutsDep, SandboxDep, SettingsDep
from satshare.api.pages import templates
from satshare.api.ports import ChatMessage, SandboxChat, SandboxRefused
from satshare.api.routing import StrictJSONRoute
from satshare.clock import Clock
from satshare.db import Database
from satshare.errors import InvalidRequest, NotFound
from satshare.i18n import format_number
from satshare.users import flows as user_flows
from satshare.users.models import User

router = APIRouter(
    route_class=StrictJSONRoute, prefix="/sandbox", tags=["sandbox"], include_in_schema=False
)


async def _chat(sandbox: SandboxDep) -> SandboxChat:
    if sandbox is None or sandbox.chat is None:
        raise NotFound("the sandbox chat exists only when no telegram.token is configured")
    return sandbox.chat


#: The Bot API emulator, played by this page (404 unless in sandbox mode without a token).
ChatDep = Annotated[SandboxChat, Depends(_chat)]


class NewUser(BaseModel):
    name: str = Field(min_length=1, max_length=32)
    language: str = Field("en", pattern="^(en|ru)$")
    invited_by: int | None = Field(None, description="Telegram id of the user whose link to use.")
    start: str | None = Field(
        None,
        pattern="^[A-Za-z0-9_-]{1,64}$",
        description="The start parameter of a bot link the user opened (t.me/<bot>?start=…).",
    )
    admin: bool = Field(
        False, description="Also an admin chat: sale notices, payout approvals, /report."
    )


class Said(BaseModel):
    text: str = Field(min_length=1, max_length=4096)


class Pressed(BaseModel):
    message_id: int
    data: str = Field(min_length=1, max_length=64)


class Joined(BaseModel):
    link: str = Field(min_length=1, max_length=300)


class Paying(BaseModel):
    """Pay on a Stars invoice: a link the bot made, or an invoice message in the chat."""

    link: str | None = Field(None, min_length=1, max_length=300)
    message_id: int | None = None


@router.get("", response_class=HTMLResponse)
async def page(chat: ChatDep, request: Request) -> Response:
    return templates().TemplateResponse(request, "sandbox.html", {"bot": chat.bot_username})


#: What following an invite link did, as the sandbox pages say it.
JOIN_RESULTS = {
    "requested": "Join request sent: the bot decides.",
    "joined": "Joined.",
    "already_member": "Already a member.",
    "banned": "Banned from this chat.",
    "expired": "This link has expired.",
    "limit_reached": "This link was already used.",
    "invalid": "This link is no longer valid.",
}


@router.get("/link/{code}", response_class=HTMLResponse)
async def link_page(
    chat: ChatDep,
    request: Request,
    code: str,
    as_user: Annotated[int | None, Query(alias="as")] = None,
) -> Response:
    """What Telegram shows for a link it made, to the sandbox user ``?as=`` (the chat page
    adds it; without it the page asks who opens the link)."""
    preview = chat.link(code)
    user = chat.user(as_user) if as_user is not None else None
    status = None
    if preview is not None and preview.chat_id is not None and user is not None:
        room = next((r for r in chat.chats() if r.id == preview.chat_id), None)
        status = room.members.get(user.id, "left") if room is not None else "left"
        if chat.join_pending(user.id, preview.chat_id):
            status = "requested"
    return templates().TemplateResponse(
        request,
        "sandbox_link.html",
        {
            "bot": chat.bot_username,
            "preview": preview,
            "user": user,
            "users": list(chat.users()),
            "status": status,
            "results": JOIN_RESULTS,
            "n": lambda value: format_number("en", value),  # the sandbox pages are English
        },
        status_code=200 if preview is not None else 404,
    )


def _message(message: ChatMessage) -> dict[str, Any]:
    text = message.text if message.text is not None else message.caption
    if message.successful_payment is not None:  # Telegram shows a service line for it
        text = f"You paid {format_number('en', message.successful_payment['total_amount'])} Stars"
    return {
        "id": message.message_id,
        "from_bot": message.from_bot,
        "date": message.date,
        "text": text,
        "html": message.parse_mode == "HTML",
        "photo": message.photo_bytes is not None,
        "document": message.document_name if message.document_bytes is not None else None,
        "invoice": {k: message.invoice[k] for k in ("title", "description", "total_amount")}
        if message.invoice
        else None,
        "buttons": [
            [
                {k: button[k] for k in ("text", "callback_data", "url") if k in button}
                for button in row
            ]
            for row in (message.reply_markup or {}).get("inline_keyboard") or []
        ],
    }


@router.get("/api/users")
async def users(chat: ChatDep, settings: SettingsDep) -> list[dict[str, Any]]:
    admins = settings.telegram.admin_chat_ids
    return [
        {
            "id": u.id,
            "name": u.first_name,
            "username": u.username,
            "language": u.language_code,
            "admin": u.id in admins,
        }
        for u in chat.users()
    ]


@router.post("/api/users")
async def new_user(
    chat: ChatDep, db: DbDep, settings: SettingsDep, body: NewUser
) -> dict[str, Any]:
    number = len(list(chat.users())) + 1
    username = "".join(c for c in body.name.lower() if c.isalnum() or c == "_")[:20] or "user"
    user = chat.add_user(
        first_name=body.name, username=f"{username}{number}", language_code=body.language
    )
    if body.admin:
        # Sandbox only: the owner's admin chat, so /report and payout approvals can be tried.
        # The bot reads the same settings object, so it sees the new admin chat at once.
        settings.telegram.admin_chat_ids.append(user.id)
    start = f"/start {body.start}" if body.start else "/start"
    if body.invited_by is not None:
        inviter = await user_flows.by_external_id(db, "telegram", str(body.invited_by))
        if inviter is None:
            raise InvalidRequest("the inviting user has not started the bot yet")
        start = f"/start ref_{inviter.referral_code}"
    chat.user_sends(user.id, start)
    return {"id": user.id, "name": user.first_name, "username": user.username}


@router.get("/api/chat/{telegram_id}")
async def chat_of(
    chat: ChatDep, db: DbDep, clock: ClockDep, payouts: PayoutsDep, telegram_id: int
) -> dict[str, Any]:
    if chat.user(telegram_id) is None:
        raise NotFound(f"no sandbox user {telegram_id}")
    messages = [_message(m) for m in chat.messages(telegram_id)]
    summary = await _summary(chat, db, clock, payouts.program.hold_days, telegram_id)
    return {"messages": messages, "summary": summary}


async def _summary(
    chat: SandboxChat, db: Database, clock: Clock, hold_days: int, telegram_id: int
) -> dict[str, Any]:
    now = clock.now()
    member = await access_flows.member_summary(db, "telegram", str(telegram_id), hold_days, now)
    if member is None:
        return {"registered": False}
    user, earnings, active, chats = member.user, member.earnings, member.subscriptions, member.chats
    registered, paying = member.referrals.registered, member.referrals.paying
    referrer = await user_flows.get(db, user.referrer_id) if user.referrer_id else None
    channels = [
        {
            "id": room.id,
            "title": room.title,
            # A join request waiting for the bot shows as "requested", as Telegram does.
            "status": "requested"
            if chat.join_pending(telegram_id, room.id)
            else room.members.get(telegram_id, "left"),
        }
        for room in chat.chats()
        if room.type != "private"
    ]
    return {
        "registered": True,
        "user_id": user.id,
        "referral_code": user.referral_code,
        "referrer_id": user.referrer_id,
        "referrer": _shown_name(chat, referrer) if referrer is not None else None,
        "balance_sats": earnings.balance_sats,
        "earned_sats": earnings.total_earned_sats,
        "referrals": {"registered": registered, "paying": paying},
        "subscriptions": [
            {"plan": s.plan_id, "ends_at": s.ends_at.isoformat() if s.ends_at else None}
            for s in active
        ],
        "entitled_chats": sorted(chats),
        "channels": channels,
    }


def _shown_name(chat: SandboxChat, user: User) -> str:
    """How the page names a SatShare user: their sandbox name, else @username or #id."""
    if user.platform == "telegram" and user.external_id and user.external_id.isdigit():
        account = chat.user(int(user.external_id))
        if account is not None:
            return f"{account.first_name} (@{account.username})"
    return f"@{user.username}" if user.username else f"#{user.id}"


@router.post("/api/chat/{telegram_id}/send")
async def send(chat: ChatDep, telegram_id: int, body: Said) -> dict[str, Any]:
    try:
        return {"update_id": chat.user_sends(telegram_id, body.text)}
    except SandboxRefused as exc:
        raise InvalidRequest(str(exc)) from None


@router.post("/api/chat/{telegram_id}/press")
async def press(chat: ChatDep, telegram_id: int, body: Pressed) -> dict[str, Any]:
    try:
        return {"update_id": chat.user_presses(telegram_id, body.message_id, body.data)}
    except SandboxRefused as exc:
        raise InvalidRequest(str(exc)) from None


@router.get("/api/chat/{telegram_id}/answer/{update_id}")
async def press_answer(chat: ChatDep, telegram_id: int, update_id: int) -> dict[str, Any]:
    """How the bot answered a button press (answerCallbackQuery): the page shows the text as
    Telegram does, a pop-up for ``show_alert``, else a short notice."""
    answer = chat.press_answer(update_id)
    return {"answered": answer.answered, "text": answer.text, "alert": answer.alert}


@router.post("/api/chat/{telegram_id}/join")
async def join(chat: ChatDep, telegram_id: int, body: Joined) -> dict[str, Any]:
    try:
        return {"result": chat.user_joins(telegram_id, body.link)}
    except SandboxRefused as exc:
        raise InvalidRequest(str(exc)) from None


@router.post("/api/chat/{telegram_id}/pay")
async def pay_stars(chat: ChatDep, telegram_id: int, body: Paying) -> dict[str, Any]:
    """The user presses Pay on a Stars invoice; the bot answers the pre-checkout query."""
    if (body.link is None) == (body.message_id is None):
        raise InvalidRequest("give the invoice's link or its message_id", field="link")
    try:
        paid = await chat.user_pays(telegram_id, link=body.link, message_id=body.message_id)
    except SandboxRefused as exc:
        raise InvalidRequest(str(exc)) from None
    return {"status": paid.status, "error": paid.error}


@router.get("/api/photo/{telegram_id}/{message_id}")
async def photo(chat: ChatDep, telegram_id: int, message_id: int) -> Response:
    for message in chat.messages(telegram_id):
        if message.message_id == message_id and message.photo_bytes:
            return Response(message.photo_bytes, media_type="image/png")
    raise NotFound("no such photo")


@router.get("/api/document/{telegram_id}/{message_id}")
async def document(chat: ChatDep, telegram_id: int, message_id: int) -> Response:
    """A file the bot sent (the /report XLSX), downloaded under its own name."""
    for message in chat.messages(telegram_id):
        if message.message_id == message_id and message.document_bytes is not None:
            name = (message.document_name or "document").replace('"', "")
            kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
            return Response(
                message.document_bytes,
                media_type=kind,
                headers={"Content-Disposition": f'attachment; filename="{name}"'},
            )
    raise NotFound("no such document")
