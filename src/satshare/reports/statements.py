"""Per-payment split statements: what an affiliate can check about each commission.

For each sale their referral made: the invoice, the proof the processor gave that it was
paid (Lightning preimage, on-chain txid, ...), the gross, the share and the terms that
applied, their commission, whether it was later reversed, and the ledger entry's hash (its
place in the public chain, once sealed). The buyer is not named.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from satshare.reports import repository

#: What the processor's proof is, per rail.
PROOF_KINDS = {
    "lnbits": "lightning_preimage",
    "onchain": "txid",
    "stars": "telegram_charge_id",
}


@dataclass(frozen=True, slots=True)
class Statement:
    transaction_id: int
    created_at: datetime
    invoice_id: str | None
    provider: str | None
    proof_kind: str | None
    proof: str | None
    #: For Lightning: the payment hash, which sha256(preimage) must equal.
    payment_hash: str | None
    gross_sats: int
    share_bps: int
    terms: str | None
    commission_sats: int
    reversed_by_transaction_id: int | None
    seq: int | None
    entry_hash: str | None


async def commission_statements(
    session: AsyncSession, user_id: int, *, limit: int, before_id: int | None = None
) -> list[Statement]:
    """The affiliate's commissions, newest first (``before_id``: a page cursor)."""
    statements = []
    rows = await repository.commission_rows(session, user_id, limit=limit, before_id=before_id)
    for entry, amount, invoice, payment, link, reversal_id in rows:
        provider = invoice.provider if invoice else None
        proof = payment.proof if payment else None
        proof_kind = PROOF_KINDS.get(provider or "") if proof else None
        if proof is None and invoice is not None:
            # BTCPay and BitPay report no txid to us: their invoice id is the reference.
            proof, proof_kind = invoice.provider_invoice_id, f"{provider}_invoice_id"
        statements.append(
            Statement(
                transaction_id=entry.id,
                created_at=entry.created_at,
                invoice_id=entry.invoice_id,
                provider=provider,
                proof_kind=proof_kind,
                proof=proof,
                payment_hash=(
                    invoice.provider_invoice_id if invoice and provider == "lnbits" else None
                ),
                gross_sats=entry.gross_sats or 0,
                share_bps=entry.share_bps or 0,
                terms=entry.terms,
                commission_sats=-amount,
                reversed_by_transaction_id=reversal_id,
                seq=link.seq if link else None,
                entry_hash=link.hash if link else None,
            )
        )
    return statements
