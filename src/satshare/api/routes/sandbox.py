"""/sandbox: a Telegram-like chat page over the Bot API emulator (sandbox mode only).

A newcomer plays one or more Telegram users: talks to the bot, presses its buttons, follows
invite links into the channels, and watches balances move. Everything goes through the
emulator exactly as Telegram would deliver it; the page only reads what the bot sent.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, Field

from satshare.access import flows as access_flows
from satshare.api.deps import ClockDep, DbDep, PayoutsDep, SandboxDep
from satshare.api.ports import ChatMessage, SandboxChat, SandboxRefused
from satshare.clock import Clock
from satshare.db import Database
from satshare.errors import InvalidRequest, NotFound
from satshare.users import flows as user_flows

router = APIRouter(prefix="/sandbox", tags=["sandbox"], include_in_schema=False)
templates = Jinja2Templates(directory=str(Path(__file__).parents[2] / "templates"))


def _chat(sandbox: SandboxDep) -> SandboxChat:
    if sandbox is None or sandbox.chat is None:
        raise NotFound("the sandbox chat exists only when no telegram.token is configured")
    return sandbox.chat


#: The Bot API emulator, played by this page (404 unless in sandbox mode without a token).
ChatDep = Annotated[SandboxChat, Depends(_chat)]


class NewUser(BaseModel):
    name: str = Field(min_length=1, max_length=32)
    language: str = Field("en", pattern="^(en|ru)$")
    invited_by: int | None = Field(None, description="Telegram id of the user whose link to use.")


class Said(BaseModel):
    text: str = Field(min_length=1, max_length=4096)


class Pressed(BaseModel):
    message_id: int
    data: str = Field(min_length=1, max_length=64)


class Joined(BaseModel):
    link: str = Field(min_length=1, max_length=300)


@router.get("", response_class=HTMLResponse)
async def page(chat: ChatDep, request: Request) -> Response:
    return templates.TemplateResponse(request, "sandbox.html", {"bot": chat.bot_username})


def _message(message: ChatMessage) -> dict[str, Any]:
    return {
        "id": message.message_id,
        "from_bot": message.from_bot,
        "date": message.date,
        "text": message.text if message.text is not None else message.caption,
        "html": message.parse_mode == "HTML",
        "photo": message.photo_bytes is not None,
        "buttons": [
            [
                {k: button[k] for k in ("text", "callback_data", "url") if k in button}
                for button in row
            ]
            for row in (message.reply_markup or {}).get("inline_keyboard") or []
        ],
    }


@router.get("/api/users")
async def users(chat: ChatDep) -> list[dict[str, Any]]:
    return [
        {"id": u.id, "name": u.first_name, "username": u.username, "language": u.language_code}
        for u in chat.users()
    ]


@router.post("/api/users")
async def new_user(chat: ChatDep, db: DbDep, body: NewUser) -> dict[str, Any]:
    number = len(list(chat.users())) + 1
    username = "".join(c for c in body.name.lower() if c.isalnum() or c == "_")[:20] or "user"
    user = chat.add_user(
        first_name=body.name, username=f"{username}{number}", language_code=body.language
    )
    start = "/start"
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
    channels = [
        {
            "id": room.id,
            "title": room.title,
            "status": room.members.get(telegram_id, "left"),
        }
        for room in chat.chats()
        if room.type != "private"
    ]
    return {
        "registered": True,
        "user_id": user.id,
        "referral_code": user.referral_code,
        "referrer_id": user.referrer_id,
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


@router.post("/api/chat/{telegram_id}/join")
async def join(chat: ChatDep, telegram_id: int, body: Joined) -> dict[str, Any]:
    try:
        return {"result": chat.user_joins(telegram_id, body.link)}
    except SandboxRefused as exc:
        raise InvalidRequest(str(exc)) from None


@router.get("/api/photo/{telegram_id}/{message_id}")
async def photo(chat: ChatDep, telegram_id: int, message_id: int) -> Response:
    for message in chat.messages(telegram_id):
        if message.message_id == message_id and message.photo_bytes:
            return Response(message.photo_bytes, media_type="image/png")
    raise NotFound("no such photo")
