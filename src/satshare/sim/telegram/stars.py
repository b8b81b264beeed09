"""Telegram Stars payments, the bot's side and Telegram's.

Owns the Bot API methods ``sendInvoice``, ``createInvoiceLink`` (a 30-day subscription link
too), ``answerPreCheckoutQuery`` and ``refundStarPayment``, with Telegram's checks on a Stars
invoice (currency XTR, one price, no provider token); and what Telegram does when a user pays
(:func:`pay`: a ``pre_checkout_query`` the bot must answer in time, then a
``successful_payment`` message with a charge id) or a subscription renews (:func:`renew`).
"""

from __future__ import annotations

import asyncio
import secrets
from typing import TYPE_CHECKING, Any

from satshare.sim.telegram.messages import send_from_bot
from satshare.sim.telegram.state import SimMessage, SimUser, bad

if TYPE_CHECKING:
    from satshare.sim.telegram.emulator import TelegramEmulator

#: The only subscription period Telegram takes for Stars (30 days).
SUBSCRIPTION_PERIOD_SECONDS = 2_592_000


def _stars_invoice(params: dict[str, Any], *, link: bool) -> dict[str, Any]:
    if params.get("currency") != "XTR":
        raise bad("the emulator sells in Telegram Stars only: currency must be XTR")
    if params.get("provider_token") not in (None, ""):
        raise bad("provider_token must be empty for payments in Telegram Stars")
    prices = params.get("prices")
    if not isinstance(prices, list) or len(prices) != 1:
        raise bad("exactly one price is required for payments in Telegram Stars")
    amount = prices[0].get("amount") if isinstance(prices[0], dict) else None
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise bad("CURRENCY_TOTAL_AMOUNT_INVALID")
    period = params.get("subscription_period")
    if period is not None:
        if not link:
            raise bad("subscription_period is only allowed in createInvoiceLink")
        if int(period) != SUBSCRIPTION_PERIOD_SECONDS:
            raise bad("SUBSCRIPTION_PERIOD_INVALID: it must be 2592000 (30 days)")
        if amount > 10_000:
            raise bad("subscription price can't exceed 10000 Stars")
    payload = str(params["payload"])
    if not 1 <= len(payload.encode()) <= 128:
        raise bad("INVOICE_PAYLOAD_INVALID")
    return {
        "title": str(params["title"]),
        "description": str(params["description"]),
        "payload": payload,
        "currency": "XTR",
        "total_amount": amount,
        "subscription_period": int(period) if period is not None else None,
    }


async def send_invoice(tg: TelegramEmulator, params: dict[str, Any]) -> dict[str, Any]:
    spec = _stars_invoice(params, link=False)
    data = tg.message_json(send_from_bot(tg, params, invoice=spec))
    data["invoice"] = {k: spec[k] for k in ("title", "description", "currency", "total_amount")} | {
        "start_parameter": ""
    }
    return data


async def create_invoice_link(tg: TelegramEmulator, params: dict[str, Any]) -> str:
    spec = _stars_invoice(params, link=True)
    link = f"{tg.link_base}/${secrets.token_urlsafe(12)}"
    tg.invoice_links[link] = spec
    return link


async def answer_pre_checkout(tg: TelegramEmulator, params: dict[str, Any]) -> bool:
    query_id = str(params["pre_checkout_query_id"])
    waiting = tg.pre_checkouts.get(query_id)
    if waiting is None or waiting.done():
        raise bad("query is too old and response timeout expired or query ID is invalid")
    ok = bool(params["ok"])
    error = params.get("error_message")
    if not ok and not error:
        raise bad("error_message is required when ok is false")
    waiting.set_result((ok, error))
    return True


async def refund_star_payment(tg: TelegramEmulator, params: dict[str, Any]) -> bool:
    charge = tg.charges.get(str(params["telegram_payment_charge_id"]))
    if charge is None or charge["user"] != int(params["user_id"]):
        raise bad("CHARGE_NOT_FOUND")
    if charge["refunded"]:
        raise bad("CHARGE_ALREADY_REFUNDED")
    charge["refunded"] = True
    return True


METHODS = {
    "sendInvoice": send_invoice,
    "createInvoiceLink": create_invoice_link,
    "answerPreCheckoutQuery": answer_pre_checkout,
    "refundStarPayment": refund_star_payment,
}


# -- what Telegram does when a user pays -------------------------------------------------------


async def pay(
    tg: TelegramEmulator,
    user_id: int,
    *,
    message_id: int | None = None,
    link: str | None = None,
    timeout: float = 10.0,
) -> dict[str, Any]:
    """The user presses Pay: a pre_checkout_query the bot must answer within ``timeout``
    seconds, then, if accepted, a successful_payment message."""
    user = tg.find_user(user_id)
    if link is not None:
        spec = tg.invoice_links.get(link)
    else:
        found = tg.find_message(user_id, int(message_id or 0))
        spec = found.invoice
    if spec is None:
        raise bad("no such invoice")
    query_id = str(secrets.randbits(63))
    waiting: asyncio.Future[tuple[bool, str | None]] = asyncio.get_running_loop().create_future()
    tg.pre_checkouts[query_id] = waiting
    tg.updates.push(
        {
            "pre_checkout_query": {
                "id": query_id,
                "from": user.as_json(),
                "currency": "XTR",
                "total_amount": spec["total_amount"],
                "invoice_payload": spec["payload"],
            }
        }
    )
    try:
        ok, error = await asyncio.wait_for(asyncio.shield(waiting), timeout)
    except TimeoutError:
        waiting.cancel()
        return {"status": "timeout"}
    finally:
        tg.pre_checkouts.pop(query_id, None)
    if not ok:
        return {"status": "refused", "error": error}
    return {"status": "paid", **_charge(tg, user, spec, recurring=False)}


def renew(tg: TelegramEmulator, user_id: int, link: str) -> dict[str, Any]:
    """Telegram charges a Stars subscription for its next period."""
    spec = tg.invoice_links[link]
    if spec.get("subscription_period") is None:
        raise bad("not a subscription link")
    return _charge(tg, tg.find_user(user_id), spec, recurring=True)


def _charge(
    tg: TelegramEmulator, user: SimUser, spec: dict[str, Any], *, recurring: bool
) -> dict[str, Any]:
    charge_id = f"stxn{secrets.token_hex(12)}"
    tg.charges[charge_id] = {
        "user": user.id,
        "amount": spec["total_amount"],
        "refunded": False,
    }
    payment: dict[str, Any] = {
        "currency": "XTR",
        "total_amount": spec["total_amount"],
        "invoice_payload": spec["payload"],
        "telegram_payment_charge_id": charge_id,
        "provider_payment_charge_id": "",
    }
    if spec.get("subscription_period"):
        payment["subscription_expiration_date"] = tg.now() + spec["subscription_period"]
        payment["is_recurring"] = True
        payment["is_first_recurring"] = not recurring
    chat = tg.find_chat(user.id)
    message = SimMessage(
        tg.next_message_id(chat.id), chat.id, False, tg.now(), successful_payment=payment
    )
    tg.store(message)
    data = tg.message_json(message)
    data["successful_payment"] = payment
    update_id = tg.updates.push({"message": data})
    return {"charge_id": charge_id, "update_id": update_id}
