"""examples/website against a live SatShare in sandbox mode (#14): ``satshare serve`` in a
child process, the example site on loopback, and Chromium walking through it as a buyer
invited by an affiliate: the plans, sign-up with ``?ref=``, "Pay" to SatShare's checkout,
the sandbox payment, and the site's webhook receiver marking the customer paid."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from tests.browser import chromium
from tests.helpers import wait_until
from tests.servers import free_port, start_server

EXAMPLE = Path(__file__).parents[1] / "examples" / "website" / "app.py"
pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("website_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _satshare(env: dict[str, str], cwd: Path, *args: str) -> str:
    done = subprocess.run(  # noqa: S603 - our own CLI
        [sys.executable, "-m", "satshare", *args],
        env=env,
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.stdout


@contextlib.contextmanager
def _sandbox(env: dict[str, str], cwd: Path, port: int) -> Iterator[str]:
    """``satshare serve`` in sandbox mode; yields the admin key its banner printed."""
    log = cwd / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603 - our own CLI
            [sys.executable, "-m", "satshare", "serve", "--port", str(port)],
            env=env,
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        key = None
        while time.monotonic() < deadline and key is None:
            assert process.poll() is None, log.read_text()[-3000:]
            found = re.search(r"shown once\): (ss_\S+)", log.read_text())
            key = found.group(1) if found else None
            time.sleep(0.1)
        assert key is not None, "no sandbox key in: " + log.read_text()[-3000:]
        yield key
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.mark.browser
async def test_the_website_example_sells_through_a_live_sandbox(tmp_path: Path) -> None:
    shots = Path(os.environ.get("SATSHARE_SCREENSHOTS", tmp_path))
    port = free_port()
    satshare_url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "SATSHARE_DATABASE__URL": f"sqlite+aiosqlite:///{tmp_path / 'satshare.db'}",
        "SATSHARE_LOG_LEVEL": "warning",
    }
    env.pop("SATSHARE_CONFIG", None)
    _satshare(env, tmp_path, "migrate")
    created = _satshare(
        env, tmp_path, "api-key", "create", "--name", "website", "--scopes", "write",
        "--platform", "website",
    )  # fmt: skip
    website_key = created.strip().splitlines()[-1]
    assert "bound to platform website" in created
    with _sandbox(env, tmp_path, port) as admin_key:
        admin = httpx.AsyncClient(
            base_url=satshare_url, headers={"Authorization": f"Bearer {admin_key}"}, timeout=30
        )
        site_port = free_port()
        site_url = f"http://127.0.0.1:{site_port}"
        endpoint = await admin.post(
            "/api/v1/webhook-endpoints",
            json={"url": f"{site_url}/webhooks/satshare", "events": ["payment.settled"]},
        )
        assert endpoint.status_code == 201, endpoint.text
        example = _example()
        site = example.Site(
            satshare_url=satshare_url,
            api_key=website_key,
            webhook_secret=endpoint.json()["secret"],
            database=str(tmp_path / "site.db"),
        )
        server = await start_server(example.build_app(site), port=site_port)
        affiliate = await admin.post(
            "/api/v1/users", json={"username": "alice", "platform": "telegram"}
        )
        code = affiliate.json()["referral_code"]
        try:
            async with chromium() as browser:
                page = await browser.new_page(viewport={"width": 1280, "height": 900})
                await page.goto(f"{site_url}/?ref={code}")
                assert await page.locator(".plan").count() == 2
                assert code in await page.inner_text("#referred")
                await page.screenshot(path=str(shots / "website-home-1280.png"), full_page=True)
                await page.set_viewport_size({"width": 390, "height": 844})
                await page.screenshot(path=str(shots / "website-home-390.png"), full_page=True)
                await page.fill("#name", "Bob <b>")
                await page.click("#signup")
                await page.wait_for_url(re.compile(r"/account/\d+$"))
                assert "Hello, Bob <b>" in await page.inner_text("h1")  # escaped, not markup
                assert await page.inner_text("#status") == "Not paid yet."
                account_url = page.url
                await page.click("button.pay >> nth=0")
                await page.wait_for_url(re.compile(re.escape(satshare_url) + r"/pay/inv_"))
                await page.click("#simulate")
                await page.wait_for_selector("#done:not([hidden])", timeout=20_000)

                async def paid() -> bool:
                    await page.goto(account_url)
                    return "Paid" in await page.inner_text("#status")

                await wait_until(paid, timeout=30, interval=0.5)
                await page.screenshot(path=str(shots / "website-paid-390.png"), full_page=True)
                await page.set_viewport_size({"width": 1280, "height": 900})
                await page.screenshot(path=str(shots / "website-paid-1280.png"), full_page=True)
        finally:
            await server.stop()
        # SatShare's side: a website user, referred by alice, who earned her share.
        users = (await admin.get("/api/v1/users", params={"platform": "website"})).json()
        (bob,) = users["items"]
        assert bob["referrer_id"] == affiliate.json()["user_id"]
        alice = (await admin.get(f"/api/v1/users/{affiliate.json()['user_id']}")).json()
        assert alice["balance_sats"] == 5_000  # half of the 10,000 sat demo plan
        log = await admin.get(
            f"/api/v1/webhook-endpoints/{endpoint.json()['endpoint_id']}/deliveries"
        )
        assert [d["status"] for d in log.json()["items"]] == ["delivered"]
        await admin.aclose()


class _FakeSatShare:
    """Just enough of POST /api/v1/users and GET /api/v1/subscriptions/types: one user per
    (platform, external_id), as SatShare keeps them (a second is 409)."""

    def __init__(self) -> None:
        self.users: dict[str, int] = {}
        self.refuse: tuple[int, str] | None = None

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/subscriptions/types":
            return httpx.Response(200, json=[])
        body = json.loads(request.content)
        if self.refuse is not None or request.url.path == "/api/v1/subscriptions":
            status, detail = self.refuse or (502, "could not create the invoice at btcpay")
            return httpx.Response(status, json={"status": status, "detail": detail})
        if body["external_id"] in self.users:
            existing = self.users[body["external_id"]]
            return httpx.Response(409, json={"status": 409, "existing_user_id": existing})
        self.users[body["external_id"]] = len(self.users) + 1
        return httpx.Response(
            201, json={"user_id": len(self.users), "referral_code": "k7m2xq9p", "referrer_id": None}
        )


def _site_on(example: ModuleType, fake: _FakeSatShare, database: Path) -> Any:
    site = example.Site("http://satshare.test", "ss_key", "whsec_" + "A" * 44, str(database))
    site.satshare = httpx.AsyncClient(
        base_url="http://satshare.test", transport=httpx.MockTransport(fake)
    )
    return site


async def test_a_new_site_database_signs_up_against_a_satshare_that_has_its_old_customers(
    tmp_path: Path,
) -> None:
    # The site's row numbers start again at 1 with a new SITE_DATABASE (another directory, a
    # reset); SatShare still has the old site's customers.
    example, fake = _example(), _FakeSatShare()
    for run in ("first", "second"):
        site = _site_on(example, fake, tmp_path / f"{run}.db")
        transport = httpx.ASGITransport(app=example.build_app(site))
        async with httpx.AsyncClient(transport=transport, base_url="http://site") as browser:
            answer = await browser.post("/signup", data={"name": f"{run} customer"})
        assert answer.status_code == 303, answer.text
        assert answer.headers["location"] == "/account/1"
    assert len(fake.users) == 2


async def test_a_refused_sign_up_is_said_on_the_form_and_keeps_no_customer(
    tmp_path: Path,
) -> None:
    example, fake = _example(), _FakeSatShare()
    fake.refuse = (503, "the database is not reachable")
    site = _site_on(example, fake, tmp_path / "site.db")
    transport = httpx.ASGITransport(app=example.build_app(site))
    async with httpx.AsyncClient(transport=transport, base_url="http://site") as browser:
        answer = await browser.post("/signup", data={"name": "Bob"})
    assert answer.status_code == 200
    assert "the database is not reachable" in answer.text
    with sqlite3.connect(tmp_path / "site.db") as db:
        assert db.execute("SELECT count(*) FROM customers").fetchone() == (0,)


async def test_an_invoice_satshare_cannot_make_is_said_on_the_account_page(
    tmp_path: Path,
) -> None:
    example, fake = _example(), _FakeSatShare()
    site = _site_on(example, fake, tmp_path / "site.db")
    transport = httpx.ASGITransport(app=example.build_app(site))
    async with httpx.AsyncClient(transport=transport, base_url="http://site") as browser:
        assert (await browser.post("/signup", data={"name": "Bob"})).status_code == 303
        answer = await browser.post("/account/1/pay", data={"plan": "demo-monthly"})
    assert answer.status_code == 200
    assert "No invoice this time: could not create the invoice at btcpay" in answer.text
