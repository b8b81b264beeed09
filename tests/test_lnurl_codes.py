"""LNURL codes (LUD-01) decoded and encoded with embit's bech32, without BIP173's 90-character
limit (issue #9, item 7)."""

from __future__ import annotations

import pytest

from satshare.payouts.destinations import (
    DestinationKind,
    InvalidDestination,
    bech32_encode,
    lnurl_to_url,
    parse,
)

#: The example in LUD-01 (github.com/lnurl/luds/blob/luds/01.md), and the URL it encodes.
LUD01_CODE = (
    "LNURL1DP68GURN8GHJ7UM9WFMXJCM99E3K7MF0V9CXJ0M385EKVCENXC6R2C35XVUKXEFCV5MKVV34X5EKZD3EV56"
    "NYD3HXQURZEPEXEJXXEPNXSCRVWFNV9NXZCN9XQ6XYEFHVGCXXCMYXYMNSERXFQ5FNS"
)
LUD01_URL = (
    "https://service.com/api?q=3fc3645b439ce8e7f2553a69e5267081d96dcd340693afabe04be7b0ccd178df"
)


def test_the_lud01_example_decodes_and_encodes_back() -> None:
    assert len(LUD01_CODE) > 90
    assert lnurl_to_url(LUD01_CODE.lower()) == LUD01_URL
    destination = parse(LUD01_CODE, "mainnet")
    assert (destination.kind, destination.value) == (DestinationKind.LNURL, LUD01_URL)
    assert bech32_encode("lnurl", LUD01_URL.encode()) == LUD01_CODE.lower()


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (LUD01_CODE.lower()[:-1] + "q", "checksum is wrong"),
        (LUD01_CODE.lower()[:-1] + "b", "not valid bech32"),  # "b" is not in the alphabet
        ("lnurl1qqqqqq", "not valid bech32"),  # shorter than a checksum
        # A bech32m checksum over the same data is not an LNURL's (bech32) checksum.
        ("lnurl1dp68gurn8ghj7etcv9khqmr99e3k7mf0wqqdwy3j", "checksum is wrong"),
    ],
)
def test_broken_codes_are_refused(code: str, message: str) -> None:
    with pytest.raises(InvalidDestination, match=message):
        lnurl_to_url(code)
