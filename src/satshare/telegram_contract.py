"""What the bot and the HTTP API agree on about Telegram: the ``/start`` parameter that opens
a Stars purchase, the checkout link of a buyer the bot already told what the purchase does,
and the secret Telegram sends with each webhook update.

Both adapters use these (the bot sets the webhook and reads the start parameter; the API
checks the secret and links the checkout page to the bot), and adapters never import each
other, so they live here. Imports only ``config`` (see ``tests/test_architecture.py``).
"""

from __future__ import annotations

import hashlib
import hmac

from satshare.config import TelegramSettings

#: ``/start stars_<plan id>`` opens the Stars purchase of that plan in the bot.
STARS_START = "stars_"
#: Added to a checkout link (``/pay/<id>?confirmed=1``) when the buyer has already been told
#: what the purchase does and chose to continue: the page shows it without asking again.
CONFIRMED_QUERY = "confirmed=1"


def webhook_secret(settings: TelegramSettings, token: str) -> str:
    configured = settings.webhook_secret
    if configured is not None:
        return configured.get_secret_value()
    # Stable across restarts, unguessable without the token, allowed by Telegram ([A-Za-z0-9_-]).
    return hashlib.sha256(b"satshare-telegram-webhook:" + token.encode()).hexdigest()[:48]


def secret_matches(expected: str, received: str | None) -> bool:
    return received is not None and hmac.compare_digest(expected.encode(), received.encode())
