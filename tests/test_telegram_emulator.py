"""The Bot API emulator, driven by python-telegram-bot's own Bot over HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import BadRequest, Forbidden, RetryAfter

from satshare.sim.telegram import TelegramEmulator, build_app
from tests.servers import RunningServer, start_server

pytestmark = pytest.mark.integration  # every test talks to the emulator on a loopback server

TOKEN = "123456:TEST-token"


@dataclass
class Sim:
    emulator: TelegramEmulator
    server: RunningServer
    bot: Bot


@pytest.fixture
async def sim() -> AsyncIterator[Sim]:
    emulator = TelegramEmulator(TOKEN)
    server = await start_server(build_app(emulator))
    bot = Bot(TOKEN, base_url=f"{server.url}/bot")
    async with bot:
        yield Sim(emulator, server, bot)
    await server.stop()
    await emulator.aclose()


async def test_get_me_and_messages(sim: Sim) -> None:
    me = await sim.bot.get_me()
    assert me.is_bot and me.username == "satshare_sandbox_bot"
    user = sim.emulator.add_user(first_name="Ann", language_code="ru")
    with pytest.raises(BadRequest, match=r"(?i)chat not found"):
        await sim.bot.send_message(user.id, "hello")  # never started the bot
    sim.emulator.user_sends(user.id, "/start ref_abc")
    updates = await sim.bot.get_updates(timeout=1)
    assert len(updates) == 1
    message = updates[0].message
    assert message is not None and message.text == "/start ref_abc"
    assert message.from_user is not None and message.from_user.language_code == "ru"
    assert message.entities[0].type == "bot_command"
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("Plans", callback_data="plans")]])
    sent = await sim.bot.send_message(user.id, "Welcome", reply_markup=markup)
    assert sent.text == "Welcome"
    photo = await sim.bot.send_photo(user.id, photo=b"\x89PNG fake", caption="QR")
    assert photo.photo
    # Confirming by offset empties the queue.
    assert await sim.bot.get_updates(offset=updates[0].update_id + 1, timeout=0) == ()
    sim.emulator.user_presses(user.id, sent.message_id, "plans")
    press = (await sim.bot.get_updates(offset=updates[0].update_id + 1, timeout=1))[0]
    assert press.callback_query is not None and press.callback_query.data == "plans"
    assert await sim.bot.answer_callback_query(press.callback_query.id)
    with pytest.raises(BadRequest, match=r"(?i)query is too old"):
        await sim.bot.answer_callback_query(press.callback_query.id)
    edited = await sim.bot.edit_message_text("Plans:", chat_id=user.id, message_id=sent.message_id)
    assert isinstance(edited, object)
    with pytest.raises(BadRequest, match=r"(?i)not modified"):
        await sim.bot.edit_message_text("Plans:", chat_id=user.id, message_id=sent.message_id)


async def test_protocol_errors(sim: Sim) -> None:
    async with httpx.AsyncClient(timeout=30, base_url=sim.server.url) as raw:
        unknown = await raw.post(f"/bot{TOKEN}/sendTelepathy")
        assert unknown.status_code == 404 and unknown.json()["ok"] is False
        missing = await raw.post(f"/bot{TOKEN}/sendMessage", json={"chat_id": 1})
        assert missing.status_code == 400
        assert missing.json()["description"] == 'Bad Request: parameter "text" is required'
        wrong_token = await raw.post("/bot999:nope/getMe")
        assert wrong_token.status_code == 401
        not_emulated = await raw.post(f"/bot{TOKEN}/sendDice", json={"chat_id": 1})
        assert not_emulated.status_code == 501
    user = sim.emulator.add_user()
    sim.emulator.user_sends(user.id, "hi")
    with pytest.raises(BadRequest, match=r"(?i)BUTTON_DATA_INVALID"):
        await sim.bot.send_message(
            user.id,
            "x",
            reply_markup=InlineKeyboardMarkup(
                [[InlineKeyboardButton("b", callback_data="x" * 65)]]
            ),
        )
    with pytest.raises(BadRequest, match=r"(?i)Wrong HTTP URL"):
        await sim.bot.send_message(
            user.id,
            "x",
            reply_markup=InlineKeyboardMarkup(
                [[InlineKeyboardButton("pay", url="http://127.0.0.1:8000/pay/x")]]
            ),
        )


async def test_rate_limits_and_blocked_users(sim: Sim) -> None:
    sim.emulator.set_limits(chat_rate=1.0, chat_burst=1.0)
    user = sim.emulator.add_user()
    sim.emulator.user_sends(user.id, "/start")
    await sim.bot.send_message(user.id, "one")
    with pytest.raises(RetryAfter) as caught:
        await sim.bot.send_message(user.id, "two")
    retry = caught.value.retry_after
    # The chat's one-a-second bucket refills in under a second, rounded up to whole seconds.
    assert (retry if isinstance(retry, int) else retry.total_seconds()) == 1
    sim.emulator.users[user.id].blocked_bot = True
    await asyncio.sleep(1.05)
    with pytest.raises(Forbidden, match=r"(?i)blocked by the user"):
        await sim.bot.send_message(user.id, "three")


async def test_invite_links_join_requests_and_bans(sim: Sim) -> None:
    channel = sim.emulator.add_chat(-1001, "Premium")
    user = sim.emulator.add_user()
    with pytest.raises(BadRequest, match=r"(?i)combine"):
        await sim.bot.create_chat_invite_link(channel.id, creates_join_request=True, member_limit=1)
    request_link = await sim.bot.create_chat_invite_link(channel.id, creates_join_request=True)
    assert sim.emulator.user_joins(user.id, request_link.invite_link) == "requested"
    update = (await sim.bot.get_updates(timeout=1))[0]
    assert update.chat_join_request is not None
    assert update.chat_join_request.from_user.id == user.id
    assert await sim.bot.approve_chat_join_request(channel.id, user.id)
    assert (await sim.bot.get_chat_member(channel.id, user.id)).status == "member"
    with pytest.raises(BadRequest, match=r"(?i)HIDE_REQUESTER_MISSING"):
        await sim.bot.decline_chat_join_request(channel.id, user.id)
    await sim.bot.ban_chat_member(channel.id, user.id)
    assert (await sim.bot.get_chat_member(channel.id, user.id)).status == "kicked"
    await sim.bot.unban_chat_member(channel.id, user.id, only_if_banned=True)
    assert (await sim.bot.get_chat_member(channel.id, user.id)).status == "left"
    one_use = await sim.bot.create_chat_invite_link(channel.id, member_limit=1)
    other = sim.emulator.add_user()
    assert sim.emulator.user_joins(user.id, one_use.invite_link) == "joined"
    assert sim.emulator.user_joins(other.id, one_use.invite_link) == "limit_reached"


async def test_webhook_push_with_secret_and_getupdates_conflict(sim: Sim) -> None:
    received: list[tuple[dict[str, object], str | None]] = []

    async def hook(request: Request) -> Response:
        received.append(
            (await request.json(), request.headers.get("x-telegram-bot-api-secret-token"))
        )
        return Response(status_code=200)

    receiver = await start_server(Starlette(routes=[Route("/tg", hook, methods=["POST"])]))
    try:
        await sim.bot.set_webhook(f"{receiver.url}/tg", secret_token="s3cret_token")
        with pytest.raises(Exception, match=r"(?i)Conflict"):
            await sim.bot.get_updates()
        user = sim.emulator.add_user()
        sim.emulator.user_sends(user.id, "/start")
        for _ in range(100):
            # Delivered once the emulator has the receiver's answer, not when the receiver
            # has read the body (under load the two can be far apart).
            if received and sim.emulator.updates.pending_count() == 0:
                break
            await asyncio.sleep(0.02)
        update, secret = received[0]
        assert secret == "s3cret_token"
        assert update["message"]["text"] == "/start"  # type: ignore[index]
        sim.emulator.redeliver(int(update["update_id"]))  # type: ignore[arg-type]
        for _ in range(100):
            if len(received) == 2:
                break
            await asyncio.sleep(0.02)
        assert received[1][0]["update_id"] == update["update_id"]
        info = await sim.bot.get_webhook_info()
        assert info.url == f"{receiver.url}/tg"
    finally:
        await sim.bot.delete_webhook()
        await receiver.stop()


async def test_a_second_poller_terminates_the_first_with_409(sim: Sim) -> None:
    """As Telegram: two bot instances long-polling at once — the older poll is answered
    409 Conflict, the newer one gets the updates."""
    from telegram.error import Conflict

    older = asyncio.create_task(sim.bot.get_updates(timeout=20))
    while sim.emulator.updates.polls == 0:  # noqa: ASYNC110 - the poll has to arrive first
        await asyncio.sleep(0.01)
    async with Bot(TOKEN, base_url=f"{sim.server.url}/bot") as second:
        newer = asyncio.create_task(second.get_updates(timeout=20))
        with pytest.raises(Conflict, match="terminated by other getUpdates request"):
            await older
        user = sim.emulator.add_user(first_name="Bo")
        sim.emulator.user_sends(user.id, "/start")
        (update,) = await newer
    assert update.message is not None and update.message.text == "/start"
    assert sim.emulator.updates.conflicts == 1
