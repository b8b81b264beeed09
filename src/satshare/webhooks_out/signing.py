"""Standard Webhooks signatures (https://www.standardwebhooks.com/, "Signature scheme").

Hand-written on purpose: the scheme is HMAC-SHA256 over ``{id}.{timestamp}.{body}`` with
the base64 key after ``whsec_`` — a few lines of the standard library — while the reference
library (``standardwebhooks``) would add its HTTP client and date parsing to the service.
The test suite verifies what this module signs with that reference library.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Iterable

SECRET_PREFIX = "whsec_"  # noqa: S105 - the prefix the spec gives secrets, not a secret
#: 32 random bytes: the spec asks for 24 to 64.
SECRET_BYTES = 32


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def new_message_id() -> str:
    return "msg_" + secrets.token_urlsafe(18)


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def signature(secret: str, msg_id: str, timestamp: int, body: str) -> str:
    """``v1,<base64 HMAC-SHA256>`` of the message under one secret."""
    signed = f"{msg_id}.{timestamp}.{body}".encode()
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(
    secrets_in_use: Iterable[str], msg_id: str, timestamp: int, body: str
) -> dict[str, str]:
    """The three headers of a delivery. During a rotation both the new and the previous
    secret sign: the spec's ``webhook-signature`` holds space-separated signatures and a
    receiver accepts the message if any of them matches its secret."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(
            signature(secret, msg_id, timestamp, body) for secret in secrets_in_use
        ),
    }


def verifies(
    secrets_in_use: Iterable[str], msg_id: str, timestamp: str, body: bytes, signatures: str
) -> bool:
    """Whether one of a delivery's space-separated ``v1,…`` signatures is one of these
    secrets' signature of it: what a receiver checks (the sandbox's receiver page does)."""
    if not timestamp.isdigit():
        return False
    text = body.decode("utf-8", "replace")
    given = signatures.split()
    return any(
        hmac.compare_digest(candidate, signature(secret, msg_id, int(timestamp), text))
        for secret in secrets_in_use
        for candidate in given
    )
