"""Every QR code SatShare shows (checkout page, bot photos, referral link), made in one place.

segno draws them. What a QR stands for is built here too, so the page, the bot and the tests
agree on the exact text: ``lightning:`` + the BOLT11 in upper case (QR's alphanumeric mode
makes that code smaller; wallets read either case) and a BIP21 ``bitcoin:`` URI with the
amount in BTC.

Shared by the API and the bot; imports only the kernel.
"""

from __future__ import annotations

import io

from satshare.money import sats_to_btc

#: The quiet zone the QR standard asks for, in modules; scanners miss codes with less.
QUIET_ZONE = 4


def lightning_uri(bolt11: str) -> str:
    return f"lightning:{bolt11.upper()}"


def bip21(address: str, amount_sats: int | None = None) -> str:
    """``bitcoin:<address>?amount=<BTC>`` (BIP21); the address as the processor gave it."""
    if amount_sats is None:
        return f"bitcoin:{address}"
    return f"bitcoin:{address}?amount={sats_to_btc(amount_sats)}"


def svg(data: str, title: str) -> str:
    """Inline SVG scaled by CSS: a viewBox and no fixed width/height, so a box of any size
    shows the whole code (quiet zone included) instead of cropping it."""
    import segno  # here, not at the top: only a checkout page or the bot draws one (#15)

    code = segno.make(data, error="m")
    return str(
        code.svg_inline(
            scale=1,
            border=QUIET_ZONE,
            light="#fff",  # a white quiet zone on any page background
            omitsize=True,
            title=title,
            svgclass="qr-code",
            lineclass=None,
        )
    )


def png(data: str, scale: int = 8) -> bytes:
    """A PNG for Telegram photos: `scale` pixels per module, quiet zone included."""
    import segno

    buffer = io.BytesIO()
    segno.make(data, error="m").save(buffer, kind="png", scale=scale, border=QUIET_ZONE)
    return buffer.getvalue()
