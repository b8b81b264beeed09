"""The owner's own name and words (the branding section, plans[].translations) in the bot
and on the pages; SatShare's defaults localised where the owner says nothing."""

from __future__ import annotations

import copy
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from satshare.config import ConfigError, load_settings
from tests.botkit import ADMIN_CHAT, BotStack, close_bot_stack, open_bot_stack, text_of
from tests.conftest import PLANS, BTCPaySim, close_stack, open_stack
from tests.helpers import buy, create_user

BRANDING = {
    "name": "Night Owls",
    "welcome": {"ru": "Привет от {shop}! Приглашайте друзей и получайте {share}%."},
    "support_contact": "@owls_help",
    "terms_url": "https://owls.example/terms",
}


def _plans() -> list[dict[str, Any]]:
    plans = copy.deepcopy(PLANS)
    plans[0]["translations"] = {
        "ru": {"title": "Премиум на месяц", "description": "Закрытый канал на месяц"}
    }
    return plans


@pytest.fixture
async def branded_bot(database_url: str, btcpay: BTCPaySim) -> AsyncIterator[BotStack]:
    stack = await open_bot_stack(
        database_url,
        btcpay,
        telegram={"support_contact": None},
        branding=BRANDING,
        plans=_plans(),
    )
    yield stack
    await close_bot_stack(stack)


async def test_the_bot_speaks_with_the_owners_name_and_words(branded_bot: BotStack) -> None:
    bot = branded_bot
    ivan = bot.new_user("ivan", language="ru")
    (welcome,) = await bot.say(ivan, "/start")
    assert "Привет от Night Owls! Приглашайте друзей и получайте 50%." in text_of(welcome)
    anna = bot.new_user("anna")
    (welcome,) = await bot.say(anna, "/start")
    assert "Welcome to Night Owls!" in text_of(welcome)  # no English text given: ours

    await bot.press(ivan, bot.last(ivan), "m:plans")
    plans = bot.last(ivan)
    assert "<b>Премиум на месяц</b>\nЗакрытый канал на месяц" in text_of(plans)  # noqa: RUF001
    first = plans.buttons()[0]["text"]
    assert first.startswith("Премиум на месяц: 50\u00a0000") and first.endswith("/ 30 дней")
    await bot.press(anna, bot.last(anna), "m:plans")
    assert "<b>Premium, 30 days</b>\nThe private channel for a month" in text_of(bot.last(anna))

    (support,) = await bot.say(ivan, "/paysupport")
    assert "@owls_help" in text_of(support)
    (terms,) = await bot.say(anna, "/terms")
    assert "https://owls.example/terms" in text_of(terms)


async def test_the_default_support_contact_is_in_the_users_language(
    database_url: str, btcpay: BTCPaySim
) -> None:
    bot = await open_bot_stack(database_url, btcpay, telegram={"support_contact": None})
    try:
        ivan, anna = bot.new_user("ivan", language="ru"), bot.new_user("anna")
        (support,) = await bot.say(ivan, "/paysupport")
        assert "Напишите владельцу канала" in text_of(support)
        (support,) = await bot.say(anna, "/paysupport")
        assert "Contact the channel owner" in text_of(support)
    finally:
        await close_bot_stack(bot)


async def test_the_pages_carry_the_owners_name_and_plan_wording(
    database_url: str, btcpay: BTCPaySim
) -> None:
    stack = await open_stack(database_url, btcpay, branding=BRANDING, plans=_plans())
    try:
        buyer = await create_user(stack.client, "buyer")
        order = await buy(stack.client, buyer["user_id"], "monthly")
        html = {"Accept": "text/html"}
        async with httpx.AsyncClient(timeout=30, base_url=stack.url, headers=html) as client:
            russian = (await client.get(order["invoice"]["checkout_url"] + "?lang=ru")).text
            assert "<h1>Премиум на месяц</h1>" in russian
            assert "Закрытый канал на месяц" in russian
            assert "Доступ на 30 дней." in russian  # plural form
            assert "50\u00a0000 сат." in russian  # Babel's Russian grouping
            assert 'id="brand" href="/">Night Owls</a>' in russian
            assert "Напишите @owls_help." in russian
            assert 'href="https://owls.example/terms"' in russian
            english = (await client.get(order["invoice"]["checkout_url"] + "?lang=en")).text
            assert "<h1>Premium, 30 days</h1>" in english and "50,000 sats" in english
            for path in ("/", "/transparency"):
                page = (await client.get(path)).text
                assert "Night Owls" in page and "@owls_help" in page, path
    finally:
        await close_stack(stack)


