"""`satshare payout ...`: list, approve, cancel, export and mark payouts paid by hand."""

from __future__ import annotations

import sys
from typing import Annotated, Literal

import typer
from rich.markup import escape
from rich.table import Table

from satshare.cli.audit import audited, author
from satshare.cli.common import Group, JsonOption, opened, out, print_json, run, settings
from satshare.payouts import export, flows
from satshare.payouts.destinations import mask
from satshare.payouts.models import Payout, PayoutStatus

payout_app = typer.Typer(cls=Group, help="Affiliate payouts: approve, cancel, export, mark paid.")

STATUSES = ("awaiting_approval", "approved", "sending", "paid", "failed", "unknown", "canceled")


def _describe(payout: Payout) -> str:
    where = mask(payout.destination)
    return f"payout {payout.id}: {payout.amount_sats} sats to {where} is {payout.status}"


@payout_app.command("list")
def list_command(
    status: Annotated[
        str | None, typer.Option(metavar="STATUS", help=f"Only this status: {', '.join(STATUSES)}.")
    ] = None,
    user: Annotated[
        int | None, typer.Option(metavar="USER_ID", help="Only this affiliate's user id.")
    ] = None,
    limit: Annotated[
        int, typer.Option(min=1, max=1000, metavar="N", help="At most this many.")
    ] = 50,
    as_json: JsonOption = False,
) -> None:
    """List payouts, newest first."""
    if status is not None and status not in STATUSES:
        raise typer.BadParameter(f"unknown status {status!r}; use one of {', '.join(STATUSES)}")
    cfg = settings()

    async def go() -> list[Payout]:
        async with opened(cfg) as container:
            chosen = PayoutStatus(status) if status else None
            return list(
                await flows.list_payouts(
                    container.payouts, limit=limit, user_id=user, status=chosen
                )
            )

    rows = run(go())
    if as_json:
        print_json(
            {
                "id": p.id,
                "user_id": p.user_id,
                "amount_sats": p.amount_sats,
                "fee_sats": p.fee_sats,
                "destination": mask(p.destination),
                "status": p.status,
                "created_at": p.created_at,
                "proof": p.proof,
                "failure": p.failure,
            }
            for p in rows
        )
        return
    table = Table("id", "user", "amount", "fee", "to", "status", "created", "proof / failure")
    for p in rows:
        table.add_row(
            str(p.id),
            str(p.user_id),
            str(p.amount_sats),
            str(p.fee_sats),
            escape(mask(p.destination)),
            p.status,
            p.created_at.strftime("%Y-%m-%d %H:%M"),
            escape(p.proof or p.failure or ""),
        )
    out.print(table)
    if not rows:
        out.print("No payouts.")


@payout_app.command("approve")
@audited("payout.approve", "payout:{payout_id}")
def approve_command(
    payout_id: Annotated[int, typer.Argument(metavar="PAYOUT_ID", help="The payout's id.")],
) -> None:
    """Approve a payout waiting for approval; a provider sends it at the next run."""
    cfg = settings()

    async def go() -> Payout:
        async with opened(cfg) as container:
            return await flows.approve(container.payouts, payout_id, author())

    payout = run(go())
    out.print(_describe(payout), highlight=False)
    if cfg.payout_provider == "manual":
        out.print("Pay it from your wallet, then: satshare payout mark-paid ID --txid TXID")


@payout_app.command("cancel")
@audited("payout.cancel", "payout:{payout_id}")
def cancel_command(
    payout_id: Annotated[int, typer.Argument(metavar="PAYOUT_ID", help="The payout's id.")],
    reason: Annotated[
        str | None, typer.Option(metavar="REASON", help="Why; the affiliate is told.")
    ] = None,
) -> None:
    """Cancel a payout not yet sent; its amount returns to the affiliate's balance."""
    cfg = settings()

    async def go() -> Payout:
        async with opened(cfg) as container:
            return await flows.cancel(container.payouts, payout_id, author(), reason)

    out.print(_describe(run(go())), highlight=False)


@payout_app.command("export")
def export_command(
    format_: Annotated[
        Literal["csv", "batch"],
        typer.Option(
            "--format",
            help="csv: every approved payout waiting to be paid by hand; batch: on-chain "
            "ones as 'address, amount in BTC' lines for a wallet's pay-to-many.",
        ),
    ] = "csv",
) -> None:
    """Print the approved payouts that wait to be paid by hand (payouts.provider: manual)."""
    cfg = settings()

    async def go() -> list[Payout]:
        async with opened(cfg) as container:
            return list(await flows.awaiting_manual_payment(container.payouts))

    rows = run(go())
    sys.stdout.write(export.as_csv(rows) if format_ == "csv" else export.as_batch(rows))


@payout_app.command("mark-paid")
@audited("payout.mark-paid", "payout:{payout_id}")
def mark_paid_command(
    payout_id: Annotated[int, typer.Argument(metavar="PAYOUT_ID", help="The payout's id.")],
    txid: Annotated[
        str,
        typer.Option(
            metavar="TXID", help="The transaction id (or, for Lightning, the payment preimage)."
        ),
    ],
    fee: Annotated[
        int | None,
        typer.Option(min=0, metavar="SATS", help="The mining or routing fee you paid, in sats."),
    ] = None,
) -> None:
    """Record a payout you paid from your own wallet: it becomes paid in the ledger."""
    cfg = settings()

    async def go() -> Payout:
        async with opened(cfg) as container:
            return await flows.mark_paid(container.payouts, payout_id, txid, fee, author())

    out.print(_describe(run(go())), highlight=False)


@payout_app.command("mark-failed")
@audited("payout.mark-failed", "payout:{payout_id}")
def mark_failed_command(
    payout_id: Annotated[
        int, typer.Argument(metavar="PAYOUT_ID", help="The payout's id (it must be unknown).")
    ],
    reason: Annotated[
        str,
        typer.Option(metavar="REASON", help="What the provider shows for it; kept on the payout."),
    ],
) -> None:
    """Declare an unknown payout not paid, after checking the provider yourself: its amount
    returns to the affiliate. A later 'paid' from the provider is still recorded and alerted."""
    cfg = settings()

    async def go() -> Payout:
        async with opened(cfg) as container:
            return await flows.release_unknown(container.payouts, payout_id, reason, author())

    out.print(_describe(run(go())), highlight=False)
