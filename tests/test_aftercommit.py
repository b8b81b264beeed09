"""AfterCommit: what a committed transaction produced decides who is woken, and the outbox's
doorbell lets a listener started later hear every ring (coalesced)."""

from __future__ import annotations

import asyncio

import pytest

from satshare.aftercommit import ENTRIES_AND_MESSAGES, AfterCommit, Doorbell, Produced
from satshare.config import Settings
from satshare.sandbox import SANDBOX_STORE_ID, start_sandbox


def _notifier(*, instant: bool) -> tuple[AfterCommit, list[str]]:
    woken: list[str] = []
    notifier = AfterCommit(
        seal=lambda: woken.append("seal"),
        send_payouts=lambda: woken.append("payouts"),
        outbox=Doorbell(),
        entries_may_queue_payouts=instant,
    )
    return notifier, woken


@pytest.mark.parametrize(
    ("produced", "instant", "expected"),
    [
        (Produced(ledger=True), False, ["seal"]),
        (Produced(ledger=True), True, ["seal", "payouts"]),
        (Produced(outbox=True), True, []),
        (Produced(payouts=True), False, ["payouts"]),
        (Produced(), True, []),
    ],
)
def test_each_product_wakes_its_worker(
    produced: Produced, instant: bool, expected: list[str]
) -> None:
    notifier, woken = _notifier(instant=instant)
    notifier.committed(produced)
    assert woken == expected


async def test_the_outbox_bell_rings_for_messages_only_and_coalesces() -> None:
    notifier, _ = _notifier(instant=False)
    bell = notifier.outbox
    notifier.committed(Produced(ledger=True))
    assert not bell.rung
    notifier.committed(ENTRIES_AND_MESSAGES)
    notifier.committed(ENTRIES_AND_MESSAGES)
    assert bell.rung
    await bell.wait()  # rung before anyone listened: heard at once
    assert not bell.rung  # two rings, one wake-up
    listener = asyncio.create_task(bell.wait())
    await asyncio.sleep(0)
    assert not listener.done()
    notifier.committed(Produced(outbox=True))
    await listener  # a waiting listener wakes on the next ring


async def test_sandbox_overlay_configures_the_ordinary_adapters() -> None:
    settings = Settings(server={"host": "127.0.0.1", "port": 8123})
    assert settings.sandbox_mode and settings.payout_provider == "btcpay"
    sandbox = start_sandbox(settings)
    assert sandbox is not None
    overlay = sandbox.settings
    assert overlay.btcpay.configured and overlay.btcpay.store_id == SANDBOX_STORE_ID
    assert overlay.btcpay.url == "http://127.0.0.1:8123/sim/btcpay"
    # What sandbox mode chose stays chosen once BTCPay is configured.
    assert (overlay.payout_provider, overlay.payout_network) == ("btcpay", "regtest")
    assert overlay.telegram.configured and sandbox.telegram is not None
    assert overlay.telegram.api_base_url == "http://127.0.0.1:8123/sim/telegram"
    # The operator's settings are left as they were.
    assert not settings.btcpay.configured and not settings.telegram.configured
    await sandbox.aclose()


def test_no_sandbox_when_a_processor_is_configured() -> None:
    settings = Settings(
        btcpay={
            "url": "https://btcpay.example.com",
            "api_key": "k" * 40,
            "store_id": "store",
            "webhook_secret": "s" * 32,
        }
    )
    assert start_sandbox(settings) is None


async def test_the_sandbox_lowers_the_payout_minimum_unless_one_is_chosen() -> None:
    """One demo sale earns the affiliate 5,000 sats: enough to try a withdrawal."""
    from satshare.sandbox import SANDBOX_MIN_PAYOUT_SATS

    default = start_sandbox(Settings())
    chosen = start_sandbox(Settings(payouts={"min_sats": 20_000}))
    assert default is not None and chosen is not None
    assert Settings().payouts.min_sats == 10_000
    assert default.settings.payouts.min_sats == SANDBOX_MIN_PAYOUT_SATS == 1_000
    assert chosen.settings.payouts.min_sats == 20_000
    await default.aclose()
    await chosen.aclose()
