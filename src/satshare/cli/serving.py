"""How ``satshare serve`` starts and stops: the port checked before anything starts, Ctrl+C
stopping the jobs and the bot before the web server, bot tokens kept out of the access log,
and the other processes of ``server.workers`` on the same port."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import logging
import os
import re
import signal
import socket
import threading
from collections.abc import Awaitable, Callable, Generator, Iterator
from pathlib import Path
from types import FrameType

import uvicorn

#: A Bot API path carries the token: /bot<id>:<secret>/method and /file/bot<id>:<secret>/…
log = logging.getLogger(__name__)
_BOT_TOKEN_IN_PATH = re.compile(r"/bot[0-9]+(?::|%3A)[A-Za-z0-9_-]+", re.IGNORECASE)
#: How long Ctrl+C waits for the jobs and the bot, then for open requests (a long poll).
STOP_SECONDS = 2.0
GRACEFUL_SECONDS = 1


def port_problem(host: str, port: int) -> str | None:
    """Why SatShare cannot listen on ``host:port``, in one line with the fix; None when it can.

    Checked before the database, the sandbox and the bot start, so a second ``make run``
    says so plainly instead of failing half-way with uvicorn's traceback."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # As uvicorn binds: a port in TIME_WAIT after a restart is free, one listened on is not.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except socket.gaierror as exc:
            return f"server.host {host!r} is not a host name or address ({exc.strerror})"
        except OSError as exc:
            where = f"{host}:{port}"
            if exc.errno == errno.EADDRINUSE:
                other = port + 1 if port < 65535 else 8000
                return (
                    f"port {port} on {host} is already in use (is SatShare already running?); "
                    f"stop that process or choose another port: satshare serve --port {other} "
                    f"(make run PORT={other}, or server.port in satshare.yaml)"
                )
            if exc.errno == errno.EACCES:
                return (
                    f"not allowed to listen on {where} (ports below 1024 need privileges); "
                    "choose a port above 1024 with --port or server.port"
                )
            if exc.errno == errno.EADDRNOTAVAIL:
                return (
                    f"server.host {host} is not an address of this machine; use 127.0.0.1 "
                    "(this machine only) or 0.0.0.0 (every interface)"
                )
            reason = exc.strerror or type(exc).__name__
            return f"cannot listen on {where} ({reason}); check server.host and server.port"
    return None


class DatabaseInUse(Exception):
    """Another ``serve`` holds this SQLite database."""


@contextlib.contextmanager
def sole_server(database_file: Path | None) -> Iterator[None]:
    """SQLite is one process's database: hold a lock beside its file while serving, so a
    second ``serve`` on it is refused in one line instead of starting (it would revoke the
    running sandbox's admin key, and its reconciler, asking its own emulator about the first
    process's invoices, would mark them invalid). PostgreSQL serves any number of processes:
    ``database_file`` None takes no lock.

    ``flock`` on a file of its own, never the database (SQLite's own locks are POSIX
    record locks, which closing any other descriptor of that file would drop); the kernel
    releases it when the process ends however it ends, so a killed ``serve`` leaves no
    stale lock, only the small file."""
    if database_file is None:
        yield
        return
    lock_path = database_file.with_name(database_file.name + "-serve.lock")
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        # No such directory, or not writable: opening the database says so in its own words.
        yield
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 20, 0).decode("ascii", "replace").strip()
            who = f" (pid {holder})" if holder.isdigit() else ""
            raise DatabaseInUse(
                f"another `satshare serve`{who} is already running on the SQLite database "
                f"{database_file}; SQLite serves one process: stop that one first, or use "
                "PostgreSQL (database.url) to run several"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode("ascii"), 0)
        yield
    finally:
        os.close(fd)


