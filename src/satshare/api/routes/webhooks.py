from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response

from satshare.api.deps import PaymentsDep, read_body
from satshare.api.problems import openapi_responses
from satshare.api.routing import StrictJSONRoute
from satshare.payments import flows
from satshare.payments.schemas import WebhookAck

router = APIRouter(route_class=StrictJSONRoute, prefix="/api/v1/webhooks", tags=["webhooks"])

#: BTCPay's notifications are a few hundred bytes; anything this large is not one.
MAX_WEBHOOK_BYTES = 256 * 1024


@router.post(
    "/{provider}",
    response_model=WebhookAck,
    summary="Payment processor webhook receiver (btcpay, lnbits, bitpay)",
    description="`btcpay`: verifies `BTCPay-Sig` (HMAC-SHA256 of the raw body with the webhook "
    "secret) before anything else, deduplicates by invoice and event type (redeliveries carry "
    "new delivery ids), then re-fetches the invoice from BTCPay and settles it exactly once. "
    "Unknown event types are acknowledged and ignored. `lnbits`: LNbits signs nothing, so the "
    "URL SatShare gives LNbits carries a per-invoice HMAC token (`ref`, `sig`) that is checked "
    "instead; the payment is then re-fetched before anything is credited. `bitpay`: IPNs are "
    "unsigned too and get the same signed URL; the answer is 200 with an empty body, as BitPay "
    "expects, and the invoice is fulfilled only when BitPay calls it confirmed or complete. "
    "No API key: the signature is the authentication. A body that is not JSON, or whose "
    "ids no processor sends (a `deliveryId` or `invoiceId` over 128 characters, a NUL "
    "character), is 400 once the signature has been checked; nothing is written. A 2xx is "
    "sent only once the notification's effect is committed (or it repeats one that was): "
    "while another request is handling the same event, or when an event says the invoice is "
    "settled but the processor does not show it yet, the answer is 503 `retry-later` with "
    "`Retry-After`, so the processor delivers it again.",
    responses=openapi_responses(
        400,
        401,
        404,
        413,
        422,
        502,
        503,
        details={413: f"the body is at most {MAX_WEBHOOK_BYTES} bytes; this one declares 300000"},
    ),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"type": "object"},
                    "example": {
                        "deliveryId": "7ZqJ2kP1xYb3LmN8vQ4rTs",
                        "webhookId": "Hx8Pq2Lm4Nv7Rt1Ws9Yz3K",
                        "originalDeliveryId": "7ZqJ2kP1xYb3LmN8vQ4rTs",
                        "isRedelivery": False,
                        "type": "InvoiceSettled",
                        "timestamp": 1795000000,
                        "storeId": "9pQ4wLx8Tz2Vb6Nm1Rk3Jh",
                        "invoiceId": "9Qc2TmvX4bTrP8sKw1LzYq",
                        "metadata": {"orderId": "inv_3x9Jk2mQp1Zr8LwT5vYbNa"},
                        "manuallyMarked": False,
                        "overPaid": False,
                    },
                }
            },
        }
    },
)
async def provider_webhook(
    payments: PaymentsDep,
    provider: Annotated[str, Path(max_length=16, examples=["btcpay"])],
    request: Request,
) -> WebhookAck | Response:
    raw = await read_body(request, MAX_WEBHOOK_BYTES)  # the signature covers these exact bytes
    result = await flows.receive_webhook(
        payments, provider, raw, request.headers, dict(request.query_params)
    )
    if provider == "bitpay":
        return Response(status_code=200)  # BitPay wants an empty 200
    return WebhookAck(status=result.status, invoice_id=result.invoice_id, detail=result.detail)
