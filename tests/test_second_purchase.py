"""Buying a plan while a subscription is active (#10): before the invoice, the bot and the
checkout page say what the purchase does — the same plan is extended from its end, another
plan runs alongside with its own channels — and the buyer continues or goes back. What they
were told is what happens when the payment settles."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import func, select

from satshare.api import texts as web
from satshare.bot import texts
from satshare.i18n import format_datetime, translate
from satshare.payments.models import Invoice
from satshare.sim.telegram import SimMessage
from satshare.subscriptions.models import Subscription
from tests.botkit import BotStack, close_bot_stack, open_bot_stack, text_of, wait_for
from tests.browser import chromium
from tests.conftest import BTCPaySim
from tests.helpers import buy, create_user, wait_until
from tests.qrkit import WIDTHS, decode, keep
from tests.sandboxkit import Sandbox


@pytest.fixture
async def bot(database_url: str, btcpay: BTCPaySim) -> AsyncIterator[BotStack]:
    stack = await open_bot_stack(database_url, btcpay)
    yield stack
    await close_bot_stack(stack)


async def _invoices(bot: BotStack) -> int:
    async with bot.container.db.reading() as session:
        return int((await session.execute(select(func.count()).select_from(Invoice))).scalar_one())


async def _ends_at(bot: BotStack, telegram_id: int, plan_id: str) -> datetime:
    user = await bot.user_row(telegram_id)
    async with bot.container.db.reading() as session:
        subscription = (
            await session.execute(
                select(Subscription).where(
                    Subscription.user_id == user.id, Subscription.plan_id == plan_id
                )
            )
        ).scalar_one()
    assert subscription.ends_at is not None
    return subscription.ends_at


async def _pay_last_invoice(bot: BotStack, telegram_id: int) -> SimMessage:
    """Pay the invoice the bot just sent; return the "Payment received" message."""
    invoice_message = bot.last(telegram_id)
    invoice_id = next(b["callback_data"] for b in invoice_message.buttons())[4:]
    async with bot.container.db.reading() as session:
        invoice = await session.get(Invoice, invoice_id)
    assert invoice is not None
    await bot.btcpay.pay(invoice.provider_invoice_id)
    await bot.btcpay.emulator.wait_idle()
    await bot.notify()
    confirmed = bot.last(telegram_id)
    assert text_of(confirmed).startswith(("Payment received", "Оплата получена"))
    return confirmed


async def _choose(bot: BotStack, telegram_id: int, plan_id: str) -> SimMessage:
    await bot.say(telegram_id, "/plans")
    await bot.press(telegram_id, bot.last(telegram_id), f"buy:{plan_id}")
    return bot.last(telegram_id)


def _when(language: str, moment: datetime) -> str:
    return format_datetime(language, moment, zone=False)


async def test_the_bot_says_what_a_second_purchase_does_before_the_invoice(
    bot: BotStack,
) -> None:
    anna = bot.new_user("anna")
    await bot.say(anna, "/start")
    # Nothing active: the invoice comes at once, as before.
    first = await _choose(bot, anna, "monthly")
    assert first.photo and "/pay/inv_" in text_of(first)
    await _pay_last_invoice(bot, anna)
    ends = await _ends_at(bot, anna, "monthly")

    # The same plan again: it is extended from its end, and the bot says until when.
    invoices = await _invoices(bot)
    told = await _choose(bot, anna, "monthly")
    promised = ends + timedelta(days=30)
    assert text_of(told) == translate(
        "en",
        texts.OUTLOOK_EXTEND,
        plan="Premium, 30 days",
        until=_when("en", ends),
        count=30,
        new_until=_when("en", promised),
    )
    assert [b["text"] for b in told.buttons()] == ["Continue to payment", "« Plans"]
    assert await _invoices(bot) == invoices  # told only: no invoice yet
    await bot.press(anna, told, "« Plans")
    assert text_of(bot.last(anna)).startswith(translate("en", texts.PLANS_TITLE))
    assert await _invoices(bot) == invoices  # went back: still none

    told = await _choose(bot, anna, "monthly")
    await bot.press(anna, told, "Continue to payment")
    invoice_message = bot.last(anna)
    assert invoice_message.photo and await _invoices(bot) == invoices + 1
    assert "?confirmed=1" in text_of(invoice_message)  # the checkout need not ask again
    await _pay_last_invoice(bot, anna)
    assert await _ends_at(bot, anna, "monthly") == promised  # exactly what she was told

    # Another plan: a second subscription alongside, with the channels each gives.
    told = await _choose(bot, anna, "yearly")
    text = text_of(told)
    assert text.startswith("You already have:\n• <b>Premium, 30 days</b> until ")
    assert f"until {_when('en', promised)} UTC: Premium -1001000000001\n" in text
    assert "<b>Premium, 365 days</b> is a different plan, so it runs alongside: 365 days" in text
    assert "giving Premium -1001000000001, Premium -1001000000002." in text
    assert text.endswith(
        "Both plans give Premium -1001000000001: you keep access until the later of the two "
        "end dates."
    )
    await bot.press(anna, told, "Continue to payment")
    paying = datetime.now(UTC)
    await _pay_last_invoice(bot, anna)
    assert await _ends_at(bot, anna, "monthly") == promised  # untouched
    yearly = await _ends_at(bot, anna, "yearly")  # 365 days from its payment
    assert paying + timedelta(days=365) <= yearly <= datetime.now(UTC) + timedelta(days=365)


async def test_the_outlook_in_russian_counts_extra_days_from_a_promo_code(
    bot: BotStack,
) -> None:
    ivan = bot.new_user("ivan", language="ru")
    await bot.say(ivan, "/start")
    await _choose(bot, ivan, "monthly")
    await _pay_last_invoice(bot, ivan)
    ends = await _ends_at(bot, ivan, "monthly")
    async with httpx.AsyncClient(
        timeout=30, base_url=bot.url, headers={"Authorization": f"Bearer {bot.admin_key}"}
    ) as api:
        created = await api.post(
            "/api/v1/promo-codes", json={"code": "WEEK", "kind": "extra_days", "value": 7}
        )
        assert created.status_code == 201, created.text
    await bot.say(ivan, "/start promo_WEEK", replies=2)  # the menu, then the code taken
    told = await _choose(bot, ivan, "monthly")
    promised = ends + timedelta(days=37)
    assert text_of(told) == translate(
        "ru",
        texts.OUTLOOK_EXTEND,
        plan="Premium, 30 days",
        until=_when("ru", ends),
        count=37,
        new_until=_when("ru", promised),
    )
    assert "добавит к ней 37 дней" in text_of(told)
    assert [b["text"] for b in told.buttons()] == ["Перейти к оплате", "« Тарифы"]
    await bot.press(ivan, told, "Перейти к оплате")
    await _pay_last_invoice(bot, ivan)
    assert await _ends_at(bot, ivan, "monthly") == promised


async def test_the_stars_link_from_the_checkout_page_also_says_what_it_does(
    database_url: str, btcpay: BTCPaySim
) -> None:
    yearly_for_stars = {
        "id": "yearly",
        "title": "Premium, 365 days",
        "price_stars": 5_000,
        "duration_days": 365,
        "providers": ["stars"],
        "channels": [-1001000000001],
    }
    bot = await open_bot_stack(
        database_url,
        btcpay,
        plans=[yearly_for_stars],
        stars={"enabled": True, "sats_per_star": 20},
    )
    try:
        bob = bot.new_user("bob")
        await bot.say(bob, "/start")
        await bot.say(bob, "/plans")
        await bot.press(bob, bot.last(bob), "buy:yearly")  # Stars only: a one-off invoice
        invoice = bot.last(bob)
        assert (await bot.telegram.user_pays(bob, message_id=invoice.message_id))["status"] == (
            "paid"
        )
        await bot.notify()
        await wait_for(lambda: "Payment received" in text_of(bot.last(bob)))
        ends = await _ends_at(bot, bob, "yearly")
        # The checkout page's "Pay with Stars" opens the bot with /start stars_<plan>.
        _menu, told = await bot.say(bob, "/start stars_yearly", replies=2)
        assert text_of(told).startswith("You already have <b>Premium, 365 days</b>, active until")
        assert f"it will then run until <b>{_when('en', ends + timedelta(days=365))} UTC" in (
            text_of(told)
        )
        await bot.press(bob, told, "Continue to payment")
        assert bot.last(bob).invoice is not None  # now the Stars invoice
    finally:
        await close_bot_stack(bot)


async def _subscription_end(sandbox: Sandbox, user_id: int, plan_id: str) -> datetime:
    listed = await sandbox.client.get(
        "/api/v1/subscriptions", params={"user_id": user_id, "subscription_type": plan_id}
    )
    (item,) = listed.json()["items"]
    return datetime.fromisoformat(item["ends_at"])


async def _settle(sandbox: Sandbox, invoice_id: str) -> None:
    async with httpx.AsyncClient(timeout=30, base_url=sandbox.url) as anonymous:
        assert (await anonymous.post(f"/pay/{invoice_id}/simulate")).status_code == 200

        async def settled() -> bool:
            status = (await anonymous.get(f"/pay/{invoice_id}/status")).json()
            return bool(status["status"] == "settled")

        await wait_until(settled, timeout=15)


@pytest.mark.browser
async def test_the_checkout_page_says_what_a_second_purchase_does_before_the_qr_codes(
    sandbox: Sandbox,
) -> None:
    buyer = (await create_user(sandbox.client, "buyer"))["user_id"]
    await _settle(sandbox, (await buy(sandbox.client, buyer, "demo-monthly"))["invoice"]["id"])
    ends = await _subscription_end(sandbox, buyer, "demo-monthly")
    again = (await buy(sandbox.client, buyer, "demo-monthly"))["invoice"]
    promised = ends + timedelta(days=30)
    async with chromium() as browser:
        for label, width in WIDTHS.items():
            page = await browser.new_page(viewport={"width": width, "height": 900})
            await page.goto(again["checkout_url"])
            assert await page.get_attribute("#outlook", "data-effect") == "extend"
            assert await page.inner_text("#outlook-text") == translate(
                "en",
                web.OUTLOOK_EXTEND,
                plan="Demo channel, 30 days",
                until=format_datetime("en", ends),
                count=30,
                new_until=format_datetime("en", promised),
            )
            # No way to pay before "Continue": no QR code on the screen, no wallet link.
            assert await page.is_hidden("#payment") and await page.is_hidden("#lightning")
            assert decode(await page.screenshot(full_page=True)) == []
            assert await page.get_attribute("#outlook-back", "href") == "/sandbox"
            keep(await page.screenshot(full_page=True), f"checkout-outlook-extend-{label}")
            await page.click("#outlook-continue")
            await page.wait_for_selector("#lightning")
            assert decode(await page.screenshot(full_page=True))[0] == (
                "lightning:" + again["payment_request"].upper()
            )
            assert await page.is_hidden("#outlook-continue")
            await page.close()
    await _settle(sandbox, again["id"])
    assert await _subscription_end(sandbox, buyer, "demo-monthly") == promised  # as told

    yearly = (await buy(sandbox.client, buyer, "demo-yearly"))["invoice"]
    async with chromium() as browser:
        page = await browser.new_page(viewport={"width": 390, "height": 844})
        await page.goto(yearly["checkout_url"] + "?lang=ru")
        assert await page.get_attribute("#outlook", "data-effect") == "alongside"
        assert await page.inner_text("#held") == translate(
            "ru",
            web.OUTLOOK_HELD_LINE,
            plan="Demo channel, 30 days",
            until=format_datetime("ru", promised),
            channels=translate("ru", web.OUTLOOK_CHANNELS, count=1),
        )
        text = await page.inner_text("#outlook-text")
        assert text.startswith("«Demo channel, 365 days» — другой тариф") and "365 дней" in text
        assert await page.inner_text("#outlook-shared") == translate(
            "ru", web.OUTLOOK_SHARED, count=1
        )
        keep(await page.screenshot(full_page=True), "checkout-outlook-alongside-phone-ru")
        # Told already (the bot's link after "Continue"): the QR codes at once, the outlook
        # still said, no question.
        await page.goto(yearly["checkout_url"] + "?confirmed=1")
        assert await page.is_visible("#lightning") and await page.is_visible("#outlook")
        assert await page.locator("#outlook-continue").count() == 0
        await page.close()
