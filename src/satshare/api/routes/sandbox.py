"""/sandbox: a Telegram-like chat page over the Bot API emulator (sandbox mode only).

A newcomer plays one or more Telegram users: talks to the bot, presses its buttons, follows
invite links into the channels, and watches balances move. Everything goes through the
emulator exactly as Telegram would deliver it; the page only reads what the bot sent.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, Field

from satshare.access import service as access
from satshare.affiliates import service as affiliates
from satshare.api.deps import ContainerDep
from satshare.container import Container, TelegramSandbox
from satshare.errors import InvalidRequest, NotFound
from satshare.payments import referrals as payment_referrals
from satshare.sim.telegram import BotApiError, SimMessage
from satshare.subscriptions import repository as subscriptions_repo
from satshare.users import repository as users_repo
from satshare.users.models import User

router = APIRouter(prefix="/sandbox", tags=["sandbox"], include_in_schema=False)
templates = Jinja2Templates(directory=str(Path(__file__).parents[2] / "templates"))


def _sandbox(container: Container) -> TelegramSandbox:
    if container.telegram_sandbox is None:
        raise NotFound("the sandbox chat exists only when no telegram.token is configured")
    return container.telegram_sandbox


class NewUser(BaseModel):
    name: str = Field(min_length=1, max_length=32)
    language: str = Field("en", pattern="^(en|ru)$")
    invited_by: int | None = Field(None, description="Telegram id of the user whose link to use.")
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


@router.get("", response_class=HTMLResponse)
async def page(container: ContainerDep, request: Request) -> Response:
    sandbox = _sandbox(container)
    return templates.TemplateResponse(
        request, "sandbox.html", {"bot": sandbox.emulator.bot["username"]}
    )


def _message(message: SimMessage) -> dict[str, Any]:
    return {
        "id": message.message_id,
        "from_bot": message.from_bot,
        "date": message.date,
        "text": message.text if message.text is not None else message.caption,
        "html": message.parse_mode == "HTML",
        "photo": message.photo_bytes is not None,
        "document": message.document_name if message.document_bytes is not None else None,
        "buttons": [
            [
                {k: button[k] for k in ("text", "callback_data", "url") if k in button}
                for button in row
            ]
            for row in (message.reply_markup or {}).get("inline_keyboard") or []
        ],
    }


@router.get("/api/users")
async def users(container: ContainerDep) -> list[dict[str, Any]]:
    sandbox = _sandbox(container)
    admins = container.settings.telegram.admin_chat_ids
    return [
        {
            "id": u.id,
            "name": u.first_name,
            "username": u.username,
            "language": u.language_code,
            "admin": u.id in admins,
        }
        for u in sandbox.emulator.users.values()
    ]


@router.post("/api/users")
async def new_user(container: ContainerDep, body: NewUser) -> dict[str, Any]:
    sandbox = _sandbox(container)
    emulator = sandbox.emulator
    number = len(emulator.users) + 1
    username = "".join(c for c in body.name.lower() if c.isalnum() or c == "_")[:20] or "user"
    user = emulator.add_user(
        first_name=body.name, username=f"{username}{number}", language_code=body.language
    )
    if body.admin:
        # Sandbox only: the owner's admin chat, so /report and payout approvals can be tried.
        container.settings.telegram.admin_chat_ids.append(user.id)
    start = "/start"
    if body.invited_by is not None:
        async with container.db.reading() as session:
            inviter = await users_repo.by_external_id(session, "telegram", str(body.invited_by))
        if inviter is None:
            raise InvalidRequest("the inviting user has not started the bot yet")
        start = f"/start ref_{inviter.referral_code}"
    emulator.user_sends(user.id, start)
    return {"id": user.id, "name": user.first_name, "username": user.username}


@router.get("/api/chat/{telegram_id}")
async def chat(container: ContainerDep, telegram_id: int) -> dict[str, Any]:
    sandbox = _sandbox(container)
    if telegram_id not in sandbox.emulator.users:
        raise NotFound(f"no sandbox user {telegram_id}")
    messages = [_message(m) for m in sandbox.emulator.messages.get(telegram_id, [])]
    return {"messages": messages, "summary": await _summary(container, sandbox, telegram_id)}


async def _summary(
    container: Container, sandbox: TelegramSandbox, telegram_id: int
) -> dict[str, Any]:
    now = container.clock.now()
    async with container.db.reading() as session:
        user = await users_repo.by_external_id(session, "telegram", str(telegram_id))
        if user is None:
            return {"registered": False}
        earnings = await affiliates.balance(
            session, user.id, container.payouts.program.hold_days, now
        )
        referrals = await payment_referrals.referral_stats(session, user.id)
        registered, paying = referrals.registered, referrals.paying
        referrer = await users_repo.get(session, user.referrer_id) if user.referrer_id else None
        active = await subscriptions_repo.active_of_user(session, user.id, now)
        chats = await access.chats_of_active_subscriptions(session, user.id, now)
    channels = [
        {
            "id": chat.id,
            "title": chat.title,
            "status": chat.members.get(telegram_id, "left"),
        }
        for chat in sandbox.emulator.chats.values()
        if chat.type != "private"
    ]
    return {
        "registered": True,
        "user_id": user.id,
        "referral_code": user.referral_code,
        "referrer_id": user.referrer_id,
        "referrer": _shown_name(sandbox, referrer) if referrer is not None else None,
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


def _shown_name(sandbox: TelegramSandbox, user: User) -> str:
    """How the page names a SatShare user: their sandbox name, else @username or #id."""
    if user.platform == "telegram" and user.external_id and user.external_id.isdigit():
        account = sandbox.emulator.users.get(int(user.external_id))
        if account is not None:
            return f"{account.first_name} (@{account.username})"
    return f"@{user.username}" if user.username else f"#{user.id}"


