"""Reading QR codes back from pixels with a real decoder (zxing-cpp), and keeping the
screenshots a test takes (set SATSHARE_SCREENSHOTS=DIR to look at them)."""

from __future__ import annotations

import io
import os
from pathlib import Path

import zxingcpp
from PIL import Image

#: The widths every page is looked at: a desktop and a phone.
WIDTHS = {"desktop": 1280, "phone": 390}


def decode(image: bytes) -> list[str]:
    """The texts of every QR code in a PNG, top to bottom."""
    picture = Image.open(io.BytesIO(image)).convert("L")
    found = zxingcpp.read_barcodes(picture, formats=zxingcpp.BarcodeFormat.QRCode)
    ordered = sorted(found, key=lambda code: (code.position.top_left.y, code.position.top_left.x))
    return [code.text for code in ordered]


def keep(image: bytes, name: str) -> None:
    folder = os.environ.get("SATSHARE_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        (Path(folder) / f"{name}.png").write_bytes(image)
