"""The README's sandbox walk-through, pasted as written into bash against a freshly started
`satshare serve` (issue #10: every command in the README works when pasted in order)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.servers import free_port

README = Path(__file__).parents[1] / "README.md"
KEY_LINE = re.compile(r"Admin API key for this session \(shown once\): (ss_\S+)")

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def walk_through() -> tuple[list[str], str]:
    """The shell blocks of the "Sandbox walk-through" section and the terminal form of
    "Simulate payment" given in its prose."""
    text = README.read_text(encoding="utf-8")
    section = text.split("### Sandbox walk-through", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, flags=re.DOTALL)
    simulate = re.search(r"`(curl -s -X POST [^`]*/simulate\")`", section)
    assert len(blocks) == 3 and simulate is not None, "the walk-through changed shape"
    return blocks, simulate.group(1)


@pytest.fixture
def served(tmp_path: Path) -> tuple[int, str, dict[str, str]]:
    """A fresh sandbox `satshare serve` on its own SQLite file, as after `make run`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SATSHARE_")}
    env["SATSHARE_DATABASE__URL"] = f"sqlite+aiosqlite:///{tmp_path / 'satshare.db'}"
    satshare = [sys.executable, "-m", "satshare"]
    subprocess.run(  # noqa: S603 - our own CLI
        [*satshare, "migrate"], env=env, check=True, capture_output=True, cwd=tmp_path
    )
    port = free_port()
    process = subprocess.Popen(  # noqa: S603 - our own CLI
        [*satshare, "serve", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    found: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            match = KEY_LINE.search(line)
            if match:
                found.append(match.group(1))
            if line.startswith("Try it:"):
                ready.set()

    threading.Thread(target=read, daemon=True).start()
    try:
        assert ready.wait(120) and found, "serve printed no banner"
        yield port, found[0], env
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()


def test_the_sandbox_walk_through_works_as_written(
    served: tuple[int, str, dict[str, str]], tmp_path: Path
) -> None:
    port, key, env = served
    (first, second, withdrawal), simulate = walk_through()
    assert "KEY=ss_..." in first and "127.0.0.1:8000" in first
    # What a reader does: paste the key from the banner; our server listens on another port.
    script = "\n".join(
        [
            "set -euo pipefail",
            first.replace("KEY=ss_...", f"KEY={key}"),
            simulate,
            # The reader watches the page turn to "Payment received" before going on.
            'for _ in $(seq 100); do curl -s -H "$H" $API/users/$ALICE | grep -q '
            "'\"balance_sats\":5000' && break; sleep 0.2; done",
            "echo '<<second block>>'",
            second.replace(".venv/bin/satshare", f"{sys.executable} -m satshare"),
            "echo '<<third block>>'",
            withdrawal,
        ]
    ).replace("127.0.0.1:8000", f"127.0.0.1:{port}")
    bash = shutil.which("bash")
    assert bash is not None
    done = subprocess.run(  # noqa: S603 - the README's own commands
        [bash, "-c", script], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    before, rest = done.stdout.split("<<second block>>\n")
    after, withdrawn = rest.split("<<third block>>\n")
    lines = before.strip().splitlines()
    assert len(lines) == 4, before
    alice_line, order_line, checkout_url, simulated = lines
    alice = json.loads(alice_line)
    assert alice["referrer_id"] is None and alice["referral_code"]
    order = json.loads(order_line)
    assert order["status"] == "pending"
    assert checkout_url == order["invoice"]["checkout_url"]
    assert checkout_url.startswith(f"http://127.0.0.1:{port}/pay/")
    assert json.loads(simulated) == {"status": "paid", "invoice_id": order["invoice"]["id"]}
    profile_line, transactions_line, *verified = after.strip().splitlines()
    profile = json.loads(profile_line)
    assert profile["balance_sats"] == 5_000
    assert profile["referrals"] == {"registered": 1, "paying": 1}
    (sale,) = json.loads(transactions_line)["items"]
    amounts = sorted(p["amount_sats"] for p in sale["postings"])
    assert amounts == [-5_000, -5_000, 10_000]
    assert " ".join(verified).startswith("Ledger verified: 1 entries, 3 postings")
    accepted, requested, approved, paid = (
        json.loads(line) for line in withdrawn.strip().splitlines()
    )
    assert accepted["terms_accepted_at"] is not None
    assert requested["status"] == "awaiting_approval" and requested["send_sats"] == 5_000
    assert approved["payout_id"] == requested["payout_id"]  # its state moves on by itself
    assert paid["status"] == "paid" and paid["payout_id"] == requested["payout_id"]
