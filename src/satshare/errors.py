"""Domain errors. Each carries the HTTP status and a stable code so adapters can render it."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    status = 400
    code = "bad-request"
    title = "Bad request"

    def __init__(self, detail: str, **extensions: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extensions = extensions


class BadRequest(DomainError):
    """The request could not be read at all (malformed body)."""

    status = 400
    code = "malformed-request"
    title = "Malformed request"


class NotFound(DomainError):
    status = 404
    code = "not-found"
    title = "Not found"


class Conflict(DomainError):
    status = 409
    code = "conflict"
    title = "Conflict"


class InvalidRequest(DomainError):
    status = 422
    code = "invalid-request"
    title = "Unprocessable request"


class Unauthorized(DomainError):
    status = 401
    code = "unauthorized"
    title = "Unauthorized"


class Forbidden(DomainError):
    status = 403
    code = "forbidden"
    title = "Forbidden"


class PayloadTooLarge(DomainError):
    status = 413
    code = "payload-too-large"
    title = "Payload too large"


class ProviderUnavailable(DomainError):
    """The payment processor could not be reached or answered with an error; nothing was written."""

    status = 502
    code = "provider-unavailable"
    title = "Payment processor unavailable"


class RateUnavailable(DomainError):
    """No fresh exchange rate for a fiat price: the invoice is refused, never guessed."""

    status = 503
    code = "rate-unavailable"
    title = "Exchange rate unavailable"


class ServiceUnavailable(DomainError):
    status = 503
    code = "service-unavailable"
    title = "Service unavailable"


class RetryLater(DomainError):
    """Not done yet and nothing committed: the caller should send the same request again
    after ``retry_after_seconds`` (rendered as HTTP 503 with ``Retry-After``)."""

    status = 503
    code = "retry-later"
    title = "Try again shortly"

    def __init__(self, detail: str, retry_after_seconds: int = 10, **extensions: Any) -> None:
        super().__init__(detail, **extensions)
        self.retry_after_seconds = retry_after_seconds
