#!/usr/bin/env python3
"""Bring the .po catalogs in line with src/satshare/bot/texts.py and src/satshare/api/texts.py.

Adds new messages (untranslated), drops messages no longer used, keeps every existing
translation. Run it after editing a texts.py, then translate the new entries in
src/satshare/locales/ru/LC_MESSAGES/satshare.po. The test suite fails while any message
has no Russian translation.
"""

from __future__ import annotations

import ast
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parents[1]
SOURCES = (
    ROOT / "src" / "satshare" / "bot" / "texts.py",
    ROOT / "src" / "satshare" / "api" / "texts.py",
)
LOCALES = ROOT / "src" / "satshare" / "locales"


def messages() -> dict[str, str]:
    found = {}
    for source in SOURCES:
        prefix = source.parent.name
        for node in ast.parse(source.read_text()).body:
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
                name = f"{prefix}.{node.targets[0].id}"  # type: ignore[attr-defined]
                found[name] = ast.literal_eval(node.value.args[0])
    return found


def main() -> None:
    wanted = messages()
    for language in ("en", "ru"):
        path = LOCALES / language / "LC_MESSAGES" / "satshare.po"
        old: Catalog | None = None
        if path.exists():
            with path.open("rb") as handle:
                old = read_po(handle, locale=language, domain="satshare")
        catalog = Catalog(
            locale=language,
            domain="satshare",
            project="SatShare",
            version="0.1",
            copyright_holder="SatShare contributors",
            fuzzy=False,
        )
        for key, msgid in wanted.items():
            previous = old.get(msgid) if old is not None else None
            if msgid in catalog:
                continue  # the same English in two places: one translation
            catalog.add(msgid, string=previous.string if previous else "", auto_comments=[key])
        with path.open("wb") as handle:
            write_po(handle, catalog, width=100)
        print(f"{path.relative_to(ROOT)}: {len(wanted)} messages")


if __name__ == "__main__":
    main()
