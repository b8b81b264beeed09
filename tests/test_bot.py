"""The Telegram bot end to end: PTB over HTTP against the Bot API emulator, payments through
the BTCPay emulator, notifications from the outbox."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select

from satshare.access.models import ChannelAccess
from satshare.bot import texts
from satshare.clock import FrozenClock
from satshare.i18n import translate
from satshare.notifications.models import OutboxMessage
from satshare.payments import flows
from tests.botkit import (
    ADMIN_CHAT,
    CHANNELS,
    BotStack,
    close_bot_stack,
    open_bot_stack,
    text_of,
    wait_for,
)
from tests.conftest import BTCPaySim
from tests.helpers import expire_due_until, wait_until
from tests.qrkit import decode


@pytest.fixture
async def bot(database_url: str, btcpay: BTCPaySim) -> AsyncIterator[BotStack]:
    stack = await open_bot_stack(database_url, btcpay)
    yield stack
    await close_bot_stack(stack)


def fragment(language: str, message: str) -> str:
    """A piece of a translated message without its placeholders, for assertions."""
    text = translate(language, message)
    return text.split("{")[0].strip()


async def test_start_registers_and_shows_the_menu(bot: BotStack) -> None:
    alice = bot.new_user("alice")
    (reply,) = await bot.say(alice, "/start")
    assert fragment("en", texts.WELCOME) in text_of(reply)
    labels = [b["text"] for b in reply.buttons()]
    assert labels == ["Plans", "My subscription", "Invite & earn", "Withdraw", "Help", "Terms"]
    user = await bot.user_row(alice)
    assert user is not None and user.language == "en" and user.username == "alice"
    # The same user the REST API shows.
    async with httpx.AsyncClient(timeout=30, base_url=bot.url) as api:
        listed = await api.get(
            "/api/v1/users",
            params={"platform": "telegram", "external_id": str(alice)},
            headers={"Authorization": f"Bearer {bot.admin_key}"},
        )
    assert [u["user_id"] for u in listed.json()["items"]] == [user.id]
    (again,) = await bot.say(alice, "/start")
    assert "Welcome back" in text_of(again)


async def test_russian_from_language_code_and_language_switch(bot: BotStack) -> None:
    ivan = bot.new_user("ivan", language="ru")
    (reply,) = await bot.say(ivan, "/start")
    assert fragment("ru", texts.WELCOME) in text_of(reply)
    assert next(b["text"] for b in reply.buttons()) == "Тарифы"
    (choose,) = await bot.say(ivan, "/language")
    await bot.press(ivan, choose, "lang:en")
    await wait_for(lambda: "Language set to English" in text_of(bot.last(ivan)))
    assert (await bot.user_row(ivan)).language == "en"


async def test_referral_attribution_and_refusals(bot: BotStack) -> None:
    alice = bot.new_user("alice")
    await bot.say(alice, "/start")
    code = (await bot.user_row(alice)).referral_code

    bob = bot.new_user("bob")
    (reply,) = await bot.say(bob, f"/start ref_{code}")
    assert "alice" in text_of(reply)  # "You joined through @alice's invitation."
    bob_row = await bot.user_row(bob)
    assert bob_row.referrer_id == (await bot.user_row(alice)).id
    await bot.notify()
    await wait_for(lambda: "New referral" in text_of(bot.last(alice)))
    assert "@bob" in text_of(bot.last(alice))

    (own,) = await bot.say(alice, f"/start ref_{code}")
    assert fragment("en", texts.REF_OWN) in text_of(own)

    carol = bot.new_user("carol")
    (unknown,) = await bot.say(carol, "/start ref_nosuchcode")
    assert fragment("en", texts.REF_UNKNOWN) in text_of(unknown)
    assert (await bot.user_row(carol)).referrer_id is None

    bob_code = bob_row.referral_code
    (already,) = await bot.say(carol, f"/start ref_{bob_code}")
    assert fragment("en", texts.REF_ALREADY) in text_of(already)
    assert (await bot.user_row(carol)).referrer_id is None  # set once, at registration only


async def test_buy_pay_and_get_access(bot: BotStack) -> None:
    alice = bot.new_user("alice")
    await bot.say(alice, "/start")
    code = (await bot.user_row(alice)).referral_code
    bob = bot.new_user("bob")
    (menu,) = await bot.say(bob, f"/start ref_{code}")

    await bot.press(bob, menu, "Plans")
    plans_message = bot.last(bob)
    assert [b["text"] for b in plans_message.buttons()][:2] == [
        "Premium, 30 days: 50,000 sats / 30 days",
        "Premium, 365 days: 500,001 sats / 365 days",
    ]
    before = len(bot.telegram.sent_to(bob))
    await bot.press(bob, plans_message, "buy:monthly")
    (invoice_message,) = (await bot.wait_messages(bob, before + 1))[before:]
    caption = text_of(invoice_message)
    assert invoice_message.photo  # the QR code
    assert "50,000 sats" in caption and "lnbcrt500u" in caption
    assert "/pay/inv_" in caption  # a local checkout URL goes in the text, not a button
    assert [b["text"] for b in invoice_message.buttons()] == ["Check payment"]

    update = await bot.press(bob, invoice_message, "Check payment")
    assert bot.telegram.callback_answer(update) == translate("en", texts.PAYMENT_NOT_YET)

    invoice_id = next(b["callback_data"] for b in invoice_message.buttons())[4:]
    async with bot.container.db.reading() as session:
        from satshare.payments import repository

        invoice = await repository.get_invoice(session, invoice_id)
    assert invoice is not None and invoice.payment_request
    # The photo is the QR of the very invoice in the caption, read back from its pixels.
    assert invoice_message.photo_bytes is not None
    assert decode(invoice_message.photo_bytes) == ["lightning:" + invoice.payment_request.upper()]
    await bot.btcpay.pay(invoice.provider_invoice_id)
    await bot.btcpay.emulator.wait_idle()
    await bot.notify()

    confirmed = bot.last(bob)
    assert "Payment received" in text_of(confirmed)
    join_buttons = [b for b in confirmed.buttons() if "url" in b]
    assert [b["text"] for b in join_buttons] == ["Join Premium -1001000000001"]  # its title
    assert join_buttons[0]["url"].startswith("https://t.me/+")
    assert "You earned 25,000 sats" in text_of(bot.last(alice))
    assert "New sale" in text_of(bot.last(ADMIN_CHAT))

    # The shared join-request link lets subscribers in, and only them.
    link = join_buttons[0]["url"]
    assert bot.telegram.user_joins(bob, link) == "requested"
    await wait_for(lambda: bot.telegram.member_status(CHANNELS[0], bob) == "member")
    await wait_for(lambda: "Welcome! You now have access" in text_of(bot.last(bob)))
    carol = bot.new_user("carol")
    await bot.say(carol, "/start")
    assert bot.telegram.user_joins(carol, link) == "requested"
    await wait_for(lambda: "declined" in text_of(bot.last(carol)))
    assert bot.telegram.member_status(CHANNELS[0], carol) == "left"
    assert (CHANNELS[0], carol) not in bot.telegram.join_requests

    update = await bot.press(bob, invoice_message, "Check payment")
    assert bot.telegram.callback_answer(update) == translate("en", texts.PAYMENT_DONE)

    # Invite & earn shows the commission.
    await bot.say(alice, "/start")
    await bot.press(alice, bot.last(alice), "Invite & earn")
    invite = text_of(bot.last(alice))
    assert f"https://t.me/satshare_sandbox_bot?start=ref_{code}" in invite
    assert "Registered: 1" in invite and "Paying: 1" in invite
    assert "Balance: 25,000 sats" in invite
    assert "+25,000 sats" in invite
    share = next(b for b in bot.last(alice).buttons() if "url" in b)
    assert share["url"].startswith("https://t.me/share/url?url=")
    # The QR of the link reads back as exactly the link.
    before = len(bot.telegram.sent_to(alice))
    await bot.press(alice, bot.last(alice), "QR code of my link")
    (qr_photo,) = (await bot.wait_messages(alice, before + 1))[before:]
    assert qr_photo.photo_bytes is not None
    assert decode(qr_photo.photo_bytes) == [f"https://t.me/satshare_sandbox_bot?start=ref_{code}"]

    # Nothing was sent twice.
    await bot.notify()
    confirmations = [m for m in bot.telegram.sent_to(bob) if "Payment received" in text_of(m)]
    assert len(confirmations) == 1


async def test_duplicate_update_has_one_effect(bot: BotStack) -> None:
    alice = bot.new_user("alice")
    update_id = bot.telegram.user_sends(alice, "/start")
    await bot.wait_messages(alice, 1)
    bot.telegram.redeliver(update_id)
    bot.telegram.user_sends(alice, "/help")  # a later update, to know the duplicate passed
    await bot.wait_messages(alice, 2)
    texts_sent = [text_of(m) for m in bot.telegram.sent_to(alice)]
    assert len(texts_sent) == 2
    assert "/plans" in texts_sent[1]


async def test_unknown_text_gets_a_friendly_answer(bot: BotStack) -> None:
    alice = bot.new_user("alice")
    (reply,) = await bot.say(alice, "what is this?")
    assert fragment("en", texts.UNKNOWN) in text_of(reply)
    (support,) = await bot.say(alice, "/paysupport")
    assert "@owner" in text_of(support)
    (terms,) = await bot.say(alice, "/terms")
    assert "nothing is paid for sign-ups" in text_of(terms)


async def test_blocked_user_is_marked_unreachable_and_skipped(bot: BotStack) -> None:
    alice = bot.new_user("alice")
    await bot.say(alice, "/start")
    code = (await bot.user_row(alice)).referral_code
    bot.telegram.users[alice].blocked_bot = True
    bob = bot.new_user("bob")
    await bot.say(bob, f"/start ref_{code}")
    await bot.notify()
    assert (await bot.user_row(alice)).unreachable_at is not None
    async with bot.container.db.reading() as session:
        rows = (await session.execute(select(OutboxMessage))).scalars().all()
    notice = next(r for r in rows if r.kind == "referral.registered")
    assert notice.status == "skipped"
    # Talking to the bot again makes them reachable.
    bot.telegram.users[alice].blocked_bot = False
    await bot.say(alice, "/start")
    assert (await bot.user_row(alice)).unreachable_at is None


async def test_a_blocked_user_is_tried_once_per_batch(bot: BotStack) -> None:
    """The sender reads a batch's recipients once: the first 403 is remembered, so the
    user's next message in the same batch is skipped, not sent into a second 403."""
    alice = bot.new_user("alice")
    await bot.say(alice, "/start")
    code = (await bot.user_row(alice)).referral_code
    bot.telegram.users[alice].blocked_bot = True
    for name in ("bob", "carol"):
        await bot.say(bot.new_user(name), f"/start ref_{code}")
    calls_before = len(bot.telegram.calls)
    await bot.notify()
    tried = [
        params
        for method, params in bot.telegram.calls[calls_before:]
        if method == "sendMessage" and int(params["chat_id"]) == alice
    ]
    assert len(tried) == 1
    async with bot.container.db.reading() as session:
        rows = (await session.execute(select(OutboxMessage))).scalars().all()
    first, second = sorted((r for r in rows if r.kind == "referral.registered"), key=lambda r: r.id)
    assert (first.status, second.status) == ("skipped", "skipped")
    assert (first.last_error or "").startswith("unreachable: ")  # Telegram's 403
    assert second.last_error == "the user blocked the bot"  # remembered, not sent


