"""Named step boundaries where the fault bench kills this process (SIGKILL, as a crash would).

It exists for the fault bench (``bench/faults.py``, docs/reliability.md) only: nothing in
SatShare sets it. Unless the process was started with ``SATSHARE_FAULT_POINTS`` in its
environment, :func:`reached` is an empty function.

``SATSHARE_FAULT_POINTS`` is a comma-separated list of ``point=rule``:

- ``settle.after_claim=3``: SIGKILL at the 3rd time the point is reached;
- ``payout.during_call=1@0.2``: the 1st reach arms a timer and the process is killed 0.2 s
  later, whatever it is doing then (e.g. waiting on a provider call it has just made);
- ``settle.before_commit=p0.25``: each reach kills with probability 0.25, drawn from a
  generator seeded with ``SATSHARE_FAULT_SEED`` (an integer, default 0) and the point's name,
  so the same seed kills at the same reach.

A spec that cannot be read stops the process at import with a ValueError naming it.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import zlib
from dataclasses import dataclass

ENV = "SATSHARE_FAULT_POINTS"
SEED_ENV = "SATSHARE_FAULT_SEED"


@dataclass
class _Rule:
    point: str
    nth: int | None = None  # kill at this reach
    delay: float = 0.0  # ... this long after it
    probability: float | None = None  # or at each reach with this probability
    rng: random.Random | None = None
    hits: int = 0


def _kill(point: str, hit: int) -> None:
    # os.write, not print: nothing buffered may be lost, and the bench reads which point it was.
    os.write(2, f"faultpoint: SIGKILL at {point} (reach {hit})\n".encode())
    os.kill(os.getpid(), signal.SIGKILL)


def _parse(spec: str, seed: int) -> dict[str, _Rule]:
    rules: dict[str, _Rule] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        point, sep, rule = (s.strip() for s in item.partition("="))
        problem = f"{ENV}: {item!r} is not point=N, point=N@SECONDS or point=pPROBABILITY"
        if not sep or not point or not rule:
            raise ValueError(problem)
        parsed = _Rule(point)
        try:
            if rule.startswith("p"):
                parsed.probability = float(rule[1:])
                parsed.rng = random.Random(seed * 1_000_003 + zlib.crc32(point.encode()))
                if not 0.0 <= parsed.probability <= 1.0:
                    raise ValueError(problem)
            else:
                count, _, delay = rule.partition("@")
                parsed.nth, parsed.delay = int(count), float(delay or 0)
                if parsed.nth < 1 or not 0.0 <= parsed.delay <= 3600:
                    raise ValueError(problem)
        except ValueError:
            raise ValueError(problem) from None
        rules[point] = parsed
    return rules


def _armed(name: str) -> None:
    rule = _RULES.get(name)
    if rule is None:
        return
    rule.hits += 1
    if rule.rng is not None and rule.probability is not None:
        if rule.rng.random() < rule.probability:
            _kill(name, rule.hits)
        return
    if rule.hits != rule.nth:
        return
    if rule.delay:
        timer = threading.Timer(rule.delay, _kill, (name, rule.hits))
        timer.daemon = True
        timer.start()
    else:
        _kill(name, rule.hits)


def _off(name: str) -> None:
    """No fault points armed: nothing to do."""


def _seed() -> int:
    raw = os.environ.get(SEED_ENV, "0")
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{SEED_ENV} must be an integer, not {raw!r}") from None


_RULES = _parse(os.environ[ENV], _seed()) if os.environ.get(ENV) else {}

#: Call at a step boundary: ``faultpoints.reached("settle.after_claim")``.
reached = _armed if _RULES else _off
