#!/usr/bin/env python3
"""Bring the bot's .po catalogs in line with src/satshare/bot/texts.py.

Adds new messages (untranslated), drops messages no longer used, keeps every existing
translation. Run it after editing texts.py, then translate the new entries in
src/satshare/bot/locales/ru/LC_MESSAGES/satshare.po. The test suite fails while any message
has no Russian translation.
"""

from __future__ import annotations

import ast
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parents[1]
TEXTS = ROOT / "src" / "satshare" / "bot" / "texts.py"
LOCALES = ROOT / "src" / "satshare" / "bot" / "locales"


def messages() -> dict[str, str]:
    found = {}
    for node in ast.parse(TEXTS.read_text()).body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            found[node.targets[0].id] = ast.literal_eval(node.value.args[0])  # type: ignore[attr-defined]
    return found


def main() -> None:
    wanted = messages()
    for language in ("en", "ru"):
        path = LOCALES / language / "LC_MESSAGES" / "satshare.po"
        old: Catalog | None = None
        if path.exists():
            with path.open("rb") as handle:
                old = read_po(handle, locale=language, domain="satshare")
        catalog = Catalog(locale=language, domain="satshare", project="SatShare", version="0.1",
                          copyright_holder="SatShare contributors", fuzzy=False)
        for key, msgid in wanted.items():
            previous = old.get(msgid) if old is not None else None
            catalog.add(msgid, string=previous.string if previous else "", auto_comments=[key])
        with path.open("wb") as handle:
            write_po(handle, catalog, width=100)
        print(f"{path.relative_to(ROOT)}: {len(wanted)} messages")


if __name__ == "__main__":
    main()
