"""The user driver: act as a Telegram user towards the bot.

Owns what a person does in the Telegram app, turned into the updates Telegram would send the
bot: send a text or a command (the first one opens the private chat), press an inline button
(a ``callback_query``, and whether and how the bot answered it), follow an invite link (a join,
a join request, or a refusal), block the bot. Tests call these through the emulator
(``emulator.user_sends(...)``), the sandbox chat page and benchmarks through the ``/_sim``
control API. Paying a Stars invoice is in ``stars``.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

from satshare.sim.telegram.state import SimMessage, bad

if TYPE_CHECKING:
    from satshare.sim.telegram.emulator import TelegramEmulator


def sends(tg: TelegramEmulator, user_id: int, text: str) -> int:
    user = tg.find_user(user_id)
    user.started = True
    chat = tg.find_chat(user_id)
    message = tg.store(SimMessage(tg.next_message_id(chat.id), chat.id, False, tg.now(), text=text))
    return tg.updates.push({"message": tg.message_json(message)})


def presses(tg: TelegramEmulator, user_id: int, message_id: int, data: str) -> int:
    user = tg.find_user(user_id)
    message = tg.find_message(user_id, message_id)
    if not any(b.get("callback_data") == data for b in message.buttons()):
        raise bad("no such button on that message")
    query_id = str(secrets.randbits(63))
    tg.callbacks[query_id] = (user.id, message_id, False)
    update_id = tg.updates.push(
        {
            "callback_query": {
                "id": query_id,
                "from": user.as_json(),
                "message": tg.message_json(message),
                "chat_instance": str(user.id),
                "data": data,
            }
        }
    )
    tg.query_of_update[update_id] = query_id
    return update_id


def callback_answered(tg: TelegramEmulator, update_id: int) -> bool:
    query_id = tg.query_of_update.get(update_id)
    return query_id is not None and tg.callbacks[query_id][2]


def callback_answer(tg: TelegramEmulator, update_id: int) -> str | None:
    """The text the bot answered a button press with."""
    query_id = tg.query_of_update.get(update_id)
    return tg.answers.get(query_id) if query_id is not None else None


def callback_alert(tg: TelegramEmulator, update_id: int) -> bool:
    """Whether the answer is a pop-up the user must dismiss (``show_alert``), not a toast."""
    query_id = tg.query_of_update.get(update_id)
    return query_id is not None and query_id in tg.alerts


def joins(tg: TelegramEmulator, user_id: int, invite_link: str) -> str:
    """Follow an invite link: a join request, a direct join, or a refusal."""
    user = tg.find_user(user_id)
    link = tg.links.get(invite_link)
    if link is None or link.is_revoked:
        return "invalid"
    if link.expire_date is not None and link.expire_date < tg.now():
        return "expired"
    chat = tg.chats[link.chat_id]
    if chat.members.get(user.id) == "kicked":
        return "banned"
    if chat.members.get(user.id) in ("member", "administrator", "creator"):
        return "already_member"
    if link.creates_join_request:
        tg.join_requests[(chat.id, user.id)] = tg.now()
        tg.updates.push(
            {
                "chat_join_request": {
                    "chat": chat.as_json(tg.users),
                    "from": user.as_json(),
                    "user_chat_id": user.id,
                    "date": tg.now(),
                    "invite_link": link.as_json(tg.bot),
                }
            }
        )
        return "requested"
    if link.member_limit is not None and link.usage >= link.member_limit:
        return "limit_reached"
    link.usage += 1
    chat.members[user.id] = "member"
    return "joined"


def blocks(tg: TelegramEmulator, user_id: int, blocked: bool = True) -> bool:
    """The user blocks the bot (or unblocks it): sends to them answer 403."""
    user = tg.find_user(user_id)
    user.blocked_bot = blocked
    return user.blocked_bot
