"""Signatures, API key material, constant-time comparisons, and which network addresses
are public (the rule behind every request to an address people type)."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

API_KEY_PREFIX = "ss_"


def hmac_sha256_hex(secret: str | bytes, body: bytes) -> str:
    key = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(key, body, hashlib.sha256).hexdigest()


def verify_sha256_signature(secret: str, body: bytes, header: str | None) -> bool:
    """Check a ``sha256=<hex>`` header (BTCPay-Sig style) over the raw body in constant time."""
    # A signature is hex; compare_digest raises on non-ASCII text instead of saying no.
    if not header or not secret or not header.isascii():
        return False
    scheme, _, received = header.strip().partition("=")
    if scheme.lower() != "sha256" or not received:
        return False
    expected = hmac_sha256_hex(secret, body)
    return hmac.compare_digest(expected, received.strip().lower())


@dataclass(frozen=True, slots=True)
class NewApiKey:
    plaintext: str
    display_prefix: str
    key_hash: str


def hash_api_key(plaintext: str) -> str:
    # Keys carry 256 bits of entropy, so a fast hash is enough; no salt or KDF is needed.
    return hashlib.sha256(plaintext.encode()).hexdigest()


def generate_api_key() -> NewApiKey:
    plaintext = API_KEY_PREFIX + secrets.token_urlsafe(32)
    return NewApiKey(
        plaintext=plaintext,
        display_prefix=plaintext[: len(API_KEY_PREFIX) + 6],
        key_hash=hash_api_key(plaintext),
    )


def random_token(nbytes: int = 16) -> str:
    return secrets.token_urlsafe(nbytes)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def signed_callback_url(url: str, secret: str, reference: str) -> str:
    """A callback URL carrying ``ref`` and an HMAC over it, for processors that sign nothing
    (LNbits, BitPay IPNs): only someone who got the URL from us can make a valid call."""
    signature = hmac_sha256_hex(secret, reference.encode())
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}{urlencode({'ref': reference, 'sig': signature})}"


def verify_callback_query(secret: str, query: Mapping[str, str]) -> bool:
    reference, signature = query.get("ref"), query.get("sig")
    if not reference or not signature or not (reference.isascii() and signature.isascii()):
        return False  # our references and signatures are ASCII; anything else is forged
    expected = hmac_sha256_hex(secret, reference.encode())
    return hmac.compare_digest(expected, signature.lower())


_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether the address is on the public internet: not loopback, private, link-local,
    shared (CGNAT), reserved, multicast or unspecified, also when an IPv4 address is carried
    inside an IPv6 one (IPv4-mapped, 6to4, NAT64)."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return is_public(embedded)
        if address.is_site_local:
            return False
    return address.is_global and not (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_reserved
        or address.is_multicast
        or address.is_unspecified
    )
