"""A Telegram Bot API emulator over real HTTP: ``POST|GET /bot<token>/<method>``.

Requests are checked against the Bot API 10.1 method list copied into ``telegram_api.json``:
an unknown method is 404, a known one this emulator does not implement is 501, a missing
required field is 400 with a Telegram-style description. Parameters arrive as JSON,
form-urlencoded or multipart (python-telegram-bot sends forms), and are coerced by the
types the specification gives them.

It keeps state: users (who may block the bot), private chats, channels and groups with their
members, invite links and join requests, bans, and every message the bot sent with its
keyboard. It answers ``getUpdates`` long polls or pushes updates to a webhook with
``X-Telegram-Bot-Api-Secret-Token``, and enforces limits: 429 with
``parameters.retry_after`` above the global rate (default 30 messages/s) or a chat's rate
(1/s sustained), 403 for users who blocked the bot.

A control API under ``/_sim`` lets tests, benchmarks and the sandbox page act as users:
send a command or text, press a button, ask to join through a link, block the bot, and read
what the bot sent.

The modules, one concern each; a Bot API method is a function of the emulator and the call's
parameters, listed in its module's ``METHODS``:

- ``state``: the records and tables, the Bot API errors, messages as JSON;
- ``limits``: the global and per-chat flood limits (429 ``retry_after``);
- ``updates``: the update queue, ``getUpdates`` and the webhook push;
- ``account``, ``messages``, ``chats``, ``stars``: the Bot API methods by area (the bot's
  account and commands; sending, editing and buttons; invite links, join requests and
  members; Telegram Stars payments);
- ``driver``: acting as a user (send, press, join, block);
- ``transport``: the method table, parameters and coercion, the HTTP app;
- ``control``: the ``/_sim`` control API;
- ``emulator``: :class:`TelegramEmulator`, the parts put together.

Import from here: ``from satshare.sim.telegram import TelegramEmulator, build_app``.
"""

from satshare.sim.telegram.emulator import TelegramEmulator
from satshare.sim.telegram.limits import TokenBucket
from satshare.sim.telegram.state import (
    BotApiError,
    SimChat,
    SimInviteLink,
    SimMessage,
    SimUser,
    bad,
)
from satshare.sim.telegram.transport import ALL_METHODS, SPEC, build_app, coerce

__all__ = [
    "ALL_METHODS",
    "SPEC",
    "BotApiError",
    "SimChat",
    "SimInviteLink",
    "SimMessage",
    "SimUser",
    "TelegramEmulator",
    "TokenBucket",
    "bad",
    "build_app",
    "coerce",
]
