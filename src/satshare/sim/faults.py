"""Fault knobs shared by the payment and payout emulators.

Each emulator names its operations (``create_invoice``, ``fetch_invoice``, ``pay``...) and
keeps one :class:`Fault` per operation in a :class:`Faults`; :meth:`Faults.wrap` puts the
knobs around the operation's Starlette handler. The same knobs everywhere:

``delay``
    Seconds every call waits before doing anything. The call is finished after the delay
    even if the client has given up meanwhile, as a slow real server would finish it.
``fail_next``
    The next N calls answer 503 and do nothing.
``accept_then_fail``
    The next call that succeeds does its work, then answers 500 instead of its result.
``die_mid_call``
    The next call does its work, then sends a status line and headers promising a body,
    part of that body, and closes the connection: the client sees a protocol error, never
    an HTTP status. With ``die_before_effect`` the connection is cut before any work.

From Python: ``emulator.faults.create_invoice.fail_next = 2``. Over HTTP: the emulator's
settings control route takes ``{"faults": {"create_invoice": {"fail_next": 2}}}`` and
shows every operation's knobs. One-shot knobs (``accept_then_fail``, ``die_mid_call``) wait
for a call the handler answers with a 2xx: a refused call did nothing to fail after.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, fields
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

Handler = Callable[[Request], Awaitable[Response]]
#: Builds an emulator's own error answer from a status and a message.
ErrorAnswer = Callable[[int, str], Response]

#: A delay longer than this is surely a mistake (a test would hang).
MAX_DELAY_SECONDS = 600.0


class FaultSettingsError(ValueError):
    """A fault setting that names no operation or knob, or has a value of the wrong kind."""


@dataclass
class Fault:
    """The knobs of one operation (see the module docstring)."""

    delay: float = 0.0
    fail_next: int = 0
    accept_then_fail: bool = False
    die_mid_call: bool = False
    die_before_effect: bool = False

    def update(self, operation: str, knobs: Any) -> None:
        """Set knobs from a JSON object, all or none: a bad value changes nothing."""
        if not isinstance(knobs, dict):
            raise FaultSettingsError(f"faults.{operation} must be an object of knobs")
        changed = asdict(self)
        for name, value in knobs.items():
            where = f"faults.{operation}.{name}"
            if name not in changed:
                known = ", ".join(f.name for f in fields(self))
                raise FaultSettingsError(f"{where} is not a knob; the knobs are: {known}")
            if name == "delay":
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise FaultSettingsError(f"{where} must be a number of seconds")
                if not 0 <= value <= MAX_DELAY_SECONDS:
                    raise FaultSettingsError(f"{where} must be 0 to {MAX_DELAY_SECONDS:g} seconds")
                changed[name] = float(value)
            elif name == "fail_next":
                if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                    raise FaultSettingsError(f"{where} must be a whole number, 0 or more")
                changed[name] = value
            elif not isinstance(value, bool):
                raise FaultSettingsError(f"{where} must be true or false")
            else:
                changed[name] = value
        for name, value in changed.items():
            setattr(self, name, value)


class Faults:
    """One :class:`Fault` per named operation of an emulator, reachable as attributes
    (``faults.pay.delay = 2``) or by name (``faults["pay"]``)."""

    def __init__(self, *operations: str) -> None:
        self._operations = {name: Fault() for name in operations}
        self._slow: set[asyncio.Future[Response]] = set()

    def __getattr__(self, name: str) -> Fault:
        operations: dict[str, Fault] = self.__dict__.get("_operations", {})
        if name in operations:
            return operations[name]
        raise AttributeError(f"no operation {name!r}; the operations are {', '.join(operations)}")

    def __getitem__(self, name: str) -> Fault:
        return self.__getattr__(name)

    def as_json(self) -> dict[str, dict[str, Any]]:
        return {name: asdict(fault) for name, fault in self._operations.items()}

    def update(self, settings: Any) -> None:
        """Apply ``{"operation": {"knob": value}}``; raises FaultSettingsError, all or none."""
        if not isinstance(settings, dict):
            raise FaultSettingsError("faults must be an object: {operation: {knob: value}}")
        staged = {name: Fault(**asdict(fault)) for name, fault in self._operations.items()}
        for operation, knobs in settings.items():
            if operation not in staged:
                known = ", ".join(self._operations)
                raise FaultSettingsError(
                    f"faults.{operation} is not an operation of this emulator; it has: {known}"
                )
            staged[operation].update(operation, knobs)
        for name, fault in staged.items():
            for knob, value in asdict(fault).items():
                setattr(self._operations[name], knob, value)

    def clear(self) -> None:
        for fault in self._operations.values():
            fault.update("", asdict(Fault()))

    def wrap(self, operation: str, handler: Handler, error: ErrorAnswer) -> Handler:
        """The handler of ``operation`` with its knobs around it."""
        fault = self[operation]

        async def with_faults(request: Request) -> Response:
            # Read the body now: after a delay the client may have gone, and the handler
            # must still find it (Starlette keeps it on the request).
            await request.body()
            if fault.fail_next > 0:
                fault.fail_next -= 1
                return error(503, f"emulated fault: {operation} refused (fail_next)")
            if fault.die_mid_call and fault.die_before_effect:
                fault.die_mid_call = False
                return CutConnection()
            if fault.delay > 0:
                response = await self._finish_even_if_abandoned(handler, request, fault.delay)
            else:
                response = await handler(request)
            if not 200 <= response.status_code < 300:
                return response
            if fault.die_mid_call:
                fault.die_mid_call = False
                return CutConnection(response)
            if fault.accept_then_fail:
                fault.accept_then_fail = False
                return error(500, f"emulated fault: {operation} done, then failed")
            return response

        return with_faults

    async def _finish_even_if_abandoned(
        self, handler: Handler, request: Request, delay: float
    ) -> Response:
        async def slow() -> Response:
            await asyncio.sleep(delay)
            return await handler(request)

        # The work runs as its own task, shielded: if the request is cancelled (the server
        # drops a client that gave up), the call still completes, as on a slow real server.
        task = asyncio.ensure_future(slow())
        self._slow.add(task)
        task.add_done_callback(_forget(self._slow))
        return await asyncio.shield(task)

    async def wait_idle(self) -> None:
        """Wait for delayed calls still running (their clients may have given up)."""
        if self._slow:
            await asyncio.wait(list(self._slow))

    async def aclose(self) -> None:
        for task in list(self._slow):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


def _forget(tasks: set[asyncio.Future[Response]]) -> Callable[[asyncio.Future[Response]], None]:
    def done(task: asyncio.Future[Response]) -> None:
        tasks.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: a failure after the client left is not "lost"

    return done


async def settings_request(request: Request, faults: Faults) -> dict[str, Any]:
    """Read a POST to an emulator's settings route and apply its ``faults`` member; the
    emulator applies the rest of the body. A GET reads nothing (an empty body). Raises
    FaultSettingsError (the emulator answers 422) for a body that is not a JSON object or a
    bad fault setting, having changed nothing."""
    if request.method != "POST":
        return {}
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise FaultSettingsError("the settings must be a JSON object")
    if "faults" in body:
        faults.update(body["faults"])
    return body


class CutConnection(Response):
    """A status line and headers that promise a body, part of it, then nothing: the server
    closes the connection (uvicorn does when an app returns mid-response)."""

    def __init__(self, answer: Response | None = None) -> None:
        answer = answer or JSONResponse({"emulated": "connection cut"})
        super().__init__(status_code=answer.status_code)
        self.body, self.raw_headers = answer.body, answer.raw_headers  # its Content-Length

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        body = bytes(self.body)
        await send(
            {"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True}
        )
