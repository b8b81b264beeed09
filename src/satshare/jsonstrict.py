"""JSON parsing that refuses NaN and Infinity: a processor's (or forger's) NaN must never
reach an amount.

Kernel level (imports nothing else from satshare): the providers parse processors' answers
with it and the API the Telegram updates it receives."""

from __future__ import annotations

import json
from typing import Any


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def loads(data: str | bytes) -> Any:
    return json.loads(data, parse_constant=_refuse_constant)
