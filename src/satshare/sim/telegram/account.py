"""Bot API methods on the bot's own account.

Owns ``getMe``, the command menus (``setMyCommands``, ``getMyCommands``,
``deleteMyCommands``, one menu per scope and language) and ``close`` / ``logOut``, which
answer true and change nothing.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from satshare.sim.telegram.state import bad

if TYPE_CHECKING:
    from satshare.sim.telegram.emulator import TelegramEmulator


async def ok(tg: TelegramEmulator, params: dict[str, Any]) -> bool:
    return True


async def get_me(tg: TelegramEmulator, params: dict[str, Any]) -> dict[str, Any]:
    return tg.bot


def _menu(params: dict[str, Any]) -> str:
    return json.dumps(params.get("scope") or {}) + str(params.get("language_code") or "")


async def set_commands(tg: TelegramEmulator, params: dict[str, Any]) -> bool:
    commands = params["commands"]
    if not isinstance(commands, list):
        raise bad("can't parse commands JSON object")
    tg.commands[_menu(params)] = commands
    return True


async def get_commands(tg: TelegramEmulator, params: dict[str, Any]) -> list[Any]:
    return tg.commands.get(_menu(params), [])


async def delete_commands(tg: TelegramEmulator, params: dict[str, Any]) -> bool:
    tg.commands.pop(_menu(params), None)
    return True


METHODS = {
    "getMe": get_me,
    "setMyCommands": set_commands,
    "getMyCommands": get_commands,
    "deleteMyCommands": delete_commands,
    "close": ok,
    "logOut": ok,
}
