"""One process sending through SatShare's bot as ``serve`` and ``satshare worker`` build it:
the container from the configuration (``SATSHARE_CONFIG``), its shared Telegram rate, the
bot's rate limiter. ``test_telegram_rate.py`` starts several at once.

    python -m tests.telegram_sender FIRST_CHAT COUNT

Prints ``ready`` once the bot is initialised, waits for a line on its standard input (so
that every process starts sending at the same moment), sends one message to each of ``COUNT`` chats
from ``FIRST_CHAT`` on (16 at a time, as a broadcast's workers do) and prints one JSON line:
what was sent, the 429s PTB gave up on, and this process's rate-limit metrics.
"""

from __future__ import annotations

import asyncio
import json
import sys

from prometheus_client.parser import text_string_to_metric_families
from telegram.error import RetryAfter

from satshare import metrics
from satshare.bot.app import build_runtime
from satshare.config import load_settings
from satshare.container import build_container

CONCURRENT = 16


async def main(first_chat: int, count: int) -> dict[str, object]:
    container = build_container(load_settings())
    runtime = build_runtime(
        container.bot_services(),
        token=container.telegram_token,
        api_base_url=container.telegram_api_base_url,
    )
    await runtime.application.initialize()
    bot = runtime.application.bot
    gate = asyncio.Semaphore(CONCURRENT)
    outcomes: dict[str, int] = {"sent": 0, "too_many_requests": 0}

    async def send(chat_id: int) -> None:
        async with gate:
            try:
                await bot.send_message(chat_id, f"hello {chat_id}")
            except RetryAfter:
                outcomes["too_many_requests"] += 1
            else:
                outcomes["sent"] += 1

    try:
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        await asyncio.gather(*(send(first_chat + n) for n in range(count)))
    finally:
        await runtime.application.shutdown()
        await container.aclose()
    requests: dict[str, int] = {}
    tokens: dict[str, int] = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for sample in family.samples:
            if sample.name == "satshare_telegram_rate_requests_total":
                requests[sample.labels["outcome"]] = int(sample.value)
            elif sample.name == "satshare_telegram_rate_tokens_total":
                tokens[sample.labels["use"]] = int(sample.value)
    return {**outcomes, "rate_requests": requests, "rate_tokens": tokens}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))), flush=True)
