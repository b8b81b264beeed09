"""examples/website against a live SatShare in sandbox mode (#14): ``satshare serve`` in a
child process, the example site on loopback, and Chromium walking through it as a buyer
invited by an affiliate: the plans, sign-up with ``?ref=``, "Pay" to SatShare's checkout,
the sandbox payment, and the site's webhook receiver marking the customer paid."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

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
