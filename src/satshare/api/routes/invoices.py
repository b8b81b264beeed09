from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from telegram.error import BadRequest as TelegramBadRequest
from telegram.error import TelegramError

from satshare.api.deps import AdminKey, ContainerDep
from satshare.api.problems import openapi_responses
from satshare.errors import Conflict, ServiceUnavailable
from satshare.payments import service

router = APIRouter(prefix="/api/v1/invoices", tags=["invoices"])


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
    summary="Refund a Telegram Stars payment (admin)",
    description="Asks Telegram to return the Stars (refundStarPayment), then reverses the sale in "
    "the ledger (the affiliate's commission included) and takes back the paid period. Bitcoin "
    "payments are refunded by the owner from their wallet and recorded with a reversal.",
    responses=openapi_responses(401, 403, 404, 409),
)
async def refund(
    container: ContainerDep, principal: AdminKey, invoice_id: str, request: Request
) -> Refunded:
    runtime = getattr(request.app.state, "bot", None)
    if runtime is None:
        raise ServiceUnavailable("the Telegram bot is not running, so Stars cannot be refunded")
    now = container.clock.now()
    async with container.db.transaction() as session:
        telegram_user, charge = await service.begin_stars_refund(session, invoice_id, now)
    try:
        await runtime.application.bot.refund_star_payment(int(telegram_user), charge)
    except TelegramBadRequest as exc:
        if "ALREADY_REFUNDED" not in str(exc).upper():
            async with container.db.transaction() as session:
                await service.abort_stars_refund(session, invoice_id, now)
            raise Conflict(f"Telegram refused the refund: {exc}") from exc
    except TelegramError as exc:
        async with container.db.transaction() as session:
            await service.abort_stars_refund(session, invoice_id, now)
        raise ServiceUnavailable(f"Telegram did not answer the refund: {exc}") from exc
    async with container.db.transaction() as session:
        reversal = await service.finish_stars_refund(
            session, invoice_id, author=f"api-key:{principal.key_id}", now=container.clock.now()
        )
    container.written()
    return Refunded(invoice_id=invoice_id, status="refunded", reversal_transaction_id=reversal)
