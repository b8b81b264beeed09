"""Which database errors are an outage (one log line, no traceback) and which may be a bug
(an ERROR with its traceback): ``db.database_down``, and the reason ``logs.error_line``
digs out of the wrappers around it."""

from __future__ import annotations

import logging
import sqlite3

import pytest
from sqlalchemy import exc as sa_exc

from satshare import logs
from satshare.db import database_down


class DriverError(Exception):
    """A driver's error as asyncpg's and psycopg's carry it: with a SQLSTATE."""

    def __init__(self, message: str, sqlstate: str) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


def sqlite_error(message: str, name: str) -> sqlite3.OperationalError:
    error = sqlite3.OperationalError(message)
    error.sqlite_errorname = name
    return error


def wrapped(cls: type[sa_exc.DBAPIError], orig: BaseException, **kw: bool) -> sa_exc.DBAPIError:
    return cls("SELECT 1", {}, orig, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("error", "down"),
    [
        (ConnectionRefusedError(111, "Connect call failed"), True),  # asyncpg, unwrapped
        (sa_exc.TimeoutError("QueuePool limit reached"), True),
        (
            wrapped(sa_exc.DBAPIError, Exception("closed mid-query"), connection_invalidated=True),
            True,
        ),
        (wrapped(sa_exc.DBAPIError, DriverError("starting up", "57P03")), True),
        (wrapped(sa_exc.DBAPIError, DriverError("too many connections", "53300")), True),
        (wrapped(sa_exc.OperationalError, sqlite_error("database is locked", "SQLITE_BUSY")), True),
        (wrapped(sa_exc.OperationalError, Exception("connection failed")), True),  # psycopg
        # Bugs keep their traceback:
        (wrapped(sa_exc.ProgrammingError, DriverError("no such relation", "42P01")), False),
        (wrapped(sa_exc.IntegrityError, DriverError("duplicate key", "23505")), False),
        (wrapped(sa_exc.OperationalError, sqlite_error("no such table: x", "SQLITE_ERROR")), False),
        (sa_exc.MissingGreenlet("lazy load outside a greenlet"), False),
        (sa_exc.NoResultFound("No row was found"), False),
        (KeyError("x"), False),
    ],
)
def test_an_outage_is_told_from_a_bug(error: BaseException, down: bool) -> None:
    assert database_down(error) is down


def test_the_reason_is_the_innermost_error_on_one_line() -> None:
    orig = DriverError("the database system is starting up\nDETAIL: more", "57P03")
    assert logs.error_line(wrapped(sa_exc.DBAPIError, orig)) == (
        "DriverError: the database system is starting up"
    )
    try:
        try:
            raise ConnectionRefusedError(111, "Connect call failed")
        except OSError as driver:
            raise RuntimeError() from driver  # a wrapper with no message (procrastinate's)
    except RuntimeError as wrapper:
        assert logs.error_line(wrapper) == "ConnectionRefusedError: [Errno 111] Connect call failed"


def test_an_outage_is_a_warning_and_a_bug_an_error_with_its_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = logging.getLogger("satshare.test_outage")
    with caplog.at_level(logging.INFO, logger=log.name):
        logs.warn_unavailable(
            log, "job %s failed", ConnectionRefusedError(111, "x"), database_down, "a"
        )
        logs.warn_unavailable(log, "job %s failed", KeyError("k"), database_down, "b")
    outage, bug = caplog.records
    assert (outage.levelno, outage.getMessage()) == (
        logging.WARNING,
        "job a failed (ConnectionRefusedError: [Errno 111] x)",
    )
    assert not outage.exc_info
    assert (bug.levelno, bug.getMessage()) == (logging.ERROR, "job b failed (KeyError: 'k')")
    assert bug.exc_info is not None and bug.exc_info[0] is KeyError
