"""The README's hand-written webhook verifier, run as printed: it accepts what SatShare
signs, exactly where the Standard Webhooks reference library does."""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from satshare.webhooks_out import signing

README = Path(__file__).parents[1] / "README.md"
Verify = Callable[[str, dict[str, str], bytes], bool]


@pytest.fixture(scope="module")
def readme_verify() -> Verify:
    section = README.read_text(encoding="utf-8").split("## Outgoing webhooks", 1)[1]
    section = section.split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    assert len(blocks) == 1, "the section's verifier changed shape"
    scope: dict[str, object] = {}
    exec(blocks[0], scope)  # noqa: S102 - the README's own example, run as a reader would
    verify = scope["verify"]
    assert callable(verify)
    return verify  # type: ignore[return-value]


def library_accepts(secret: str, headers: dict[str, str], body: bytes) -> bool:
    try:
        Webhook(secret).verify(body, headers)
    except WebhookVerificationError:
        return False
    return True


def test_the_readme_verifier_agrees_with_the_reference_library(readme_verify: Verify) -> None:
    old, new, stranger = signing.new_secret(), signing.new_secret(), signing.new_secret()
    body = json.dumps({"type": "payment.settled", "timestamp": "2026-12-01T10:00:00Z", "data": {}})
    now = int(time.time())
    rotated = signing.headers([new, old], "msg_a-b_c", now, body)
    recorded = signing.headers([new], "msg_a-b_c", now - 301, body)
    cases = [
        (new, rotated, body.encode(), True),
        (old, rotated, body.encode(), True),  # during a rotation both secrets sign
        (stranger, rotated, body.encode(), False),
        (new, rotated, body.replace("settled", "refunded").encode(), False),
        (new, recorded, body.encode(), False),  # played again six minutes later
        (new, {**rotated, "webhook-timestamp": "soon"}, body.encode(), False),
    ]
    for secret, headers, sent, accepted in cases:
        assert readme_verify(secret, headers, sent) is accepted, (headers, sent)
        assert library_accepts(secret, headers, sent) is accepted, (headers, sent)


def test_keying_with_the_secret_text_instead_of_its_bytes_fails(readme_verify: Verify) -> None:
    # The mistake the README warns of: the text after whsec_ used as the key itself.
    secret = signing.new_secret()
    body = '{"type":"webhook.test","timestamp":"2026-12-01T10:00:00Z","data":{}}'
    headers = signing.headers([secret], "msg_1", int(time.time()), body)
    as_text = "whsec_" + base64.b64encode(secret.removeprefix("whsec_").encode()).decode()
    assert readme_verify(secret, headers, body.encode())
    assert not readme_verify(as_text, headers, body.encode())
