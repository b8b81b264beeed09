"""Prometheus metrics: the counters and histograms, incremented where things happen.

Kernel module: imports nothing else from SatShare and no framework but prometheus_client,
so domains, adapters and jobs may all record into it. Every name starts with ``satshare_``.
Gauges that read the database (outbox backlog, payouts by state, job queue) are not kept
here as running values: ``GET /metrics`` computes them at scrape time through repository
queries (``api/routes/ops.py``) and sets them just before rendering.

The registry is per process (prometheus_client's default one). With several processes,
scrape each one (see docs/operations.md); the database gauges read shared tables, so every
process reports the same values for them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    start_http_server,
)
from prometheus_client.registry import REGISTRY, CollectorRegistry

__all__ = ["CONTENT_TYPE_LATEST", "render"]

#: Payment rails that may appear as a label; anything else is reported as "other", so a
#: request to an unknown provider path cannot create new time series.
RAILS = frozenset({"btcpay", "lnbits", "bitpay", "onchain", "stars"})

SETTLEMENTS = Counter(
    "satshare_settlements",
    "Invoice observations applied after commit, by rail and outcome (settled, "
    "already_settled, updated, unchanged, mismatch).",
    ["rail", "outcome"],
)
WEBHOOK_SECONDS = Histogram(
    "satshare_webhook_duration_seconds",
    "Time to handle a payment processor webhook, from the first byte to the answer, by "
    "provider and HTTP status.",
    ["provider", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
OUTBOX_SENT = Counter(
    "satshare_outbox_messages",
    "Outbox rows the sender finished with, by result (sent, skipped, failed, retry).",
    ["result"],
)
OUTBOX_BACKLOG = Gauge(
    "satshare_outbox_backlog",
    "Outbox rows not yet delivered, by status (pending, sending, failed); read at scrape time.",
    ["status"],
)
OUTBOX_LAG = Gauge(
    "satshare_outbox_lag_seconds",
    "Age of the oldest outbox row still pending or sending (0 when none); read at scrape time.",
)
JOB_RUNS = Counter(
    "satshare_job_runs",
    "Background job runs in this process, by task and result (succeeded, failed).",
    ["task", "result"],
)
JOB_SECONDS = Histogram(
    "satshare_job_duration_seconds",
    "Duration of background job runs in this process, by task.",
    ["task"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0),
)
JOB_QUEUE = Gauge(
    "satshare_job_queue_jobs",
    "Jobs in the job queue this process reaches, by queue and status (todo is the depth: "
    "due and scheduled runs); read at scrape time.",
    ["queue", "status"],
)
PAYOUTS = Gauge(
    "satshare_payouts",
    "Payouts by state (awaiting_approval, approved, sending, unknown, paid, failed, "
    "canceled); read at scrape time.",
    ["state"],
)
PAYOUT_SATS = Gauge(
    "satshare_payouts_sats",
    "Sum of payout amounts in sats by state; read at scrape time.",
    ["state"],
)
BOT_UPDATES = Counter(
    "satshare_bot_updates",
    "Telegram updates received by the bot in this process, by result (handled, duplicate).",
    ["result"],
)
TELEGRAM_ERRORS = Counter(
    "satshare_telegram_errors",
    "Errors answered by the Telegram Bot API to this process, by error code (400, 403, "
    "429, ...; network when no answer came).",
    ["code"],
)
TELEGRAM_RATE_REQUESTS = Counter(
    "satshare_telegram_rate_requests",
    "Requests from this process to the storage (Redis or the database) of the Telegram rate "
    "shared by every process, by outcome (reserved: places counted; failed: the storage did "
    "not answer and the process paced itself).",
    ["outcome"],
)
TELEGRAM_RATE_TOKENS = Counter(
    "satshare_telegram_rate_tokens",
    "Places of the shared Telegram rate this process reserved, by use (granted: a Bot API "
    "call to a chat went; unused: its window ended first). Granted divided by requests: the "
    "calls each request paid for.",
    ["use"],
)
DB_POOL = Gauge(
    "satshare_db_pool_connections",
    "This process's database connection pool: size (configured), checked_out (in use), "
    "idle (open and free), overflow; read at scrape time.",
    ["state"],
)


def rail_label(name: str) -> str:
    return name if name in RAILS else "other"


def settled(rail: str, outcome: str) -> None:
    """One invoice observation applied (call after its transaction committed)."""
    SETTLEMENTS.labels(rail=rail_label(rail), outcome=outcome).inc()


def webhook_handled(provider: str, status: int, seconds: float) -> None:
    WEBHOOK_SECONDS.labels(provider=rail_label(provider), status=str(status)).observe(seconds)


def outbox_finished(result: str) -> None:
    OUTBOX_SENT.labels(result=result).inc()


@contextmanager
def job_run(task: str) -> Iterator[None]:
    """Time one run of a background job and count it as succeeded or failed."""
    started = time.perf_counter()
    try:
        yield
    except Exception:  # a cancelled run (the process stopping) is no failure
        JOB_RUNS.labels(task=task, result="failed").inc()
        raise
    else:
        JOB_RUNS.labels(task=task, result="succeeded").inc()
    finally:
        JOB_SECONDS.labels(task=task).observe(time.perf_counter() - started)


def bot_update(duplicate: bool) -> None:
    BOT_UPDATES.labels(result="duplicate" if duplicate else "handled").inc()


def telegram_error(code: int | str) -> None:
    TELEGRAM_ERRORS.labels(code=str(code)).inc()


def telegram_rate_request(outcome: str) -> None:
    TELEGRAM_RATE_REQUESTS.labels(outcome=outcome).inc()


def telegram_rate_tokens(use: str) -> None:
    TELEGRAM_RATE_TOKENS.labels(use=use).inc()


def _set_all(gauge: Gauge, label: str, values: Mapping[str, float], known: frozenset[str]) -> None:
    """Set one gauge per label value; values known but absent read 0 (not stale)."""
    for name in sorted(known | set(values)):
        gauge.labels(**{label: name}).set(values.get(name, 0))


def set_outbox(backlog: Mapping[str, int], lag_seconds: float) -> None:
    _set_all(OUTBOX_BACKLOG, "status", backlog, frozenset({"pending", "sending", "failed"}))
    OUTBOX_LAG.set(lag_seconds)


def set_payouts(counts: Mapping[str, int], sats: Mapping[str, int], states: frozenset[str]) -> None:
    _set_all(PAYOUTS, "state", counts, states)
    _set_all(PAYOUT_SATS, "state", sats, states)


def set_job_queue(queues: Sequence[Mapping[str, object]]) -> None:
    """From procrastinate's ``list_queues``: one row per queue with a count per status."""
    JOB_QUEUE.clear()
    for row in queues:
        for status in ("todo", "doing", "failed"):
            count = row.get(status, 0)
            JOB_QUEUE.labels(queue=str(row["name"]), status=status).set(
                count if isinstance(count, int) else 0
            )


def set_db_pool(values: Mapping[str, int]) -> None:
    for state, value in values.items():
        DB_POOL.labels(state=state).set(value)


def render(registry: CollectorRegistry = REGISTRY) -> bytes:
    """The text exposition format of every metric of this process."""
    return generate_latest(registry)


def serve_http(host: str, port: int) -> Callable[[], None]:
    """Serve this process's metrics at ``http://host:port/`` from a thread (``satshare
    worker``, which has no web server of its own); returns what stops it. Raises OSError
    when the port cannot be bound."""
    server, thread = start_http_server(port, addr=host)

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join()

    return stop
