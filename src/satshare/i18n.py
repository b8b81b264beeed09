"""gettext catalogs (ru, en) read from the shipped .po files.

The .po files are compiled in memory at first use with Babel, so nothing generated has to be
committed or built. English msgids are the source strings; an untranslated message falls back
to English.

Three kinds of message: ``N_("text")``; ``NC_("context", "text")`` where one English word
has two meanings (an invoice is "paid" — оплачен — and so is a payout — выплачен), stored as
gettext stores a context (``context\x04text``); and ``NP_("one", "many")`` for a count, whose
Russian has three forms. Numbers and dates are formatted per language with Babel
(``format_number``: 10,000 in English, 10 000 in Russian).

Shared by both adapters (the bot's messages, the API's checkout page and transparency report),
so it lives at the top of the package and imports nothing else from satshare.
"""

from __future__ import annotations

import gettext
import io
from datetime import date, datetime
from functools import cache
from importlib import resources
from typing import NamedTuple

# Babel is imported where it is used, at the first message or number formatted: a process
# that formats none (an API-only ``serve``) does not load it (#15: idle memory).

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
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    path = resources.files("satshare").joinpath(f"locales/{language}/LC_MESSAGES/{domain}.po")
    if not path.is_file():
        return gettext.NullTranslations()
    with path.open("rb") as po:
        parsed = read_po(po, locale=language, domain=domain)
    buffer = io.BytesIO()
    write_mo(buffer, parsed)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


#: gettext's separator between a message's context and its text.
CONTEXT_SEPARATOR = "\x04"


class Plural(NamedTuple):
    """A message with a count: English singular and plural; the catalog has every form."""

    singular: str
    plural: str


def _catalog_for(language: str) -> gettext.NullTranslations:
    return catalog(language if language in LANGUAGES else DEFAULT_LANGUAGE)


def translate(language: str, message: str | Plural, **values: object) -> str:
    """The message in ``language`` with ``values`` filled in. A ``Plural`` takes its form
    from the ``count`` value."""
    if isinstance(message, Plural):
        count = values.get("count")
        assert isinstance(count, int), "a plural message needs an integer count="
        text = _catalog_for(language).ngettext(message.singular, message.plural, count)
    else:
        text = _catalog_for(language).gettext(message)
    # Untranslated messages come back as they went in, context included.
    text = text.rpartition(CONTEXT_SEPARATOR)[2]
    return text.format(**values) if values else text


def N_(message: str) -> str:
    """Mark a string for extraction without translating it here."""
    return message


def NC_(context: str, message: str) -> str:
    """A message whose English is ambiguous: ``context`` tells translators which meaning."""
    return f"{context}{CONTEXT_SEPARATOR}{message}"


def NP_(singular: str, plural: str) -> Plural:
    """A message with a ``{count}``; translate it with ``count=``."""
    return Plural(singular, plural)


def english(message: str | Plural) -> str:
    """The source text of a message, without its context."""
    text = message.singular if isinstance(message, Plural) else message
    return text.rpartition(CONTEXT_SEPARATOR)[2]


def format_number(language: str, value: int) -> str:
    """10,000 in English, 10 000 in Russian (Babel's CLDR data)."""
    from babel.numbers import format_decimal

    return str(format_decimal(value, locale=language))


def format_date(language: str, value: date) -> str:
    from babel.dates import format_date as babel_date

    return str(babel_date(value, format="medium", locale=language))


def format_datetime(language: str, value: datetime, *, zone: bool = True) -> str:
    """Date and time in UTC as the language writes them; ``zone`` adds "UTC" (leave it out
    where the message names the zone itself)."""
    from babel.dates import format_time as babel_time

    day = format_date(language, value)
    time = babel_time(value, format="short", tzinfo=None, locale=language)
    return f"{day}, {time} UTC" if zone else f"{day}, {time}"
