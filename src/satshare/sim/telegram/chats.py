"""Bot API methods on channels and groups: invite links, join requests, members.

Owns ``createChatInviteLink``, ``revokeChatInviteLink``, ``approveChatJoinRequest``,
``declineChatJoinRequest``, ``banChatMember``, ``unbanChatMember``, ``getChatMember`` and
``getChat``.
Managing a chat needs the bot to be its administrator, as in Telegram.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

from satshare.sim.telegram.state import SimChat, SimInviteLink, bad

if TYPE_CHECKING:
    from satshare.sim.telegram.emulator import TelegramEmulator


def _admin_chat(tg: TelegramEmulator, chat_id: Any) -> SimChat:
    chat = tg.find_chat(chat_id)
    if chat.type == "private" or chat.members.get(tg.bot_id) != "administrator":
        raise bad("not enough rights to manage chat invite link")
    return chat


async def create_invite_link(tg: TelegramEmulator, params: dict[str, Any]) -> dict[str, Any]:
    chat = _admin_chat(tg, params["chat_id"])
    joins = bool(params.get("creates_join_request"))
    limit = params.get("member_limit")
    if joins and limit is not None:
        raise bad("can't combine member limit with join requests")
    if limit is not None and not 1 <= int(limit) <= 99_999:
        raise bad("MEMBER_LIMIT_INVALID")
    link = SimInviteLink(
        invite_link=f"{tg.link_base}/+{secrets.token_urlsafe(12)}",
        chat_id=chat.id,
        creates_join_request=joins,
        member_limit=int(limit) if limit is not None else None,
        expire_date=int(params["expire_date"]) if params.get("expire_date") else None,
        name=params.get("name"),
    )
    tg.links[link.invite_link] = link
    return link.as_json(tg.bot)


async def revoke_invite_link(tg: TelegramEmulator, params: dict[str, Any]) -> dict[str, Any]:
    _admin_chat(tg, params["chat_id"])
    link = tg.links.get(str(params["invite_link"]))
    if link is None:
        raise bad("INVITE_HASH_EXPIRED")
    link.is_revoked = True
    return link.as_json(tg.bot)


async def approve_join_request(tg: TelegramEmulator, params: dict[str, Any]) -> bool:
    chat = _admin_chat(tg, params["chat_id"])
    user_id = int(params["user_id"])
    if tg.join_requests.pop((chat.id, user_id), None) is None:
        raise bad("HIDE_REQUESTER_MISSING")
    chat.members[user_id] = "member"
    return True


async def decline_join_request(tg: TelegramEmulator, params: dict[str, Any]) -> bool:
    chat = _admin_chat(tg, params["chat_id"])
    if tg.join_requests.pop((chat.id, int(params["user_id"])), None) is None:
        raise bad("HIDE_REQUESTER_MISSING")
    return True


async def ban(tg: TelegramEmulator, params: dict[str, Any]) -> bool:
    chat = _admin_chat(tg, params["chat_id"])
    user_id = int(params["user_id"])
    if chat.members.get(user_id) in ("administrator", "creator"):
        raise bad("can't remove chat owner or administrator")
    chat.members[user_id] = "kicked"
    return True


async def unban(tg: TelegramEmulator, params: dict[str, Any]) -> bool:
    chat = _admin_chat(tg, params["chat_id"])
    user_id = int(params["user_id"])
    status = chat.members.get(user_id, "left")
    if status == "kicked":
        chat.members[user_id] = "left"
    elif not params.get("only_if_banned") and status == "member":
        chat.members[user_id] = "left"  # "guarantees the user is not a member"
    return True


async def get_chat_member(tg: TelegramEmulator, params: dict[str, Any]) -> dict[str, Any]:
    chat = tg.find_chat(params["chat_id"])
    user_id = int(params["user_id"])
    user = tg.bot if user_id == tg.bot_id else tg.find_user(user_id).as_json()
    status = chat.members.get(user_id, "left")
    data: dict[str, Any] = {"status": status, "user": user}
    if status == "kicked":
        data["until_date"] = 0
    if status == "administrator":
        data.update(
            can_be_edited=False,
            is_anonymous=False,
            can_manage_chat=True,
            can_delete_messages=True,
            can_manage_video_chats=True,
            can_restrict_members=True,
            can_promote_members=False,
            can_change_info=False,
            can_invite_users=True,
            can_post_stories=False,
            can_edit_stories=False,
            can_delete_stories=False,
        )
    return data


async def get_chat(tg: TelegramEmulator, params: dict[str, Any]) -> dict[str, Any]:
    """A ChatFullInfo with the fields Telegram always sends."""
    chat = tg.find_chat(params["chat_id"])
    return {
        **chat.as_json(tg.users),
        "accent_color_id": 0,
        "max_reaction_count": 11,
        "accepted_gift_types": {
            "unlimited_gifts": False,
            "limited_gifts": False,
            "unique_gifts": False,
            "premium_subscription": False,
            "gifts_from_channels": False,
        },
    }


METHODS = {
    "createChatInviteLink": create_invite_link,
    "revokeChatInviteLink": revoke_invite_link,
    "approveChatJoinRequest": approve_join_request,
    "declineChatJoinRequest": decline_join_request,
    "banChatMember": ban,
    "unbanChatMember": unban,
    "getChatMember": get_chat_member,
    "getChat": get_chat,
}
