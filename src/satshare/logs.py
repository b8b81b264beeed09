"""Log lines: plain text or JSON (``log_format``), each carrying what is known of its
context (request id, invoice id, user id), and never a secret.

Kernel module (nothing else from SatShare). The context lives in a ``ContextVar``, so each
request, job or bot update (each asyncio task) has its own: ``bound(invoice_id=...)`` adds
to it for a block. Secrets are removed from the finished line, after formatting, so a
secret in a message, an argument or a traceback is caught alike: the values the settings
hold, and anything shaped like a bot token or an API key.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Literal

from pythonjsonlogger.json import JsonFormatter

LogFormat = Literal["text", "json"]

#: The context fields, in the order text lines show them.
FIELDS = ("request_id", "invoice_id", "user_id", "telegram_user_id")
_context: ContextVar[dict[str, Any] | None] = ContextVar("satshare_log_context", default=None)

REDACTED = "<redacted>"
#: A bot token (<bot id>:<35 characters>; ':' maybe URL-encoded) and our API keys (ss_...).
_SHAPES = (
    re.compile(r"[0-9]{5,}(?::|%3A)[A-Za-z0-9_-]{30,}", re.IGNORECASE),
    re.compile(r"\bss_[A-Za-z0-9_-]{20,}"),
)
#: Shorter values are not looked for: they would match ordinary words.
MIN_SECRET_LENGTH = 8


@contextmanager
def bound(**fields: Any) -> Iterator[None]:
    """Add fields to the log context of the current task for the duration of the block."""
    current = _context.get() or {}
    token = _context.set({**current, **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


def tag(**fields: Any) -> None:
    """Add fields to the log context for the rest of the current task (a bot update is
    handled in a task of its own, so they end with it)."""
    current = _context.get() or {}
    _context.set({**current, **{k: v for k, v in fields.items() if v is not None}})


def context() -> dict[str, Any]:
    return dict(_context.get() or {})


class Redactor:
    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Longest first, so a secret that contains another is removed whole.
        self.secrets = sorted(
            {s for s in secrets if len(s) >= MIN_SECRET_LENGTH}, key=len, reverse=True
        )

    def __call__(self, line: str) -> str:
        for secret in self.secrets:
            line = line.replace(secret, REDACTED)
        for shape in _SHAPES:
            line = shape.sub(REDACTED, line)
        return line


class _ContextFilter(logging.Filter):
    """Copies the task's context onto each record (JSON keeps them as fields)."""

    def filter(self, record: logging.LogRecord) -> bool:
        fields = _context.get() or {}
        for name in FIELDS:
            if not hasattr(record, name):
                setattr(record, name, fields.get(name))
        return True


class TextFormatter(logging.Formatter):
    def __init__(self, redact: Redactor) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self.redact = redact

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        known = [f"{n}={getattr(record, n)}" for n in FIELDS if getattr(record, n, None)]
        if known:
            line += f" [{' '.join(known)}]"
        return self.redact(line)


class JsonLineFormatter(JsonFormatter):
    """One JSON object per line: time, level, logger, message, the context fields that are
    known, and the exception as text when there is one."""

    def __init__(self, redact: Redactor) -> None:
        super().__init__(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            timestamp=False,
        )
        self.redact = redact

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        super().add_fields(log_data, record, message_dict)
        for name in FIELDS:
            if log_data.get(name) is None:
                log_data.pop(name, None)

    def format(self, record: logging.LogRecord) -> str:
        return self.redact(super().format(record))


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a record comes, not the one at start (a
    test runner swaps it for a buffer it closes afterwards)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


#: How deep ``error_line`` follows wrapped errors to the one that says why.
_WRAPPED_DEPTH = 4


def root_error(exc: BaseException) -> BaseException:
    """The error that says why: SQLAlchemy keeps the driver's in ``orig`` (its asyncpg
    adapter wraps asyncpg's once more), and procrastinate's and limits' wrappers raise
    theirs ``from`` the driver's, with no message of their own."""
    for _ in range(_WRAPPED_DEPTH):
        inner = getattr(exc, "orig", None) or exc.__cause__
        if not isinstance(inner, BaseException):
            break
        exc = inner
    return exc


def error_line(exc: BaseException) -> str:
    """``Type: message`` on one line, for a log line that names why a dependency failed:
    the driver's own error, its first line only (SQLAlchemy's add the SQL and a link on
    lines of their own); some errors have no message at all."""
    cause = root_error(exc)
    message = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {message[0]}" if message else type(cause).__name__


def warn_unavailable(
    logger: logging.Logger,
    message: str,
    exc: Exception,
    is_outage: Callable[[BaseException], bool],
    *args: object,
) -> None:
    """A dependency failed (a database, Redis, the job queue). An outage (``is_outage``:
    down, unreachable, timed out) is one WARNING line ending with the reason, as often as
    it is met while it lasts, its traceback only at DEBUG. Anything else may be a bug: an
    ERROR with its traceback. ``message`` is a %-format for ``args`` (a literal % is %%)."""
    outage = is_outage(exc)
    logger.log(
        logging.WARNING if outage else logging.ERROR,
        message + " (%s)",
        *args,
        error_line(exc),
        exc_info=exc if not outage or logger.isEnabledFor(logging.DEBUG) else None,
    )


def configure(
    level: str,
    log_format: LogFormat,
    *,
    secrets: Iterable[str] = (),
    stream: Any = None,
) -> logging.Handler:
    """Send every logger's records (uvicorn's too, which must then be started with
    ``log_config=None``) to one handler on the root logger, in the chosen format."""
    redact = Redactor(secrets)
    handler = logging.StreamHandler(stream) if stream is not None else _StderrHandler()
    handler.addFilter(_ContextFilter())
    formatter = JsonLineFormatter(redact) if log_format == "json" else TextFormatter(redact)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    return handler
