"""The Bot API over HTTP: ``POST|GET /bot<token>/<method>``.

Owns the method table (every Bot API method this emulator implements, by area), the check of
a call against the Bot API 10.1 specification copied into ``telegram_api.json`` (an unknown
method is 404, a known one not implemented here 501, a missing required field 400), the
reading of parameters from a query string, JSON, a form or multipart (python-telegram-bot
sends forms) and their coercion to the types the specification gives, the JSON envelope of
answers (``ok``, ``result`` or ``error_code``, ``description``, ``parameters``), and
:func:`build_app`, the Starlette app with the ``/_sim`` control API (``control``) beside it.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from satshare.sim.telegram import account, chats, messages, stars, updates
from satshare.sim.telegram.control import control_route
from satshare.sim.telegram.state import BotApiError, bad

if TYPE_CHECKING:
    from satshare.sim.telegram.emulator import TelegramEmulator

SPEC: dict[str, Any] = json.loads(
    resources.files("satshare.sim").joinpath("telegram_api.json").read_text()
)
ALL_METHODS = {name.lower(): name for name in SPEC["all_methods"]}

Method = Callable[["TelegramEmulator", dict[str, Any]], Awaitable[Any]]
#: The implemented Bot API methods, by their canonical name.
METHODS: dict[str, Method] = {
    **account.METHODS,
    **updates.METHODS,
    **messages.METHODS,
    **chats.METHODS,
    **stars.METHODS,
}


async def call(tg: TelegramEmulator, method: str, params: dict[str, Any]) -> Any:
    """Run one Bot API call (the method name in any case, as Telegram takes it)."""
    canonical = ALL_METHODS.get(method.lower())
    if canonical is None:
        raise BotApiError(404, "Not Found")
    spec = SPEC["methods"].get(canonical)
    handler = METHODS.get(canonical)
    if spec is None or handler is None:
        raise BotApiError(501, f"Not Implemented: the emulator does not implement {canonical}")
    coerced = coerce(spec, params)
    for field_spec in spec["fields"]:
        if field_spec["required"] and coerced.get(field_spec["name"]) in (None, ""):
            raise bad(f'parameter "{field_spec["name"]}" is required')
    tg.calls.append((canonical, {k: v for k, v in coerced.items() if k != "photo"}))
    return await handler(tg, coerced)


_SCALARS = {"Integer", "String", "Boolean", "Float", "InputFile"}


def coerce(spec: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """Form values are strings: turn them into what the specification says they are."""
    types = {f["name"]: f["types"] for f in spec["fields"]}
    result: dict[str, Any] = {}
    for name, value in params.items():
        kinds = types.get(name)
        if kinds is None or not isinstance(value, str):
            result[name] = value
            continue
        try:
            if "Integer" in kinds and value.lstrip("-").isdigit():
                result[name] = int(value)
            elif kinds == ["Boolean"]:
                if value not in ("true", "false", "True", "False", "1", "0"):
                    raise bad(f"can't parse {name} as Boolean")
                result[name] = value in ("true", "True", "1")
            elif kinds == ["Float"] or kinds == ["Float", "Integer"]:
                result[name] = float(value)
            elif any(k not in _SCALARS for k in kinds):
                result[name] = json.loads(value)
            else:
                result[name] = value
        except (ValueError, json.JSONDecodeError):
            raise bad(f"can't parse {name}") from None
    return result


async def _params(request: Request) -> dict[str, Any]:
    params: dict[str, Any] = dict(request.query_params)
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("application/json"):
        raw = await request.body()
        if raw:
            try:
                data = json.loads(raw)
            except json.JSONDecodeError:
                raise bad("can't parse JSON object") from None
            if not isinstance(data, dict):
                raise bad("can't parse JSON object")
            params.update(data)
    elif content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()
        for key, value in form.multi_items():
            params[key] = value
    return params


def build_app(emulator: TelegramEmulator) -> Starlette:
    async def api(request: Request) -> Response:
        token = request.path_params["token"]
        method = request.path_params["method"]
        if token != emulator.token:
            return JSONResponse(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status_code=401
            )
        try:
            params = await _params(request)
            result = await emulator.call(method, params)
        except BotApiError as exc:
            body: dict[str, Any] = {
                "ok": False,
                "error_code": exc.code,
                "description": exc.description,
            }
            if exc.parameters:
                body["parameters"] = exc.parameters
            return JSONResponse(body, status_code=exc.code)
        return JSONResponse({"ok": True, "result": result})

    routes = [
        Route("/bot{token}/{method}", api, methods=["GET", "POST"]),
        control_route(emulator),
    ]
    app = Starlette(routes=routes)
    app.state.emulator = emulator
    return app
