#!/usr/bin/env python3
"""Bring the admin panel's Russian catalog (src/satshare/locales/ru/LC_MESSAGES/admin.po) in
line with the strings the panel uses: ``_("...")`` in src/satshare/admin/templates, and
``t("...")``, ``lazy("...")``, ``N_("...")`` in src/satshare/admin/*.py.

Adds new messages (untranslated), drops unused ones, keeps every translation. Strings that
SQLAdmin's own catalog translates are left to it. tests/test_admin_texts.py fails while any
message has no Russian translation."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parents[1]
ADMIN = ROOT / "src" / "satshare" / "admin"
CATALOG = ROOT / "src" / "satshare" / "locales" / "ru" / "LC_MESSAGES" / "admin.po"
_TEMPLATE = re.compile(r"""_\(\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)')""")
CALLS = {"t", "lazy", "N_"}


def used() -> dict[str, str]:
    """msgid → where it is first used."""
    found: dict[str, str] = {}
    for path in sorted(ADMIN.rglob("*.html")):
        for match in _TEMPLATE.finditer(path.read_text()):
            found.setdefault(match.group(1) or match.group(2), path.name)
    for path in sorted(ADMIN.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in CALLS
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                found.setdefault(node.args[0].value, path.name)
    return found


def sqladmin_knows(message: str) -> bool:
    from sqladmin.i18n import translations

    return translations["ru"].gettext(message) != message


def main() -> None:
    wanted = {m: where for m, where in used().items() if not sqladmin_knows(m)}
    old = None
    if CATALOG.exists():
        with CATALOG.open("rb") as handle:
            old = read_po(handle, locale="ru", domain="admin")
    catalog = Catalog(
        locale="ru",
        domain="admin",
        project="SatShare",
        version="0.1",
        copyright_holder="SatShare contributors",
        fuzzy=False,
    )
    for msgid, where in sorted(wanted.items()):
        previous = old.get(msgid) if old is not None else None
        catalog.add(msgid, string=previous.string if previous else "", auto_comments=[where])
    CATALOG.parent.mkdir(parents=True, exist_ok=True)
    with CATALOG.open("wb") as handle:
        write_po(handle, catalog, width=100)
    missing = [m for m in wanted if not (catalog.get(m) and catalog.get(m).string)]
    print(f"{CATALOG.relative_to(ROOT)}: {len(wanted)} messages, {len(missing)} untranslated")
    if "--list" in sys.argv:
        for message in missing:
            print(repr(message))


if __name__ == "__main__":
    main()
