"""The ``/_sim`` control API (not part of Telegram) for benchmarks, tests and the sandbox.

Owns the HTTP face of the user driver and of the emulator's knobs: create users and chats,
act as a user (``/_sim/users/{id}/send``, ``press``, ``join``, ``block``, ``pay``), read what
a user's chat shows (``messages``) and a chat's members, redeliver an update, read or set the
rate limits, and read the log of Bot API calls (all, or those after the first N). Answers
are plain JSON; an error is ``{"error": ...}`` with the status Telegram would use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from satshare.sim.telegram.state import BotApiError, SimMessage

if TYPE_CHECKING:
    from satshare.sim.telegram.emulator import TelegramEmulator


def control_route(emulator: TelegramEmulator) -> Route:
    async def control(request: Request) -> Response:
        action = request.path_params["action"]
        body = await request.json() if await request.body() else {}
        try:
            result = await _control(emulator, action, body, request)
        except BotApiError as exc:
            return JSONResponse({"error": exc.description}, status_code=exc.code)
        except KeyError as exc:
            return JSONResponse({"error": f"missing or unknown {exc}"}, status_code=400)
        return JSONResponse(result)

    return Route("/_sim/{action:path}", control, methods=["GET", "POST"])


def _message_view(message: SimMessage) -> dict[str, Any]:
    return {
        "message_id": message.message_id,
        "from_bot": message.from_bot,
        "date": message.date,
        "text": message.text,
        "caption": message.caption,
        "photo": message.photo,
        "buttons": message.buttons(),
        "invoice": message.invoice,
    }


async def _control(
    emulator: TelegramEmulator, action: str, body: dict[str, Any], request: Request
) -> Any:
    parts = action.strip("/").split("/")
    if parts == ["users"] and request.method == "POST":
        user = emulator.add_user(
            body.get("id"),
            body.get("first_name") or "User",
            body.get("username"),
            body.get("language_code", "en"),
        )
        # A user who already pressed Start (benchmarks seed thousands without updates).
        user.started = bool(body.get("started", False))
        return user.as_json()
    if parts[0] == "users" and len(parts) == 3:
        user_id = int(parts[1])
        verb = parts[2]
        if verb == "send":
            return {"update_id": emulator.user_sends(user_id, str(body["text"]))}
        if verb == "press":
            update = emulator.user_presses(user_id, int(body["message_id"]), str(body["data"]))
            return {"update_id": update}
        if verb == "join":
            return {"result": emulator.user_joins(user_id, str(body["invite_link"]))}
        if verb == "block":
            return {"blocked": emulator.user_blocks(user_id, bool(body.get("blocked", True)))}
        if verb == "messages":
            return [_message_view(m) for m in emulator.messages.get(user_id, [])]
        if verb == "pay":
            return await emulator.user_pays(
                user_id, message_id=body.get("message_id"), link=body.get("link")
            )
    if parts == ["chats"] and request.method == "POST":
        chat = emulator.add_chat(
            int(body["id"]), str(body.get("title") or "Channel"), str(body.get("type") or "channel")
        )
        return chat.as_json(emulator.users)
    if parts[0] == "chats" and len(parts) == 3 and parts[2] == "members":
        found = emulator.chats.get(int(parts[1]))
        if found is None:
            raise BotApiError(404, "chat not found")
        return {str(k): v for k, v in found.members.items()}
    if parts == ["updates", "redeliver"]:
        emulator.redeliver(int(body["update_id"]))
        return {"redelivered": body["update_id"]}
    if parts == ["limits"]:
        if request.method == "POST":
            emulator.set_limits(
                body.get("global_rate"), body.get("chat_rate"), body.get("chat_burst")
            )
        return emulator.limits.as_json()
    if parts == ["calls"]:
        # ?since=N: only the calls after the first N (a poller reads each call once).
        since = int(request.query_params.get("since", 0))
        return [{"method": m, "params": p} for m, p in emulator.calls[since:]]
    raise BotApiError(404, f"no control action {action!r}")
