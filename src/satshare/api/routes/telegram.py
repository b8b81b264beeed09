"""Telegram webhook receiver (webhook mode): the secret header first, then the update queue."""

from __future__ import annotations

from fastapi import APIRouter, Request

from satshare import jsonstrict
from satshare.api.deps import SettingsDep, read_body
from satshare.api.routing import StrictJSONRoute
from satshare.errors import BadRequest, NotFound, Unauthorized
from satshare.schemas import MAX_ID
from satshare.telegram_contract import secret_matches, webhook_secret

router = APIRouter(route_class=StrictJSONRoute, tags=["telegram"], include_in_schema=False)

SECRET_HEADER = "x-telegram-bot-api-secret-token"  # noqa: S105 (a header name)
#: Updates are a few kilobytes; Telegram's own requests stay far below this.
MAX_UPDATE_BYTES = 1024 * 1024


@router.post("/telegram/webhook")
async def telegram_webhook(settings: SettingsDep, request: Request) -> dict[str, bool]:
    runtime = getattr(request.app.state, "bot", None)
    if runtime is None or not settings.telegram.webhook_url:
        raise NotFound("the bot is not running in webhook mode")
    token = settings.telegram.token
    assert token is not None  # the bot runs, so it has its token
    expected = webhook_secret(settings.telegram, token.get_secret_value())
    if not secret_matches(expected, request.headers.get(SECRET_HEADER)):
        raise Unauthorized("wrong or missing X-Telegram-Bot-Api-Secret-Token")
    try:
        data = jsonstrict.loads(await read_body(request, MAX_UPDATE_BYTES))
    except ValueError as exc:
        raise BadRequest(f"the update is not valid JSON: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("update_id"), int):
        raise BadRequest("an update must be a JSON object with an integer update_id")
    if not 0 <= data["update_id"] <= MAX_ID:  # stored in a BIGINT column
        raise BadRequest(f"update_id must be between 0 and {MAX_ID}")
    # Here, not at the top: the bot runs (PTB is loaded), and an app without one never needs it.
    from telegram import Update

    try:
        update = Update.de_json(data, runtime.application.bot)
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        # PTB trusts Telegram's shapes; a malformed update fails in its constructors.
        raise BadRequest(f"the update does not have Telegram's shape: {exc!r}") from exc
    await runtime.application.update_queue.put(update)
    return {"ok": True}
