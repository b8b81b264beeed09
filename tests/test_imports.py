"""A process loads only what its configuration uses (#15): idle memory and start-up time are
mostly imports, so a heavy library imported at the top of a module every process reaches
would silently undo the gain. Each case runs the real command in a child interpreter and
reads its ``sys.modules`` (no timing: the modules themselves are the assertion)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PG_URL
from tests.servers import free_port

pytestmark = pytest.mark.integration

#: Runs ``satshare <args>`` and writes the names of the modules loaded (sys.modules, less
#: the names blocked with None) to $MODULES_TO: at exit
#: for a command, once /health answers (and the jobs had a moment to start) for ``serve``,
#: which it then stops as Ctrl+C would.
DRIVER = """
import atexit, json, os, signal, sys, threading, time, urllib.request

def dump():
    with open(os.environ["MODULES_TO"], "w") as out:
        json.dump(sorted(k for k, v in list(sys.modules.items()) if v is not None), out)

if "serve" in sys.argv:
    def watch():
        url = "http://127.0.0.1:%s/health" % sys.argv[sys.argv.index("--port") + 1]
        for _ in range(600):
            try:
                urllib.request.urlopen(url, timeout=1)
                break
            except Exception:
                time.sleep(0.1)
        time.sleep(1)
        dump()
        os.kill(os.getpid(), signal.SIGINT)
    threading.Thread(target=watch, daemon=True).start()
else:
    atexit.register(dump)
sys.argv = ["satshare", *sys.argv[1:]]
from satshare.cli import main
main()
"""

#: Never in a process that does not use them, whatever the configuration says.
NEVER = ("matplotlib", "openpyxl", "schemathesis", "hypothesis", "playwright", "pytest")
#: A configuration with a processor (no sandbox) and no bot token.
NO_SANDBOX = {
    "btcpay": {
        "url": "http://127.0.0.1:9",
        "api_key": "importsbtcpayapikey0123456",
        "store_id": "importsstore",
        "webhook_secret": "importswebhookhmac0123456",
    },
    "plans": [{"id": "p", "title": "P", "price_sats": 21_000, "duration_days": 30}],
    "log_level": "warning",
}


def _loaded(tmp_path: Path, database_url: str, *args: str) -> set[str]:
    config = tmp_path / "satshare.yaml"
    config.write_text(json.dumps({**NO_SANDBOX, "database": {"url": database_url}}))
    target = tmp_path / "modules.json"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SATSHARE_")},
        "MODULES_TO": str(target),
    }
    done = subprocess.run(  # noqa: S603 (our own driver, arguments from this test)
        [sys.executable, "-c", DRIVER, "--config", str(config), *args],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert target.exists(), done.stderr
    return set(json.loads(target.read_text()))


def _packages(modules: set[str], names: tuple[str, ...]) -> list[str]:
    """The loaded modules that are ``names`` or inside them."""
    return sorted(m for m in modules if any(m == n or m.startswith(n + ".") for n in names))


@pytest.mark.slow  # a real `satshare serve` in a child interpreter
def test_serve_without_sandbox_or_bot_loads_neither(tmp_path: Path, database_url: str) -> None:
    modules = _loaded(tmp_path, database_url, "serve", "--port", str(free_port()))
    assert "satshare.api.app" in modules and "uvicorn" in modules  # it did serve
    unused = (*NEVER, "satshare.sim", "satshare.sandbox", "telegram", "satshare.bot.app")
    unused += ("satshare.api.routes.sandbox", "satshare.api.routes.sandbox_webhooks")
    # Lightning invoices and bitcoin keys are parsed only when a payout or wallet needs them;
    # the admin panel is built at its first request.
    unused += ("bolt11", "embit", "sqladmin", "wtforms", "satshare.admin.app")
    # QR codes are drawn when a checkout or a payout address shows one.
    unused += ("segno",)
    # Alembic is for `satshare migrate`: the start-up check reads the revisions itself.
    unused += ("alembic", "mako")
    # No route is a WebSocket: uvicorn is told so, and does not load a WebSocket library.
    unused += ("websockets", "wsproto")
    # The pages' templates are made at the first page rendered, and Babel loaded at the first
    # message or number formatted.
    unused += ("jinja2", "babel")
    # httpx's own command-line client (Pygments, Rich's syntax highlighting) is never loaded;
    # the broadcast command's progress bar only when it shows one.
    unused += ("httpx._main", "pygments", "rich.syntax", "rich.progress")
    if not PG_URL:
        unused += ("procrastinate", "psycopg")  # SQLite runs the jobs in-process
    assert _packages(modules, unused) == []


def test_the_lazily_mounted_panel_lives_where_the_panel_says() -> None:
    from satshare.admin import app, lazy

    assert lazy.BASE_URL == app.BASE_URL


def test_a_command_loads_neither_the_web_app_nor_the_panel(
    tmp_path: Path, database_url: str
) -> None:
    modules = _loaded(tmp_path, database_url, "ledger", "verify")
    assert "satshare.ledger.verify" in modules  # it did verify
    unused = (*NEVER, "fastapi", "sqladmin", "uvicorn", "telegram", "satshare.sim", "alembic")
    # A short ledger is checked in this process: no worker pool (``ledger.parallel``).
    unused += ("satshare.ledger.parallel", "concurrent.futures.process")
    assert _packages(modules, unused) == []