async def test_rate_limited_notifications_wait_and_arrive_once(bot: BotStack) -> None:
    alice = bot.new_user("alice")
    await bot.say(alice, "/start")
    code = (await bot.user_row(alice)).referral_code
    friends = [bot.new_user(f"friend{i}") for i in range(4)]
    for friend in friends:
        await bot.say(friend, f"/start ref_{code}")
    bot.telegram.set_limits(chat_rate=1.0, chat_burst=1.0)
    before = len(bot.telegram.sent_to(alice))
    await bot.notify()
    await wait_for(lambda: len(bot.telegram.sent_to(alice)) >= before + 4, timeout=30)
    await bot.notify()
    notices = [m for m in bot.telegram.sent_to(alice) if "New referral" in text_of(m)]
    assert len(notices) == 4
    throttled = [c for c in bot.telegram.calls if c[0] == "sendMessage"]
    assert throttled  # and the emulator did refuse some of them with 429 on the way


async def test_webhook_mode_checks_the_secret(database_url: str, btcpay: BTCPaySim) -> None:
    stack = await open_bot_stack(
        database_url, btcpay, telegram={"webhook_url": "https://x.invalid/"}
    )
    try:
        async with httpx.AsyncClient(timeout=30, base_url=stack.url) as client:
            update = {
                "update_id": 1,
                "message": {"message_id": 1, "date": 0, "chat": {"id": 1, "type": "private"}},
            }
            for headers in ({}, {"X-Telegram-Bot-Api-Secret-Token": "wrong"}):
                response = await client.post("/telegram/webhook", json=update, headers=headers)
                assert response.status_code == 401
                assert response.headers["content-type"] == "application/problem+json"
        assert stack.telegram.webhook_url == "https://x.invalid"
        # The emulator pushes to our real endpoint with the right secret.
        stack.telegram.webhook_url = f"{stack.url}/telegram/webhook"
        alice = stack.new_user("alice")
        (reply,) = await stack.say(alice, "/start")
        assert fragment("en", texts.WELCOME) in text_of(reply)
    finally:
        await close_bot_stack(stack)


