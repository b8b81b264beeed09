"""JSON parsing that refuses NaN and Infinity: a processor's (or forger's) NaN must never
reach an amount; and, for the API's request bodies, an object naming a key twice.

Kernel level (imports nothing else from satshare): the providers parse processors' answers
with it, the API the Telegram updates it receives, and the API's routes their request
bodies (``loads_unique``, through ``api.routing``)."""

from __future__ import annotations

import json
from typing import Any


class AmbiguousJSON(ValueError):
    """Valid JSON syntax that two readers could take two ways: a key named twice in one
    object, or NaN and Infinity (which are not JSON at all, though Python reads them)."""


def _refuse_constant(name: str) -> Any:
    raise AmbiguousJSON(f"{name} is not valid JSON")


def loads(data: str | bytes) -> Any:
    return json.loads(data, parse_constant=_refuse_constant)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise AmbiguousJSON(f"the key {key!r} appears twice in one object")
        found[key] = value
    return found


def loads_unique(data: str | bytes) -> Any:
    """Like ``loads``, and an object may name each key only once."""
    return json.loads(data, parse_constant=_refuse_constant, object_pairs_hook=_unique_keys)
