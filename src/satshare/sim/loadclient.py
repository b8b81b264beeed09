"""A lean HTTP/1.1 load client for tests and benchmarks.

httpx's pool slows down sharply with hundreds of queued requests in one client, which
would measure the client rather than SatShare. This opens ``concurrency`` keep-alive
connections and feeds them requests from a queue; responses come back in request order.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: bytes


async def _read_reply(reader: asyncio.StreamReader) -> tuple[Reply, bool]:
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("connection closed by server")
    status = int(status_line.split()[1])
    length = 0
    chunked = False
    keep_alive = True
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        name = name.strip().lower()
        value = value.strip()
        if name == "content-length":
            length = int(value)
        elif name == "transfer-encoding" and "chunked" in value.lower():
            chunked = True
        elif name == "connection" and value.lower() == "close":
            keep_alive = False
    if chunked:
        parts = []
        while True:
            size = int((await reader.readline()).split(b";")[0], 16)
            if size == 0:
                await reader.readline()
                break
            parts.append(await reader.readexactly(size))
            await reader.readline()
        body = b"".join(parts)
    else:
        body = await reader.readexactly(length) if length else b""
    return Reply(status, body), keep_alive


async def send_all(
    base_url: str, requests: Sequence[Request], concurrency: int = 64
) -> list[Reply]:
    parts = urlsplit(base_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(len(requests)):
        queue.put_nowait(index)
    replies: list[Reply | None] = [None] * len(requests)

    async def worker() -> None:
        reader: asyncio.StreamReader | None = None
        writer: asyncio.StreamWriter | None = None
        try:
            while not queue.empty():
                index = queue.get_nowait()
                request = requests[index]
                for attempt in range(3):
                    if writer is None:
                        reader, writer = await asyncio.open_connection(host, port)
                    assert reader is not None
                    head = [f"{request.method} {request.path} HTTP/1.1", f"Host: {host}:{port}"]
                    head += [f"{k}: {v}" for k, v in request.headers]
                    head.append(f"Content-Length: {len(request.body)}")
                    try:
                        writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + request.body)
                        await writer.drain()
                        reply, keep_alive = await _read_reply(reader)
                    except (ConnectionError, asyncio.IncompleteReadError):
                        writer.close()
                        writer = None
                        if attempt == 2:
                            raise
                        continue
                    replies[index] = reply
                    if not keep_alive:
                        writer.close()
                        writer = None
                    break
        finally:
            if writer is not None:
                writer.close()

    await asyncio.gather(*(worker() for _ in range(max(1, min(concurrency, len(requests))))))
    return [r for r in replies if r is not None]


async def send_at_rate(
    base_url: str, requests: Sequence[Request], per_second: float
) -> list[tuple[Reply, float]]:
    """Open loop: request ``i`` goes out at ``i / per_second`` seconds whether or not earlier
    ones have been answered (a closed loop waits for answers, so a slow server is asked
    less and its queueing never shows). Each reply comes with its latency in seconds,
    counted from when it was due to go out, not from when a connection was free: a request
    held back by the client still counts its wait (no coordinated omission). Keep-alive
    connections are reused; one is opened whenever all are busy."""
    parts = urlsplit(base_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    results: list[tuple[Reply, float] | None] = [None] * len(requests)
    loop = asyncio.get_running_loop()

    async def one(index: int, due: float) -> None:
        request = requests[index]
        failures = 0
        while True:
            reused = bool(idle)
            reader, writer = idle.pop() if reused else await asyncio.open_connection(host, port)
            head = [f"{request.method} {request.path} HTTP/1.1", f"Host: {host}:{port}"]
            head += [f"{k}: {v}" for k, v in request.headers]
            head.append(f"Content-Length: {len(request.body)}")
            try:
                writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + request.body)
                await writer.drain()
                reply, keep_alive = await _read_reply(reader)
            except (ConnectionError, asyncio.IncompleteReadError):
                writer.close()
                # A kept connection the server closed while it sat idle (its keep-alive
                # timeout) is not a failure of the server: only fresh ones count.
                failures += 0 if reused else 1
                if failures == 3:
                    raise
                continue
            results[index] = (reply, loop.time() - due)
            if keep_alive:
                idle.append((reader, writer))
            else:
                writer.close()
            return

    started = loop.time()
    tasks = []
    for index in range(len(requests)):
        due = started + index / per_second
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(index, due)))
    await asyncio.gather(*tasks)
    for _, writer in idle:
        writer.close()
    return [r for r in results if r is not None]