@pytest.fixture
async def clocked_bot(
    database_url: str, btcpay: BTCPaySim
) -> AsyncIterator[tuple[BotStack, FrozenClock]]:
    clock = FrozenClock(datetime.now(UTC))
    stack = await open_bot_stack(database_url, btcpay, clock=clock)
    yield stack, clock
    await close_bot_stack(stack)


async def _subscribe(bot: BotStack, user: int) -> None:
    await bot.say(user, "/start")
    await bot.press(user, bot.last(user), "Plans")
    before = len(bot.telegram.sent_to(user))
    await bot.press(user, bot.last(user), "buy:monthly")
    invoice_message = (await bot.wait_messages(user, before + 1))[-1]
    invoice_id = next(b["callback_data"] for b in invoice_message.buttons())[4:]
    from satshare.payments import repository

    async with bot.container.db.reading() as session:
        invoice = await repository.get_invoice(session, invoice_id)
    assert invoice is not None
    bot.btcpay.emulator.drop_webhooks = True
    await bot.btcpay.pay(invoice.provider_invoice_id)
    await flows.reconcile(bot.container.payments)
    await bot.notify()


async def test_expiry_removes_members_with_ban_and_unban(
    clocked_bot: tuple[BotStack, FrozenClock],
) -> None:
    from satshare.bot.removal import remove_expired_members

    bot, clock = clocked_bot
    bob = bot.new_user("bob")
    await _subscribe(bot, bob)
    link = next(b["url"] for b in bot.last(bob).buttons() if "url" in b)
    bot.telegram.user_joins(bob, link)
    await wait_for(lambda: bot.telegram.member_status(CHANNELS[0], bob) == "member")

    assert (await remove_expired_members(bot.runtime, bot.runtime.application.bot)).removed == 0
    clock.advance(timedelta(days=31))
    await expire_due_until(bot.container.db, clock.now(), expected=1)
    bot.runtime.settings.removal_dry_run = True
    dry = await remove_expired_members(bot.runtime, bot.runtime.application.bot)
    assert dry.would_remove == [((await bot.user_row(bob)).id, CHANNELS[0])]
    assert bot.telegram.member_status(CHANNELS[0], bob) == "member"
    bot.runtime.settings.removal_dry_run = False
    report = await remove_expired_members(bot.runtime, bot.runtime.application.bot)
    assert report.removed == 1
    assert bot.telegram.member_status(CHANNELS[0], bob) == "left"  # banned, then unbanned
    calls = [c[0] for c in bot.telegram.calls if c[0] in ("banChatMember", "unbanChatMember")]
    assert calls == ["banChatMember", "unbanChatMember"]
    await bot.notify()
    assert "has ended" in text_of(bot.last(bob))

    # Renewal re-grants access: the join request is approved again.
    await _subscribe(bot, bob)
    assert bot.telegram.user_joins(bob, link) == "requested"
    await wait_for(lambda: bot.telegram.member_status(CHANNELS[0], bob) == "member")

    async def recorded() -> bool:
        async with bot.container.db.reading() as session:
            access = (await session.execute(select(ChannelAccess))).scalar_one()
        return access.status == "member"

    await wait_until(recorded)


