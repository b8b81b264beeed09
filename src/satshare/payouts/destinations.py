"""Where an affiliate can be paid: a Lightning Address, an LNURL-pay code, a BOLT11 invoice
or an on-chain address. Parsing is offline and strict; anything we cannot pay is refused
with a message that says what was wrong, before anything is written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from urllib.parse import urlsplit

from satshare.errors import InvalidRequest

# bolt11 and embit (with their lookup tables, ~4 MiB) are imported where a destination is
# read: every process loads this module, few ever parse a payout destination (#15).


class DestinationKind(StrEnum):
    LIGHTNING_ADDRESS = "lightning_address"
    LNURL = "lnurl"
    BOLT11 = "bolt11"
    ONCHAIN = "onchain"

    @property
    def lightning(self) -> bool:
        return self is not DestinationKind.ONCHAIN


#: Address prefixes (bech32 human-readable part) and BOLT11 currency per network.
NETWORK_HRP = {"mainnet": "bc", "testnet": "tb", "signet": "tb", "regtest": "bcrt"}
NETWORK_BOLT11 = {"mainnet": "bc", "testnet": "tb", "signet": "tbs", "regtest": "bcrt"}
_BASE58_VERSIONS = {"mainnet": (0x00, 0x05)}
_TEST_BASE58 = (0x6F, 0xC4)

_LIGHTNING_ADDRESS = re.compile(
    r"^(?P<user>[a-z0-9\-_.+]{1,64})@(?P<host>[a-z0-9\-.]{1,253}(?::\d{1,5})?)$"
)


@dataclass(frozen=True, slots=True)
class Destination:
    kind: DestinationKind
    #: Canonical text: lower-cased addresses and codes, the BOLT11 as given (lower case).
    value: str
    #: For BOLT11 only: what the invoice asks for and how to recognise its payment.
    amount_msat: int | None = None
    payment_hash: str | None = None
    expires_at: datetime | None = None

    @property
    def masked(self) -> str:
        """Short form for messages and lists."""
        return mask(self.value)


def mask(value: str) -> str:
    """A destination shortened for messages and lists: long invoices and LNURLs keep their
    ends, which is what people compare."""
    if len(value) <= 32:
        return value
    return f"{value[:14]}…{value[-8:]}"


def parse(text: str, network: str, *, now: datetime | None = None) -> Destination:
    """Recognise and check a destination; raise InvalidRequest naming what is wrong."""
    raw = (text or "").strip()
    if not raw:
        raise _bad("a destination is required: a Lightning Address, LNURL, BOLT11 or address")
    if len(raw) > 2048:
        raise _bad("the destination is too long to be a Lightning Address, LNURL or address")
    lowered = raw.lower()
    for scheme in ("lightning:", "bitcoin:"):
        if lowered.startswith(scheme):
            raw, lowered = raw[len(scheme) :], lowered[len(scheme) :]
            break
    if "@" in lowered:
        return _lightning_address(lowered)
    if lowered.startswith("lnurl1") or lowered.startswith("lnurlp://"):
        return Destination(DestinationKind.LNURL, lnurl_to_url(lowered))
    if lowered.startswith("ln"):
        return _bolt11(lowered, network, now or datetime.now(UTC))
    return _onchain(raw, network)


def lightning_address_url(address: str) -> str:
    """LUD-16: user@host → https://host/.well-known/lnurlp/user (http for local hosts, which
    only the sandbox's own service may use: outside it the LNURL client refuses both)."""
    user, host = address.split("@", 1)
    return f"{_scheme_for(host)}://{host}/.well-known/lnurlp/{user}"


def _scheme_for(host: str) -> str:
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    local = name in ("localhost", "127.0.0.1") or name.endswith(".onion") or name.endswith(".local")
    return "http" if local else "https"


def _lightning_address(text: str) -> Destination:
    match = _LIGHTNING_ADDRESS.match(text)
    if match is None or (
        "." not in match.group("host") and not match.group("host").startswith("localhost")
    ):
        raise _bad(
            f"{text!r} is not a Lightning Address (expected name@domain, e.g. alice@example.com)"
        )
    return Destination(DestinationKind.LIGHTNING_ADDRESS, text)


