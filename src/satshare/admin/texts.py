"""The panel's words in English and Russian.

Our strings live in ``locales/<lang>/LC_MESSAGES/admin.po`` (English msgids are the source);
SQLAdmin's own (buttons, pagination, the login form) come from its catalogs. ``t`` looks in
ours first and falls back to SQLAdmin's, so templates use one ``_()`` for both. The language
is SQLAdmin's per request: ``?lang=ru`` (remembered in a cookie), else Accept-Language.
``tests/test_admin_texts.py`` fails while a string used by the panel has no Russian.
"""

from __future__ import annotations

from typing import Any

from babel.support import LazyProxy
from sqladmin.i18n import get_locale
from sqladmin.i18n import gettext as sqladmin_gettext

from satshare.i18n import LANGUAGES, catalog

DOMAIN = "admin"


def language() -> str:
    code = get_locale()
    return code if code in LANGUAGES else "en"


def t(message: str, **values: Any) -> str:
    ours = catalog(language(), DOMAIN).gettext(message)
    text = ours if ours != message else sqladmin_gettext(message)
    return text.format(**values) if values else text


def lazy(message: str) -> Any:
    """Translated when shown (menu names and labels are made before any request)."""
    return LazyProxy(t, message, enable_cache=False)
