"""Approved payouts the owner pays by hand (payouts.provider: manual): a CSV for the records
and a batch to paste into a wallet's "pay to many" (Sparrow, Electrum: one
``address, amount`` per line, amounts in BTC)."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

from satshare.money import sats_to_btc
from satshare.payouts.models import Payout

CSV_COLUMNS = ("payout_id", "user_id", "destination_kind", "destination", "send_sats", "send_btc")


def as_csv(payouts: Sequence[Payout]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for p in payouts:
        writer.writerow(
            (
                p.id,
                p.user_id,
                p.destination_kind,
                p.destination,
                p.send_sats,
                sats_to_btc(p.send_sats),
            )
        )
    return out.getvalue()


def as_batch(payouts: Sequence[Payout]) -> str:
    """On-chain payouts only, one output each; totals per address are merged so a wallet
    never sees the same address twice."""
    totals: dict[str, int] = {}
    for p in payouts:
        if p.destination_kind == "onchain":
            totals[p.destination] = totals.get(p.destination, 0) + p.send_sats
    return "".join(f"{address}, {sats_to_btc(amount)}\n" for address, amount in totals.items())