async def test_removal_cap_per_run(clocked_bot: tuple[BotStack, FrozenClock]) -> None:
    from satshare.bot.removal import remove_expired_members

    bot, clock = clocked_bot
    members = [bot.new_user(f"m{i}") for i in range(3)]
    for member in members:
        await _subscribe(bot, member)
        link = next(b["url"] for b in bot.last(member).buttons() if "url" in b)
        bot.telegram.user_joins(member, link)
        await wait_for(lambda m=member: bot.telegram.member_status(CHANNELS[0], m) == "member")  # type: ignore[misc]
    clock.advance(timedelta(days=31))
    await expire_due_until(bot.container.db, clock.now(), expected=3)
    bot.runtime.settings.removal_max_per_run = 2
    first = await remove_expired_members(bot.runtime, bot.runtime.application.bot)
    second = await remove_expired_members(bot.runtime, bot.runtime.application.bot)
    assert (first.removed, second.removed) == (2, 1)


async def test_reminders_on_the_configured_days(clocked_bot: tuple[BotStack, FrozenClock]) -> None:
    from satshare.subscriptions import reminders as due_reminders

    bot, clock = clocked_bot
    bob = bot.new_user("bob")
    await _subscribe(bot, bob)
    days = bot.container.settings.notifications.reminder_days
    assert days == [7, 3, 1]

    async def queue() -> int:
        async with bot.container.db.transaction() as session:
            return await due_reminders.queue_reminders(session, clock.now(), days)

    assert await queue() == 0  # 30 days left
    clock.advance(timedelta(days=23, hours=12))  # 6.5 days left
    assert await queue() == 1
    assert await queue() == 0  # once
    clock.advance(timedelta(days=4))  # 2.5 days left
    assert await queue() == 1
    clock.advance(timedelta(days=2))  # 0.5 days left
    assert await queue() == 1
    await bot.notify()
    reminders = [m for m in bot.telegram.sent_to(bob) if "Reminder" in text_of(m)]
    assert len(reminders) == 3


