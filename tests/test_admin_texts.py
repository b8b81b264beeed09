"""The admin panel speaks Russian: every string it uses has a translation (ours or
SQLAdmin's), and the catalog holds nothing unused."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from babel.messages.pofile import read_po

ROOT = Path(__file__).parents[1]
SCRIPT = ROOT / "scripts" / "sync_admin_catalog.py"


def _script():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("sync_admin_catalog", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_admin_string_has_a_russian_translation() -> None:
    script = _script()
    used = script.used()
    assert len(used) > 200  # the extraction finds the templates' and the code's strings
    with script.CATALOG.open("rb") as handle:
        catalog = read_po(handle, locale="ru", domain="admin")
    ours = {m.id: m.string for m in catalog if m.id}
    missing = [m for m in used if not ours.get(m) and not script.sqladmin_knows(m)]
    assert missing == [], f"translate these (scripts/sync_admin_catalog.py): {missing}"
    unused = sorted(set(ours) - set(used))
    assert unused == [], f"no longer used (run scripts/sync_admin_catalog.py): {unused}"


def test_placeholders_survive_translation() -> None:
    script = _script()
    with script.CATALOG.open("rb") as handle:
        catalog = read_po(handle, locale="ru", domain="admin")
    import re

    for message in catalog:
        if message.id:
            names = set(re.findall(r"\{(\w+)\}", message.id))
            assert names == set(re.findall(r"\{(\w+)\}", message.string)), message.id
            # Jinja's gettext formats with %: a bare % in a message breaks the page.
            assert "%" not in message.id + message.string, message.id


def test_every_record_column_has_a_label() -> None:
    """Each column of each record view (list, detail, filters) is named in the panel's words
    (views.COLUMN_LABELS, translated through the catalog), never by its raw name."""
    from sqlalchemy import inspect

    from satshare.admin.views import COLUMN_LABELS, MODEL_VIEWS

    unlabeled = {
        view.__name__: missing
        for view in MODEL_VIEWS
        if (missing := sorted(set(inspect(view.model).column_attrs.keys()) - set(COLUMN_LABELS)))
    }
    assert unlabeled == {}, f"add these to admin/views.py COLUMN_LABELS: {unlabeled}"
