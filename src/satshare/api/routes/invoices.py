from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from satshare.api.deps import AdminKey, InvoiceIdPath, PaymentsDep, optional_body
from satshare.api.problems import openapi_responses
from satshare.api.routing import StrictJSONRoute
from satshare.payments import flows
from satshare.payments.models import InvoiceStatus
from satshare.schemas import StrictModel

router = APIRouter(route_class=StrictJSONRoute, prefix="/api/v1/invoices", tags=["invoices"])


class RefundIn(StrictModel):
    note: str | None = Field(
        None, max_length=500, description="For bitcoin: how it was paid back (e.g. the txid)."
    )

    model_config = {
        "json_schema_extra": {
            "examples": [{"note": "returned from the owner's wallet, txid 5e2a…c1"}]
        },
    }


class Refunded(BaseModel):
    invoice_id: str
    status: str = Field(description="refunded")
    reversal_transaction_id: int = Field(description="The ledger entry that reverses the sale.")

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "invoice_id": "inv_3x9Jk2mQp1Zr8LwT5vYbNa",
                    "status": "refunded",
                    "reversal_transaction_id": 42,
                }
            ]
        }
    }


@router.post(
    "/{invoice_id}/refund",
    response_model=Refunded,
    summary="Refund a payment (admin)",
    description="Reverses the sale in the ledger (the affiliate's commission included: a "
    "clawback) and takes back the paid period. Telegram Stars are returned through Telegram "
    "(refundStarPayment) first. A bitcoin payment is returned by the owner from their own "
    "wallet (bitcoin has no chargebacks); this records it. If the commission was already paid "
    "out, the affiliate's balance goes negative and later commissions offset it. A Stars "
    "refund is 503 when the bot is not running or Telegram does not answer.",
    responses=openapi_responses(400, 401, 403, 404, 409, 422, 503),
)
async def refund(
    payments: PaymentsDep,
    principal: AdminKey,
    invoice_id: InvoiceIdPath,
    request: Request,
    body: Annotated[RefundIn | None, optional_body(RefundIn, "How it was paid back")] = None,
) -> Refunded:
    # The running bot returns Stars (payments.ports.StarsRefunds); None until it has started.
    reversal = await flows.refund(
        payments,
        invoice_id,
        note=body.note if body else None,
        author=principal.author,
        stars=getattr(request.app.state, "bot", None),
    )
    return Refunded(
        invoice_id=invoice_id, status=InvoiceStatus.REFUNDED, reversal_transaction_id=reversal
    )
