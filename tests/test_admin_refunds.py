"""Refunds from the admin panel on the Telegram Stars rail (#12): the panel and the API share
one refund flow (``payments.flows.refund``) and the running bot returns the Stars through the
Bot API emulator; the reversal and the panel's audit row commit together."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from satshare.audit import repository as audit_repository
from satshare.ledger.models import Entry
from satshare.ledger.verify import verify_ledger
from satshare.payments.models import Invoice
from satshare.staff.models import Role
from tests.adminkit import Panel, admin_user, browser_login
from tests.botkit import BotStack, close_bot_stack, open_bot_stack, text_of, wait_for
from tests.browser import offline_context
from tests.conftest import BTCPaySim
from tests.helpers import wait_until

#: Read at import, as in test_admin_browser.py: where to keep the screenshots.
SCREENSHOTS = os.environ.get("SATSHARE_SCREENSHOTS")

PLANS: list[dict[str, Any]] = [
    {
        "id": "yearly",
        "title": "Premium, 365 days",
        "price_stars": 5_000,
        "duration_days": 365,
        "providers": ["stars"],
        "channels": [-1001000000001],
    },
]


@pytest.fixture
async def bot(database_url: str, btcpay: BTCPaySim) -> AsyncIterator[BotStack]:
    stack = await open_bot_stack(
        database_url, btcpay, plans=PLANS, stars={"enabled": True, "sats_per_star": 20}
    )
    yield stack
    await close_bot_stack(stack)


async def _settled(bot: BotStack) -> bool:
    async with bot.container.db.reading() as session:
        rows = (await session.execute(select(Invoice.status))).scalars().all()
    return [s.value for s in rows] == ["settled"]


async def stars_sale(bot: BotStack) -> tuple[int, int, Invoice, str]:
    """Carol, referred by Alice, buys the yearly plan for 5,000 Stars in the bot: (Alice's
    Telegram id, Carol's, the settled invoice, the Telegram charge id)."""
    alice = bot.new_user("alice")
    await bot.say(alice, "/start")
    code = (await bot.user_row(alice)).referral_code
    carol = bot.new_user("carol")
    await bot.say(carol, f"/start ref_{code}")
    await bot.press(carol, bot.last(carol), "Plans")
    await bot.press(carol, bot.last(carol), "buy:yearly")
    paid = await bot.telegram.user_pays(carol, message_id=bot.last(carol).message_id)
    await wait_until(lambda: _settled(bot))
    async with bot.container.db.reading() as session:
        invoice = (await session.execute(select(Invoice))).scalar_one()
    return alice, carol, invoice, paid["charge_id"]


def admin_api(bot: BotStack) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        timeout=30, base_url=bot.url, headers={"Authorization": f"Bearer {bot.admin_key}"}
    )