def test_a_welcome_naming_an_unknown_field_is_refused_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "satshare.yaml"
    path.write_text("branding:\n  name: Owls\n  welcome:\n    en: 'Hi {name}!'\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(str(path))
    (problem,) = caught.value.problems
    assert problem.startswith(f"config error: branding.welcome ({path} line 4)"), problem
    assert "only {shop} and {share}" in problem and "'name'" in problem


def test_the_older_telegram_keys_still_set_support_and_terms(tmp_path: Path) -> None:
    path = tmp_path / "satshare.yaml"
    path.write_text(
        "telegram:\n  support_contact: '@old'\n  terms_url: https://old.example/terms\n"
    )
    branding = load_settings(str(path)).branding
    assert (branding.support_contact, branding.terms_url) == ("@old", "https://old.example/terms")


async def test_stars_invoices_and_the_report_chart_carry_the_owners_name(
    database_url: str, btcpay: BTCPaySim
) -> None:
    plans = _plans()
    plans[0]["price_stars"] = 500  # 30 days: sold as a Telegram Stars subscription link
    plans[1]["price_stars"] = 5_000  # 365 days: a one-off Stars invoice
    bot = await open_bot_stack(
        database_url,
        btcpay,
        branding=BRANDING,
        plans=plans,
        stars={"enabled": True, "sats_per_star": 20},
    )
    try:
        ivan = bot.new_user("ivan", language="ru")
        await bot.say(ivan, "/start")
        await bot.press(ivan, bot.last(ivan), "m:plans")
        await bot.press(ivan, bot.last(ivan), "buy:monthly")
        await bot.press(ivan, bot.last(ivan), "pay:stars:monthly")
        link = next(b["url"] for b in bot.last(ivan).buttons() if "url" in b)
        spec = bot.telegram.invoice_links[link]
        assert spec["title"] == "Премиум на месяц"
        assert spec["description"] == "Закрытый канал на месяц\n30 дней доступа от Night Owls."
        assert "Премиум на месяц: 500 Stars в месяц" in text_of(bot.last(ivan))

        anna = bot.new_user("anna")
        await bot.say(anna, "/start")
        await bot.press(anna, bot.last(anna), "m:plans")
        await bot.press(anna, bot.last(anna), "buy:yearly")
        await bot.press(anna, bot.last(anna), "pay:stars:yearly")
        invoice = bot.last(anna).invoice
        assert invoice is not None
        assert invoice["title"] == "Premium, 365 days"
        assert invoice["description"] == "365 days of access from Night Owls."  # no description
        assert "SatShare" not in str(spec) + str(invoice)

        month = datetime.now(UTC).strftime("%Y-%m")
        before = len(bot.telegram.sent_to(ADMIN_CHAT))
        bot.telegram.user_sends(ADMIN_CHAT, "/report")
        _, chart, _ = (await bot.wait_messages(ADMIN_CHAT, before + 3))[before:]
        image = Image.open(io.BytesIO(chart.photo_bytes or b""))
        assert image.info["Title"] == f"Night Owls {month}: revenue and commissions per day"
        admin = {"Authorization": f"Bearer {bot.admin_key}"}
        async with httpx.AsyncClient(timeout=30, base_url=bot.url, headers=admin) as api:
            svg = (await api.get("/api/v1/reports/chart", params={"format": "svg"})).text
        assert f"<dc:title>Night Owls {month}: revenue and commissions per day" in svg
    finally:
        await close_bot_stack(bot)
