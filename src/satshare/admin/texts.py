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
from markupsafe import Markup, escape
from sqladmin.i18n import get_locale
from sqladmin.i18n import gettext as sqladmin_gettext

from satshare.i18n import LANGUAGES, catalog, format_number

DOMAIN = "admin"


def language() -> str:
    code = get_locale()
    return code if code in LANGUAGES else "en"


def t(message: str, **values: Any) -> str:
    ours = catalog(language(), DOMAIN).gettext(message)
    text = ours if ours != message else sqladmin_gettext(message)
    return text.format(**values) if values else text


def label(value: str) -> str:
    """A stored state ("awaiting_approval") as the panel shows it: its translation, or, in
    English (the state is its own msgid), its words ("awaiting approval")."""
    shown = t(value)
    return shown.replace("_", " ") if shown == value else shown


def number(value: int) -> str:
    """An amount as the panel's language writes it (10,000 or 10 000)."""
    return format_number(language(), value)


def lazy(message: str) -> Any:
    """Translated when shown (menu names and labels are made before any request)."""
    return LazyProxy(t, message, enable_cache=False)


class Label(str):
    """A column label: equal to and hashed as its English text (SQLAdmin keys dicts by its
    labels, which a ``LazyProxy`` cannot be), shown in the request's language."""

    __slots__ = ()

    def __str__(self) -> str:
        return t(str.__str__(self))

    def __html__(self) -> Markup:
        return escape(str(self))


def N_(message: str) -> str:
    """Mark a string for the catalog without translating it here."""
    return message


#: Words the templates translate from a value (``_(payout.status.value)``, ``_(alert.kind)``).
DYNAMIC = (
    # roles
    N_("owner"),
    N_("manager"),
    N_("support"),
    # payout states
    N_("awaiting_approval"),
    N_("approved"),
    N_("sending"),
    N_("paid"),
    N_("failed"),
    N_("unknown"),
    N_("canceled"),
    # invoice states
    N_("new"),
    N_("processing"),
    N_("settled"),
    N_("expired"),
    N_("invalid"),
    N_("refunding"),
    N_("refunded"),
    # subscription states
    N_("pending"),
    N_("active"),
    # ledger entry kinds
    N_("sale"),
    N_("stars_sale"),
    N_("adjustment"),
    N_("reversal"),
    N_("payout_hold"),
    N_("payout"),
    N_("payout_release"),
    # notification states (pending, sending, failed above)
    N_("sent"),
    N_("skipped"),
    # where an audited action came from
    N_("panel"),
    N_("api"),
    N_("cli"),
    # the record lists' yes/no filter
    N_("Yes"),
    N_("No"),
    # admin alerts
    N_("admin.invoice_mismatch"),
    N_("admin.invoice_gone"),
    N_("admin.payment_invalidated"),
    N_("admin.payout_unknown"),
    N_("admin.payout_contradiction"),
)