@pytest.mark.browser
async def test_a_stars_payment_is_refunded_from_the_panel_in_chromium(
    bot: BotStack, tmp_path: Path
) -> None:
    alice, carol, invoice, charge = await stars_sale(bot)
    await admin_user(bot, "olga", Role.OWNER)
    alice_id = (await bot.user_row(alice)).id
    folder = Path(SCREENSHOTS or tmp_path)
    os.makedirs(folder, exist_ok=True)
    async with admin_api(bot) as api:
        # 5,000 Stars at 20 sats each, half of it to Alice.
        assert (await api.get(f"/api/v1/users/{alice_id}")).json()["balance_sats"] == 50_000
        for width, language in ((390, "ru"), (1280, "en")):
            async with offline_context(width) as (context, outside):
                page = await context.new_page()
                await browser_login(page, bot.url, "olga")
                await page.wait_for_url(f"{bot.url}/admin/")
                await page.goto(f"{bot.url}/admin/desk/invoices?rail=stars&lang={language}")
                row = page.locator(f"#invoice-{invoice.id}")
                await page.screenshot(path=folder / f"stars-refund-{language}-{width}.png")
                overflow = await page.evaluate(
                    "document.documentElement.scrollWidth - window.innerWidth"
                )
                assert overflow <= 1, (width, overflow)
                if width == 390:
                    # The Russian phone page offers the same action, in Russian.
                    assert await row.locator("button", has_text="Вернуть звёзды").count() == 1
                    assert outside == []
                    continue
                # Stars need no note: nothing was paid back by hand.
                assert await row.locator("input[name=note]").count() == 0
                page.once("dialog", lambda dialog: dialog.accept())
                await row.locator("button", has_text="Refund Stars").click()
                notices = await page.inner_text(".ss-notices")
                assert f"Invoice {invoice.id} refunded" in notices, notices
                await page.screenshot(path=folder / "stars-refunded-en-1280.png")
                assert "refunded" in await row.inner_text()
                assert await row.locator("button").count() == 0
                assert outside == []
        # Telegram returned the Stars to Carol.
        assert bot.telegram.charges[charge]["refunded"] is True
        # The sale is reversed in the ledger, Alice's commission with it.
        assert (await api.get(f"/api/v1/users/{alice_id}")).json()["balance_sats"] == 0
        async with bot.container.db.reading() as session:
            entries = (await session.execute(select(Entry).order_by(Entry.id))).scalars().all()
        assert [e.kind for e in entries] == ["stars_sale", "reversal"]
        assert entries[1].reverses_entry_id == entries[0].id
        assert entries[1].created_by == "admin:olga"
        reversal = (await api.get(f"/api/v1/transactions/{entries[1].id}")).json()
        original = (await api.get(f"/api/v1/transactions/{entries[0].id}")).json()
        assert sorted((p["account"], -p["amount_sats"]) for p in reversal["postings"]) == sorted(
            (p["account"], p["amount_sats"]) for p in original["postings"]
        )
        # The paid time is taken back: no active subscription is left.
        active = (await api.get("/api/v1/subscriptions", params={"status": "active"})).json()
        assert active["items"] == []
        # A second refund is refused.
        again = await api.post(f"/api/v1/invoices/{invoice.id}/refund")
        assert again.status_code == 409
    # Carol is told in the bot, as after a refund through the API.
    await bot.notify()
    await wait_for(lambda: "refunded" in text_of(bot.last(carol)))
    # One audit row, from the panel, written with the reversal.
    async with bot.container.db.reading() as session:
        events = await audit_repository.search(session, action="invoice.refund")
    assert [(e.channel.value, e.actor, e.target) for e in events] == [
        ("panel", "olga", f"invoice:{invoice.id}")
    ]
    assert events[0].after == {"status": "refunded", "reversal_entry": entries[1].id}


async def test_a_stars_refund_that_telegram_refuses_or_no_bot_can_make_changes_nothing(
    bot: BotStack,
) -> None:
    _, _, invoice, charge = await stars_sale(bot)
    await admin_user(bot, "olga", Role.OWNER)
    api_app = bot.server.server.config.app
    async with Panel(bot) as panel:
        await panel.login("olga")
        # Telegram does not know the charge: it refuses, and the invoice is paid again.
        known = bot.telegram.charges.pop(charge)
        refused = await panel.post(f"/admin/desk/invoices/{invoice.id}/refund")
        assert refused.status_code == 303
        shown = await panel.notices("/admin/desk/invoices")
        assert "Telegram refused the refund: Charge_not_found" in shown
        bot.telegram.charges[charge] = known
        # No bot in this process (not started yet): said so, nothing changes.
        api_app.state.bot = None
        try:
            await panel.post(f"/admin/desk/invoices/{invoice.id}/refund")
            assert "the Telegram bot is not running" in await panel.notices("/admin/desk/invoices")
        finally:
            api_app.state.bot = bot.runtime
        async with bot.container.db.reading() as session:
            status = (await session.execute(select(Invoice.status))).scalar_one()
            kinds = (await session.execute(select(Entry.kind))).scalars().all()
            events = await audit_repository.search(session, action="invoice.refund")
        assert (status.value, list(kinds), list(events)) == ("settled", ["stars_sale"], [])
        assert known["refunded"] is False
        # Refunded at Telegram already (a crash before our commit): the retry completes it.
        known["refunded"] = True
        await panel.post(f"/admin/desk/invoices/{invoice.id}/refund")
        assert f"Invoice {invoice.id} refunded" in await panel.notices("/admin/desk/invoices")
    await bot.container.sealer.flush()
    async with bot.container.db.reading() as session:
        assert (await verify_ledger(session)).ok
        kinds = (await session.execute(select(Entry.kind).order_by(Entry.id))).scalars().all()
    assert list(kinds) == ["stars_sale", "reversal"]
