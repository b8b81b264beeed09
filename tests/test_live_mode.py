"""Live mode (a processor configured) never exposes the sandbox: with no Telegram token the
bot is simply off, and the emulators and the sandbox chat do not exist (issue: the sandbox
was open in production and let anyone create Telegram users and real invoices)."""

from __future__ import annotations

from tests.conftest import Stack


async def test_no_sandbox_surfaces_with_a_processor_and_no_token(stack: Stack) -> None:
    settings = stack.container.settings
    assert not settings.sandbox_mode and not settings.telegram.configured
    assert not settings.telegram_sandbox and not settings.bot_enabled
    assert stack.container.sandbox is None  # no emulator at all: BTCPay, rates, Telegram
    before = await stack.counts()
    async with stack.anonymous() as anonymous:
        for method, path in [
            ("GET", "/sandbox"),
            ("GET", "/sandbox/api/users"),
            ("POST", "/sandbox/api/users"),
            ("GET", "/sim/telegram/"),
            ("POST", "/sim/telegram/bot123:abc/getMe"),
            ("GET", "/sim/btcpay/api/v1/health"),
            ("GET", "/.well-known/lnurlp/alice"),
        ]:
            answer = await anonymous.request(method, path)
            assert answer.status_code == 404, (method, path, answer.status_code)
        # The Telegram webhook answers 404 too: no bot is running.
        hook = await anonymous.post("/telegram/webhook", json={"update_id": 1})
        assert hook.status_code == 404
    assert await stack.counts() == before


async def test_root_says_live_mode(stack: Stack) -> None:
    welcome = (await stack.client.get("/")).json()
    assert welcome["mode"] != "sandbox"
    assert "sandbox" not in welcome