def lnurl_to_url(code: str) -> str:
    """LUD-01 (bech32 ``lnurl1...``) and LUD-17 (``lnurlp://``) codes to the URL they stand for."""
    if code.startswith("lnurlp://"):
        rest = code[len("lnurlp://") :]
        host = rest.split("/", 1)[0]
        url = f"{_scheme_for(host)}://{rest}"
    else:
        url = _text_of(_bech32_decode(code, "lnurl"))
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise _bad("the LNURL does not decode to a web address")
    if parts.scheme == "http" and _scheme_for(parts.netloc) != "http":
        raise _bad("the LNURL points to a plain-http address; LNURL services must use https")
    return url


def _bolt11(text: str, network: str, now: datetime) -> Destination:
    import bolt11

    try:
        decoded = bolt11.decode(text)
    except Exception:
        raise _bad("the BOLT11 invoice cannot be decoded; copy the whole invoice") from None
    expected = NETWORK_BOLT11[network]
    if decoded.currency != expected:
        raise _bad(
            f"the invoice is for the {_bolt11_network(decoded.currency)} network, but payouts "
            f"are made on {network}"
        )
    if not decoded.amount_msat:
        raise _bad("the invoice has no amount; create one for the exact payout amount")
    if decoded.amount_msat % 1000:
        raise _bad("the invoice asks for a fraction of a sat; payouts are in whole sats")
    expires_at = datetime.fromtimestamp(decoded.date + (decoded.expiry or 3600), UTC)
    if expires_at <= now:
        raise _bad("the invoice has expired; create a new one")
    return Destination(
        DestinationKind.BOLT11,
        text,
        amount_msat=int(decoded.amount_msat),
        payment_hash=decoded.payment_hash,
        expires_at=expires_at,
    )


def _bolt11_network(currency: str) -> str:
    for name, code in NETWORK_BOLT11.items():
        if code == currency:
            return name
    return currency


def _onchain(text: str, network: str) -> Destination:
    from embit import base58, script

    lowered = text.lower()
    hrp = NETWORK_HRP[network]
    if lowered.startswith(("bc1", "tb1", "bcrt1")):
        if not lowered.startswith(hrp + "1") or (
            network != "regtest" and lowered.startswith("bcrt1")
        ):
            raise _bad(f"{text!r} is an address for another network; payouts are on {network}")
        value = lowered
    else:
        try:
            payload = base58.decode_check(text)
        except Exception:
            raise _bad(
                f"{text!r} is not a Lightning Address, LNURL, BOLT11 invoice or bitcoin address"
            ) from None
        versions = _BASE58_VERSIONS.get(network, _TEST_BASE58)
        if len(payload) != 21 or payload[0] not in versions:
            raise _bad(f"{text!r} is an address for another network; payouts are on {network}")
        value = text
    try:
        script.address_to_scriptpubkey(value)
    except Exception:
        raise _bad(f"{text!r} is not a valid bitcoin address (checksum or length)") from None
    return Destination(DestinationKind.ONCHAIN, value)


class InvalidDestination(InvalidRequest):
    code = "invalid-destination"
    title = "Invalid payout destination"


def _bad(message: str) -> InvalidDestination:
    return InvalidDestination(message, field="destination")


# -- bech32 without BIP173's 90-character limit (LNURLs are longer) ---------------------
# embit's bech32_decode refuses codes over 90 characters, so the code is split here and its
# checksum verified with embit's primitives.


def _bech32_decode(code: str, expected_hrp: str) -> list[int]:
    from embit import bech32

    position = code.rfind("1")
    hrp, data_part = code[:position], code[position + 1 :]
    if hrp != expected_hrp or len(data_part) < 7 or any(c not in bech32.CHARSET for c in data_part):
        raise _bad("the LNURL is not valid bech32")
    data = [bech32.CHARSET.index(c) for c in data_part]
    if bech32.bech32_verify_checksum(hrp, data) != bech32.Encoding.BECH32:
        raise _bad("the LNURL checksum is wrong; copy it again")
    return data[:-6]


def _text_of(data: list[int]) -> str:
    """The UTF-8 text that bech32 data (5-bit values) holds."""
    from embit import bech32

    octets = bech32.convertbits(data, 5, 8, pad=False)  # None: the padding is wrong
    try:
        if octets is not None:
            return bytes(octets).decode()
    except UnicodeDecodeError:
        pass
    raise _bad("the LNURL does not decode to a URL")


def bech32_encode(hrp: str, data: bytes) -> str:
    """Encode bytes as bech32 (used to show and test LNURL codes)."""
    from embit import bech32

    values = bech32.convertbits(list(data), 8, 5)
    return str(bech32.bech32_encode(bech32.Encoding.BECH32, hrp, values))