@router.post("/api/chat/{telegram_id}/send")
async def send(container: ContainerDep, telegram_id: int, body: Said) -> dict[str, Any]:
    sandbox = _sandbox(container)
    try:
        return {"update_id": sandbox.emulator.user_sends(telegram_id, body.text)}
    except BotApiError as exc:
        raise InvalidRequest(exc.description) from None


@router.post("/api/chat/{telegram_id}/press")
async def press(container: ContainerDep, telegram_id: int, body: Pressed) -> dict[str, Any]:
    sandbox = _sandbox(container)
    try:
        return {"update_id": sandbox.emulator.user_presses(telegram_id, body.message_id, body.data)}
    except BotApiError as exc:
        raise InvalidRequest(exc.description) from None


@router.get("/api/chat/{telegram_id}/answer/{update_id}")
async def press_answer(container: ContainerDep, telegram_id: int, update_id: int) -> dict[str, Any]:
    """How the bot answered a button press (answerCallbackQuery): the page shows the text as
    Telegram does, a pop-up for ``show_alert``, else a short notice."""
    emulator = _sandbox(container).emulator
    return {
        "answered": emulator.callback_answered(update_id),
        "text": emulator.callback_answer(update_id),
        "alert": emulator.callback_alert(update_id),
    }


@router.post("/api/chat/{telegram_id}/join")
async def join(container: ContainerDep, telegram_id: int, body: Joined) -> dict[str, Any]:
    sandbox = _sandbox(container)
    try:
        return {"result": sandbox.emulator.user_joins(telegram_id, body.link)}
    except BotApiError as exc:
        raise InvalidRequest(exc.description) from None


@router.get("/api/photo/{telegram_id}/{message_id}")
async def photo(container: ContainerDep, telegram_id: int, message_id: int) -> Response:
    sandbox = _sandbox(container)
    for message in sandbox.emulator.messages.get(telegram_id, []):
        if message.message_id == message_id and message.photo_bytes:
            return Response(message.photo_bytes, media_type="image/png")
    raise NotFound("no such photo")


@router.get("/api/document/{telegram_id}/{message_id}")
async def document(container: ContainerDep, telegram_id: int, message_id: int) -> Response:
    """A file the bot sent (the /report XLSX), downloaded under its own name."""
    sandbox = _sandbox(container)
    for message in sandbox.emulator.messages.get(telegram_id, []):
        if message.message_id == message_id and message.document_bytes is not None:
            name = (message.document_name or "document").replace('"', "")
            kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
            return Response(
                message.document_bytes,
                media_type=kind,
                headers={"Content-Disposition": f'attachment; filename="{name}"'},
            )
    raise NotFound("no such document")
