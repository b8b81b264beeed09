"""The broadcasts API (#13) with the bot running against the Telegram emulator: compose with
the recipient count, bad input refused as problems that change nothing, a preview in the
admin chat, send, progress, cancel."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import inspect
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY

from satshare.bot.broadcasts import BroadcastSender
from tests.botkit import ADMIN_CHAT, BotStack, close_bot_stack, open_bot_stack, text_of
from tests.conftest import PG_URL, BTCPaySim
from tests.helpers import assert_problem


@pytest.fixture
async def bot(database_url: str, btcpay: BTCPaySim) -> AsyncIterator[BotStack]:
    stack = await open_bot_stack(database_url, btcpay)
    yield stack
    await close_bot_stack(stack)


def client(bot: BotStack) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=bot.url, headers={"Authorization": f"Bearer {bot.admin_key}"}, timeout=30
    )


async def _count_rows(api: httpx.AsyncClient) -> int:
    listed = (await api.get("/api/v1/broadcasts", params={"limit": 200})).json()
    return len(listed["items"])


BAD: list[tuple[dict[str, Any], str]] = [
    ({"text": "<script>x</script>", "segment": {"kind": "all"}}, "<script> is not allowed"),
    ({"text": "<b>open", "segment": {"kind": "all"}}, "never closed"),
    ({"text": "<b>x</i>", "segment": {"kind": "all"}}, "does not match"),
    ({"text": "x" * 4097, "segment": {"kind": "all"}}, "Telegram allows 4096"),
    (
        {"text": "x" * 1025, "photo": "https://example.com/a.jpg", "segment": {"kind": "all"}},
        "with a photo",
    ),
    ({"text": "   ", "segment": {"kind": "all"}}, "text is empty"),
    ({"text": "hi", "segment": {"kind": "everyone"}}, "kind"),
    ({"text": "hi", "segment": {"kind": "expiring"}}, "needs days"),
    ({"text": "hi", "segment": {"kind": "active", "plan_id": "nope"}}, "unknown plan 'nope'"),
    ({"text": "hi", "segment": {"kind": "never_paid", "days": 3}}, "does not take days"),
    ({"text": "hi", "segment": {"kind": "language", "language": "de"}}, "language"),
    ({"text": "hi", "segment": {"kind": "all"}, "send_at": "2026-12-01T09:00:00"}, "timezone"),
    (
        {"text": "hi", "segment": {"kind": "all"}, "buttons": [{"text": "x", "url": "ftp://a"}]},
        "http(s):// or tg://",
    ),
    ({"text": '<a href="javascript:alert(1)">x</a>', "segment": {"kind": "all"}}, "link"),
]


async def test_bad_broadcasts_are_problems_that_change_nothing(bot: BotStack) -> None:
    async with client(bot) as api:
        for body, fragment in BAD:
            problem = assert_problem(await api.post("/api/v1/broadcasts", json=body), 422)
            assert fragment in str(problem), (body, problem)
        assert await _count_rows(api) == 0
        assert_problem(await api.get("/api/v1/broadcasts/999"), 404)
        assert_problem(await api.post("/api/v1/broadcasts/999/send"), 404)
        assert_problem(await api.post("/api/v1/broadcasts/0/cancel"), 422)


async def test_compose_preview_send_and_follow_the_progress(bot: BotStack) -> None:
    alice = bot.new_user("alice")
    ivan = bot.new_user("ivan", language="ru")
    await bot.say(alice, "/start")
    await bot.say(ivan, "/start")
    async with client(bot) as api:
        created = await api.post(
            "/api/v1/broadcasts",
            json={
                "text": "News: <b>Friday Q&amp;A</b>",
                "text_ru": "Новости: <b>эфир в пятницу</b>",
                "segment": {"kind": "all"},
                "buttons": [{"text": "Details", "text_ru": "Подробнее", "url": "https://t.me/x"}],
            },
        )
        assert created.status_code == 201, created.text
        broadcast_id = created.json()["broadcast_id"]
        assert created.json()["recipients"] == 2
        ru_only = await api.post(
            "/api/v1/broadcasts",
            json={"text": "x", "segment": {"kind": "language", "language": "ru"}},
        )
        assert ru_only.json()["recipients"] == 1

        preview = await api.post(f"/api/v1/broadcasts/{broadcast_id}/preview")
        assert preview.status_code == 202, preview.text
        assert preview.json() == {"chats": [ADMIN_CHAT], "languages": ["en", "ru"]}
        await bot.notify()
        shown = [text_of(m) for m in bot.telegram.sent_to(ADMIN_CHAT)]
        assert any("News: <b>Friday Q&amp;A</b>" in text for text in shown), shown
        assert any("Новости" in text for text in shown), shown
        assert bot.telegram.sent_to(alice)[-1].text != "News: <b>Friday Q&amp;A</b>"

        draft = (await api.get(f"/api/v1/broadcasts/{broadcast_id}")).json()
        assert draft["status"] == "draft"
        sent = await api.post(f"/api/v1/broadcasts/{broadcast_id}/send")
        assert sent.status_code == 200, sent.text
        assert sent.json()["status"] == "sending"
        assert sent.json()["progress"] == {"pending": 2, "sent": 0, "blocked": 0, "failed": 0}

        sender = BroadcastSender(bot.container.db, bot.container.clock, bot.runtime.application.bot)
        [delivery] = await sender.run_due()
        assert delivery.sent == 2
        done = (await api.get(f"/api/v1/broadcasts/{broadcast_id}")).json()
        assert done["status"] == "done"
        assert done["progress"] == {"pending": 0, "sent": 2, "blocked": 0, "failed": 0}
        assert bot.last(alice).text == "News: <b>Friday Q&amp;A</b>"
        assert bot.last(ivan).text == "Новости: <b>эфир в пятницу</b>"
        assert bot.last(ivan).buttons() == [{"text": "Подробнее", "url": "https://t.me/x"}]
        assert_problem(await api.post(f"/api/v1/broadcasts/{broadcast_id}/cancel"), 409)
        again = await api.post(f"/api/v1/broadcasts/{broadcast_id}/send")
        assert again.json()["status"] == "done"


async def test_broadcasts_need_the_admin_scope(bot: BotStack) -> None:
    from satshare.apikeys import service as apikeys

    async with bot.container.db.transaction() as session:
        issued = await apikeys.create(session, "w", ("write",), bot.container.clock.now())
    async with httpx.AsyncClient(
        timeout=30, base_url=bot.url, headers={"Authorization": f"Bearer {issued.plaintext}"}
    ) as api:
        body = {"text": "x", "segment": {"kind": "all"}}
        assert_problem(await api.post("/api/v1/broadcasts", json=body), 403)


async def test_the_catalogue_job_sends_a_broadcast_on_the_telegram_queue(bot: BotStack) -> None:
    from satshare.jobqueue import JobName, Queue
    from satshare.jobs import BotJobs, catalogue

    alice = bot.new_user("alice")
    await bot.say(alice, "/start")
    [job] = [
        j
        for j in catalogue(bot.container, BotJobs(bot.runtime, bot.dispatcher))
        if j.name == JobName.SEND_BROADCASTS
    ]
    assert job.queue == Queue.TELEGRAM
    assert all(j.name != JobName.SEND_BROADCASTS for j in catalogue(bot.container, None))
    async with client(bot) as api:
        created = await api.post(
            "/api/v1/broadcasts", json={"text": "From the job", "segment": {"kind": "all"}}
        )
        broadcast_id = created.json()["broadcast_id"]
        await job.run()  # a draft is not due: nothing is sent
        assert bot.last(alice).text != "From the job"
        await api.post(f"/api/v1/broadcasts/{broadcast_id}/send")
        await job.run()
        done = (await api.get(f"/api/v1/broadcasts/{broadcast_id}")).json()
        assert done["status"] == "done"
        assert done["progress"] == {"pending": 0, "sent": 1, "blocked": 0, "failed": 0}
        assert bot.last(alice).text == "From the job"


async def _eventually(check: Any, what: str, seconds: float = 30) -> None:
    """Wait for ``check()`` to be truthy (the jobs run on their own)."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def _broadcast_runs() -> float:
    value = REGISTRY.get_sample_value(
        "satshare_job_runs_total", {"task": "send_broadcasts", "result": "succeeded"}
    )
    return value or 0.0


