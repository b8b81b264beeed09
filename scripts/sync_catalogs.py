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


#: A catalog entry: its msgid (a (singular, plural) pair for NP_) and its msgctxt (for NC_).
Entry = tuple[str | tuple[str, str], str | None]


def messages() -> dict[str, Entry]:
    found: dict[str, Entry] = {}
    for source in SOURCES:
        prefix = source.parent.name
        for node in ast.parse(source.read_text()).body:
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
                name = f"{prefix}.{node.targets[0].id}"  # type: ignore[attr-defined]
                marker = node.value.func.id  # type: ignore[attr-defined]
                args = [ast.literal_eval(arg) for arg in node.value.args]
                if marker == "NC_":
                    found[name] = (args[1], args[0])
                elif marker == "NP_":
                    found[name] = ((args[0], args[1]), None)
                else:
                    found[name] = (args[0], None)
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
        forms = catalog.num_plurals
        for key, (msgid, context) in wanted.items():
            previous = old.get(msgid, context=context) if old is not None else None
            if catalog.get(msgid, context=context) is not None:
                continue  # the same English in two places: one translation
            empty: str | tuple[str, ...] = ("",) * forms if isinstance(msgid, tuple) else ""
            catalog.add(
                msgid,
                string=previous.string if previous else empty,
                auto_comments=[key],
                context=context,
            )
        with path.open("wb") as handle:
            write_po(handle, catalog, width=100)
        print(f"{path.relative_to(ROOT)}: {len(wanted)} messages")


if __name__ == "__main__":
    main()
