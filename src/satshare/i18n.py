"""gettext catalogs (ru, en) read from the shipped .po files.

The .po files are compiled in memory at first use with Babel, so nothing generated has to be
committed or built. English msgids are the source strings; an untranslated message falls back
to English.

Shared by both adapters (the bot's messages, the API's checkout page and transparency report),
so it lives at the top of the package and imports nothing else from satshare.
"""

from __future__ import annotations

import gettext
import io
from functools import cache
from importlib import resources

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

DOMAIN = "satshare"
LANGUAGES = ("en", "ru")
DEFAULT_LANGUAGE = "en"


def pick_language(code: str | None) -> str:
    """Telegram's language_code (e.g. 'ru', 'ru-RU', 'uk') to one we speak."""
    if code and code.split("-")[0].lower() in LANGUAGES:
        return code.split("-")[0].lower()
    return DEFAULT_LANGUAGE


@cache
def catalog(language: str, domain: str = DOMAIN) -> gettext.NullTranslations:
    """The compiled catalog of ``domain`` (``satshare``: the bot and the public pages;
    ``admin``: the admin panel)."""
    path = resources.files("satshare").joinpath(f"locales/{language}/LC_MESSAGES/{domain}.po")
    if not path.is_file():
        return gettext.NullTranslations()
    with path.open("rb") as po:
        parsed = read_po(po, locale=language, domain=domain)
    buffer = io.BytesIO()
    write_mo(buffer, parsed)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


def translate(language: str, message: str, **values: object) -> str:
    text = catalog(language if language in LANGUAGES else DEFAULT_LANGUAGE).gettext(message)
    return text.format(**values) if values else text


def N_(message: str) -> str:
    """Mark a string for extraction without translating it here."""
    return message