async def test_one_use_links_mode(database_url: str, btcpay: BTCPaySim) -> None:
    stack = await open_bot_stack(database_url, btcpay, telegram={"access_mode": "invite_link"})
    try:
        bob = stack.new_user("bob")
        await _subscribe(stack, bob)
        confirmed = stack.last(bob)
        assert "work once" in text_of(confirmed)
        link = next(b["url"] for b in confirmed.buttons() if "url" in b)
        sim_link = stack.telegram.links[link]
        assert sim_link.member_limit == 1 and sim_link.expire_date is not None
        assert stack.telegram.user_joins(bob, link) == "joined"
        assert stack.telegram.user_joins(stack.new_user("eve"), link) == "limit_reached"
        async with stack.container.db.reading() as session:
            access = (await session.execute(select(ChannelAccess))).scalar_one()
        assert access.status == "granted" and access.invite_link == link
    finally:
        await close_bot_stack(stack)


BRAND_NAMES = {"Lightning", "BitPay", "Telegram Stars"}  # the same in both languages


@pytest.mark.parametrize("module", ["bot", "web"])
def test_every_message_is_translated_in_both_languages(module: str) -> None:
    import re

    from satshare.api import texts as web_texts
    from satshare.i18n import Plural, english

    source = texts if module == "bot" else web_texts
    placeholders = re.compile(r"\{(\w+)\}")
    checked = 0
    for name in dir(source):
        message = getattr(source, name)
        if name.startswith("_") or not isinstance(message, str | Plural) or name == "annotations":
            continue
        # Plurals in every Russian form: one (1, 21), few (2, 22), many (5, 11).
        counts = (1, 2, 5, 11, 21, 22) if isinstance(message, Plural) else (None,)
        for count in counts:
            source_text = english(message) if count in (None, 1) else message[1]
            values: dict[str, object] = {}
            if count is not None:
                values = {key: f"<{key}>" for key in placeholders.findall(source_text)}
                values["count"] = count
            english_text = translate("en", message, **values)
            russian = translate("ru", message, **values)
            if count is None:
                assert english_text == source_text, name
            if english(message) not in BRAND_NAMES:
                assert russian not in (english(message), source_text), f"{name} has no Russian"
            if count is not None:
                assert str(count) in russian and str(count) in english_text, name
                assert all(str(v) in russian for v in values.values()), name
            else:
                shown = set(placeholders.findall(russian))
                assert shown == set(placeholders.findall(source_text)), name
            checked += 1
    assert checked > 20