@pytest.mark.skipif(PG_URL is not None, reason="SQLite runs the jobs in-process")
async def test_sending_wakes_the_broadcasts_job_at_once(
    bot: BotStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its period an hour: only the wake-up after the commit can start the sender."""
    from satshare.jobs import BotJobs, run_jobs

    # (The package's ``catalogue`` is the function; the module is found by its name.)
    module = importlib.import_module("satshare.jobs.catalogue")
    monkeypatch.setattr(module, "BROADCAST_INTERVAL_SECONDS", 3600)
    alice = bot.new_user("alice")
    await bot.say(alice, "/start")
    before = _broadcast_runs()
    jobs = asyncio.create_task(run_jobs(bot.container, BotJobs(bot.runtime, bot.dispatcher)))
    try:
        await _eventually(lambda: _broadcast_runs() > before, "the job's first run")
        async with client(bot) as api:
            created = await api.post(
                "/api/v1/broadcasts", json={"text": "Woken", "segment": {"kind": "all"}}
            )
            broadcast_id = created.json()["broadcast_id"]
            await api.post(f"/api/v1/broadcasts/{broadcast_id}/send")

            async def done() -> bool:
                shown = (await api.get(f"/api/v1/broadcasts/{broadcast_id}")).json()
                return bool(shown["status"] == "done")

            await _eventually(done, "the broadcast sent")
        assert bot.last(alice).text == "Woken"
        assert _broadcast_runs() == before + 2  # the first run, then the woken one
    finally:
        jobs.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await jobs


@pytest.mark.skipif(PG_URL is None, reason="the job queue is PostgreSQL's")
async def test_sending_queues_the_broadcasts_job_on_postgresql(bot: BotStack) -> None:
    """With a job queue (inline serve, workers, a command) the commit queues the sender's
    job at once, on the telegram queue, for whichever process works it."""
    from satshare.jobqueue import JobName, Queue

    app = bot.container.job_queue
    waker = bot.container.job_waker
    assert app is not None and waker is not None
    await bot.say(bot.new_user("alice"), "/start")
    async with app.open_async():
        async with client(bot) as api:
            created = await api.post(
                "/api/v1/broadcasts", json={"text": "Queued", "segment": {"kind": "all"}}
            )
            broadcast_id = created.json()["broadcast_id"]
            await api.post(f"/api/v1/broadcasts/{broadcast_id}/send")
        await waker.settle()
        queued = await app.job_manager.list_jobs_async(task=JobName.SEND_BROADCASTS)
    assert [(job.queue, job.status) for job in queued] == [(Queue.TELEGRAM, "todo")]
