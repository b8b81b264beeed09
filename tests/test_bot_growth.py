"""Promo codes and free trials in the bot (#13), in English and Russian: the deep link and
"I have a promo code" (a bad code gets its reason), the invoice with the discount, and a
free trial with the channel links (once)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from satshare.bot import texts
from satshare.i18n import translate
from tests.botkit import BotStack, close_bot_stack, open_bot_stack, text_of, wait_for
from tests.conftest import PLANS, BTCPaySim


@pytest.fixture
async def bot(database_url: str, btcpay: BTCPaySim) -> AsyncIterator[BotStack]:
    plans = [{**PLANS[0], "trial_days": 7}, PLANS[1]]
    stack = await open_bot_stack(database_url, btcpay, plans=plans)
    async with httpx.AsyncClient(
        timeout=30, base_url=stack.url, headers={"Authorization": f"Bearer {stack.admin_key}"}
    ) as api:
        for body in (
            {"code": "SPRING20", "kind": "percent", "value": 20, "plans": ["monthly"]},
            {"code": "OLD", "kind": "percent", "value": 5, "valid_until": "2020-01-01T00:00:00Z"},
        ):
            assert (await api.post("/api/v1/promo-codes", json=body)).status_code == 201
    yield stack
    await close_bot_stack(stack)


def fragment(language: str, message: str) -> str:
    return translate(language, message).split("{")[0].strip()


async def test_deep_link_code_discounts_the_invoice(bot: BotStack) -> None:
    alice = bot.new_user("alice")
    welcome, accepted = await bot.say(alice, "/start promo_spring20", replies=2)
    assert fragment("en", texts.WELCOME) in text_of(welcome)
    assert "Promo code SPRING20 accepted: 20% off" in text_of(accepted)
    assert "It applies to: monthly." in text_of(accepted)
    labels = [b["text"] for b in accepted.buttons()]
    assert "Free trial: Premium, 30 days, 7 days" in labels and "I have a promo code" in labels
    before = len(bot.telegram.sent_to(alice))
    await bot.press(alice, accepted, "buy:monthly")
    await bot.wait_messages(alice, before + 1)
    invoice = text_of(bot.last(alice))
    assert "40,000" in invoice, invoice
    assert "Promo code SPRING20: 10,000 sats off (the price was 50,000 sats)." in invoice


async def test_typed_codes_in_russian_and_a_refusal_with_its_reason(bot: BotStack) -> None:
    ivan = bot.new_user("ivan", language="ru")
    (menu,) = await bot.say(ivan, "/start")
    await bot.press(ivan, menu, "m:plans")
    plans_screen = bot.last(ivan)
    await bot.press(ivan, plans_screen, "promo:ask")
    await wait_for(lambda: "Пришлите промокод" in text_of(bot.last(ivan)))
    (bad,) = await bot.say(ivan, "old")
    assert text_of(bad) == translate(
        "ru", texts.PROMO_REFUSED, code="OLD", reason=translate("ru", texts.PROMO_EXPIRED)
    )
    assert text_of(bad).startswith("Промокод OLD нельзя использовать")
    (unknown,) = await bot.say(ivan, "nosuch")
    assert "такого кода нет" in text_of(unknown)
    (good,) = await bot.say(ivan, "Spring20")
    assert "Промокод SPRING20 принят: скидка 20%" in text_of(good)
    # Not for the yearly plan: the reason, and the code is forgotten.
    await bot.press(ivan, good, "buy:yearly")
    await wait_for(lambda: "не подходит к этому тарифу" in text_of(bot.last(ivan)))


async def test_a_free_trial_once_with_the_channel_links(bot: BotStack) -> None:
    for name, language, started in (("bob", "en", "Free trial:"), ("olga", "ru", "Пробный")):
        user = bot.new_user(name, language=language)
        (menu,) = await bot.say(user, "/start")
        await bot.press(user, menu, "m:plans")
        await bot.press(user, bot.last(user), "trial:monthly")
        await bot.notify()
        await wait_for(lambda u=user, s=started: text_of(bot.last(u)).startswith(s))  # type: ignore[misc]
        links = [b for b in bot.last(user).buttons() if "url" in b]
        assert links, bot.last(user).buttons()
        row = await bot.user_row(user)
        async with httpx.AsyncClient(
            timeout=30, base_url=bot.url, headers={"Authorization": f"Bearer {bot.admin_key}"}
        ) as api:
            subs = (await api.get("/api/v1/subscriptions", params={"user_id": row.id})).json()
        assert [s["status"] for s in subs["items"]] == ["active"]
        assert subs["items"][0]["latest_invoice"] is None
        # The plan screen no longer offers it.
        (screen,) = await bot.say(user, "/plans")
        labels = [b["text"] for b in screen.buttons()]
        assert not any(label.startswith(("Free trial", "Бесплатно")) for label in labels)
