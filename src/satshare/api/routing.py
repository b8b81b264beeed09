"""The routes' JSON bodies are read strictly: an object that names a key twice, or a NaN or
Infinity, is refused with 400 instead of taking the last value (Python's ``json`` default)
or a non-number. Two readers of one body must never see two different requests (a proxy's
log, a WAF or a client library taking the first value while SatShare takes the last).

FastAPI reads a body with ``Request.json()`` and offers no decoder setting, so every router
uses this route class, which hands its handler a request that decodes with
``jsonstrict.loads_unique`` (tests/test_bad_input.py)."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from satshare import jsonstrict


class StrictJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            try:
                self._json = jsonstrict.loads_unique(body)
            except jsonstrict.AmbiguousJSON as exc:
                # As a decoding error, so FastAPI answers it as it answers bad JSON (400).
                raise json.JSONDecodeError(str(exc), body.decode("utf-8", "replace"), 0) from exc
        return self._json


class StrictJSONRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict(request: Request) -> Response:
            return await handler(StrictJSONRequest(request.scope, request.receive))

        return strict