class RedactBotTokens(logging.Filter):
    """Keeps bot tokens out of the access log: the sandbox serves the Bot API emulator on
    this app, and its paths (/bot<token>/getUpdates) would print the token on every poll."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                _BOT_TOKEN_IN_PATH.sub("/bot<token>", arg) if isinstance(arg, str) else arg
                for arg in record.args
            )
        return True


def redact_access_log() -> None:
    logging.getLogger("uvicorn.access").addFilter(RedactBotTokens())


class Server(uvicorn.Server):
    """uvicorn's server, stopped in order on Ctrl+C or SIGTERM: ``before_exit`` (the jobs,
    then the bot, which long-polls the sandbox's Bot API on this very server) first, then
    the web server. A second Ctrl+C stops at once (a second SIGTERM does not); pressed while
    the jobs and the bot still stop, it first spends up to a second answering the requests
    still open.

    uvicorn's own handling sets ``should_exit`` at once and re-raises the signal after
    serving, which surfaced as tracebacks from the bot's broken long poll."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.before_exit: Callable[[], Awaitable[None]] | None = None
        #: Wakes the requests that would otherwise keep waiting (the sandbox Bot API's long
        #: polls). On a forced exit it runs once uvicorn has stopped taking requests, and the
        #: open ones are then awaited within its graceful timeout, so they end with an
        #: answer rather than being cancelled mid-request (a traceback and a 500).
        self.answer_waiting: Callable[[], Awaitable[None]] | None = None
        self._stopping = False
        self._loop: asyncio.AbstractEventLoop | None = None

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        self._loop = asyncio.get_running_loop()
        originals = {sig: signal.signal(sig, self.handle_exit) for sig in _SIGNALS}
        try:
            yield
        finally:
            for sig, handler in originals.items():
                signal.signal(sig, handler)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._stopping and sig == signal.SIGTERM:
            # Already stopping in order. With server.workers a worker is sent SIGTERM by its
            # first process and, under systemd (KillMode=control-group), by systemd too:
            # only an impatient second Ctrl+C stops at once.
            return
        if self._stopping or self.before_exit is None or self._loop is None:
            self.force_exit = self._stopping
            self.should_exit = True
            return
        self._stopping = True
        self._loop.call_soon_threadsafe(self._start_stopping)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await super().shutdown(sockets)
        lifespan_done = getattr(self.lifespan, "shutdown_event", None)
        if self.force_exit and lifespan_done is not None and not lifespan_done.is_set():
            # On a forced exit uvicorn skips the app's lifespan shutdown and leaves its task
            # to be cancelled when the loop ends, which Starlette reports as a failed
            # shutdown with a CancelledError traceback. The app has no shutdown work of its
            # own (serve closes the database and the bot itself), so this is at once.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.lifespan.shutdown(), GRACEFUL_SECONDS)

    async def _wait_tasks_to_complete(self) -> None:
        # uvicorn's shutdown calls this once the listener is closed and every connection
        # told to finish, within its graceful timeout (then it cancels what is left). A
        # forced exit (a second Ctrl+C while ``before_exit`` ran) waits for nothing, so the
        # requests left waiting (the bot's long poll) are answered first.
        if self.force_exit and self.answer_waiting is not None:
            try:
                await self.answer_waiting()
            except Exception:  # stopping goes on: the requests it would wake are cancelled
                log.warning("could not answer the open requests before stopping", exc_info=True)
            else:
                while self.server_state.tasks:
                    await asyncio.wait(set(self.server_state.tasks))
        await super()._wait_tasks_to_complete()

    def _start_stopping(self) -> None:
        self._stop_task = asyncio.ensure_future(self._stop_then_exit())

    async def _stop_then_exit(self) -> None:
        assert self.before_exit is not None
        try:
            with contextlib.suppress(TimeoutError, asyncio.TimeoutError):
                await asyncio.wait_for(self.before_exit(), STOP_SECONDS)
        finally:
            self.should_exit = True


_SIGNALS = (signal.SIGINT, signal.SIGTERM)


#: How long the first process waits for the others to stop before killing them.
WORKERS_STOP_SECONDS = 15.0
#: A worker that dies is started again after this long, doubled on each death in a row (up
#: to a minute), so one that cannot start does not spin.
RESTART_SECONDS = 1.0


class Workers:
    """The other processes of ``server.workers``: each a whole ``satshare serve`` (its own
    API, jobs worker and sealer; the bot polls from one process, by its advisory lock) on
    the listening socket the first process bound, inherited rather than bound again, so the
    kernel hands every connection to one of them and no other program can join the port.

    The first process starts them once it serves, starts one again when it dies, and stops
    them when it stops. They run in their own session: a Ctrl+C in a terminal reaches the
    first process only, which then stops each of them once, in order; a second SIGTERM
    (systemd signals every process of the unit too) does not hurry a stopping worker."""

    def __init__(self, count: int, argv: Callable[[int], list[str]], listening: socket.socket):
        self._count = count
        self._argv = argv
        self._socket = listening
        self._procs: dict[int, asyncio.subprocess.Process] = {}
        self._watchers: list[asyncio.Task[None]] = []
        self._stopping = False

    @property
    def pids(self) -> list[int]:
        return [proc.pid for proc in self._procs.values()]

    async def start(self) -> None:
        for slot in range(1, self._count):
            await self._spawn(slot)
            self._watchers.append(asyncio.create_task(self._watch(slot)))

    async def _spawn(self, slot: int) -> None:
        fd = self._socket.fileno()
        self._procs[slot] = await asyncio.create_subprocess_exec(
            *self._argv(fd), pass_fds=(fd,), start_new_session=True
        )

    async def _watch(self, slot: int) -> None:
        delay = RESTART_SECONDS
        while True:
            proc = self._procs[slot]
            code = await proc.wait()
            if self._stopping:
                return
            log.error(
                "serve worker %d (pid %d) exited with code %s; starting it again in %.0f s",
                slot,
                proc.pid,
                code,
                delay,
            )
            await asyncio.sleep(delay)
            if self._stopping:
                return
            await self._spawn(slot)
            delay = min(delay * 2, 60.0)

    def terminate(self) -> None:
        """Ask every worker to stop (SIGTERM: each stops its jobs and bot, then its server)."""
        self._stopping = True
        for watcher in self._watchers:
            watcher.cancel()
        for proc in self._procs.values():
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)

    async def wait(self, timeout: float = WORKERS_STOP_SECONDS) -> None:
        """Wait for the workers to stop; kill those still running after ``timeout``."""
        self.terminate()
        waits = [proc.wait() for proc in self._procs.values()]
        try:
            await asyncio.wait_for(asyncio.gather(*waits), timeout)
        except TimeoutError:
            for proc in self._procs.values():
                if proc.returncode is None:
                    log.warning("serve worker pid %d did not stop in time: killing it", proc.pid)
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
            await asyncio.gather(*(proc.wait() for proc in self._procs.values()))


async def stop_when_orphaned(server: Server, parent: int, interval: float = 1.0) -> None:
    """In a worker: stop as SIGTERM would once the first process (``parent``, named on the
    command line: it may die before this worker has started) is gone, killed without
    stopping its workers, rather than serve on, unsupervised, on its port."""
    while os.getppid() == parent:  # noqa: ASYNC110 (no wake-up exists for a parent's death)
        await asyncio.sleep(interval)
    log.warning("the first serve process is gone: stopping this worker")
    server.handle_exit(signal.SIGTERM, None)
