"""Benches that compare SatShare with a baseline in the same run take turns with it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

R = TypeVar("R")


async def take_turns(
    rounds: int,
    contenders: Sequence[tuple[str, Callable[[int], Awaitable[R]]]],
    announce: Callable[[int, str], str],
) -> dict[str, list[R]]:
    """Run every contender once per round (given the round's number), the order reversed
    every other round (A B, B A, A B …), so a drift of a shared machine's load falls on
    each alike; each one's results in round order. ``announce`` is printed before a run."""
    runs: dict[str, list[R]] = {name: [] for name, _ in contenders}
    for turn in range(rounds):
        order = contenders if turn % 2 == 0 else list(reversed(contenders))
        for name, run in order:
            print(announce(turn, name), flush=True)
            runs[name].append(await run(turn))
    return runs
