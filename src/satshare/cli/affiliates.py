"""`satshare affiliate ...`: an affiliate's overview, custom terms, suspension."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from satshare.affiliates import flows as affiliate_flows
from satshare.affiliates.models import AffiliateTerms
from satshare.cli.audit import audited, author
from satshare.cli.common import Group, JsonOption, opened, out, print_json, run, settings
from satshare.payouts.overview import AffiliateOverview, overview

affiliate_app = typer.Typer(cls=Group, help="Affiliates: overview, custom terms, suspension.")

UserId = Annotated[int, typer.Argument(metavar="USER_ID", help="The affiliate's user id.")]


def _print(view: AffiliateOverview) -> None:
    b, r = view.balance, view.referrals
    table = Table(show_header=False, title=f"Affiliate {view.user_id}")
    table.add_row("terms", f"{view.terms.share_bps / 100:g}% ({view.terms.label})")
    table.add_row("balance", f"{b.balance_sats} sats")
    table.add_row("available", f"{b.available_sats} sats")
    table.add_row("pending (hold)", f"{b.pending_sats} sats")
    table.add_row("total earned", f"{b.total_earned_sats} sats")
    table.add_row("paid out", f"{view.payouts.paid_sats} sats")
    table.add_row("in payouts", f"{view.payouts.in_flight_sats} sats")
    table.add_row("referrals", f"{r.registered} registered, {r.paying} paying")
    table.add_row("referred sales", f"{r.referred_sales_sats} sats")
    accepted = view.terms_accepted_at
    table.add_row(
        f"terms v{view.terms_version}",
        f"accepted {accepted:%Y-%m-%d %H:%M}" if accepted else "not accepted",
    )
    destination = view.destination
    table.add_row(
        "destination", escape(f"{destination.value} ({destination.kind})") if destination else "—"
    )
    if view.suspension is not None:
        s = view.suspension
        table.add_row(
            "SUSPENDED", escape(f"since {s.suspended_at:%Y-%m-%d} by {s.suspended_by}: {s.reason}")
        )
    out.print(table)


@affiliate_app.command("show")
def show_command(user_id: UserId) -> None:
    """Terms, balance, referrals, acceptance, destination and suspension."""
    cfg = settings()

    async def go() -> AffiliateOverview:
        async with opened(cfg) as container:
            return await overview(
                container.db, container.payouts.program, user_id, container.clock.now()
            )

    _print(run(go()))


@affiliate_app.command("set-terms")
@audited("affiliate.terms", "user:{user_id}")
def set_terms_command(
    user_id: UserId,
    reason: Annotated[str, typer.Option(metavar="REASON", help="Why; kept in the terms history.")],
    share_bps: Annotated[
        int | None,
        typer.Option(
            min=0, max=10_000, metavar="BPS", help="The share in basis points (5000 = 50%)."
        ),
    ] = None,
    level_based: Annotated[
        bool, typer.Option("--level-based", help="Drop the custom share: back to the levels.")
    ] = False,
) -> None:
    """Give one affiliate custom terms (a new version; past commissions keep theirs)."""
    if (share_bps is None) == (not level_based):
        raise typer.BadParameter("give either --share-bps N or --level-based")
    cfg = settings()

    async def go() -> int:
        async with opened(cfg) as container:
            row = await affiliate_flows.set_custom_terms(
                container.db,
                user_id,
                share_bps,
                reason=reason,
                author=author(),
                now=container.clock.now(),
            )
            return row.version

    version = run(go())
    what = f"{share_bps / 100:g}%" if share_bps is not None else "level-based"
    out.print(f"Affiliate {user_id}: custom terms v{version}, {what}. New sales use them.")


@affiliate_app.command("terms")
def terms_command(user_id: UserId, as_json: JsonOption = False) -> None:
    """The history of an affiliate's custom terms, oldest first."""
    cfg = settings()

    async def go() -> list[AffiliateTerms]:
        async with opened(cfg) as container:
            return list(await affiliate_flows.terms_history(container.db, user_id))

    rows = run(go())
    if as_json:
        print_json(
            {
                "version": row.version,
                "share_bps": row.share_bps,
                "set_by": row.set_by,
                "created_at": row.created_at,
                "reason": row.reason,
            }
            for row in rows
        )
        return
    table = Table("version", "share", "set by", "when", "reason")
    for row in rows:
        share = f"{row.share_bps / 100:g}%" if row.share_bps is not None else "level-based"
        table.add_row(
            str(row.version),
            share,
            escape(row.set_by),
            f"{row.created_at:%Y-%m-%d %H:%M}",
            escape(row.reason),
        )
    out.print(table)
    if not rows:
        out.print(f"Affiliate {user_id} has no custom terms: the base and level terms apply.")


@affiliate_app.command("suspend")
@audited("affiliate.suspend", "user:{user_id}")
def suspend_command(
    user_id: UserId,
    reason: Annotated[str, typer.Option(metavar="REASON", help="Why; kept with the suspension.")],
) -> None:
    """Suspend an affiliate: their new commissions go to the owner until reinstated."""
    cfg = settings()

    async def go() -> None:
        async with opened(cfg) as container:
            await affiliate_flows.suspend(
                container.db, user_id, reason=reason, author=author(), now=container.clock.now()
            )

    run(go())
    out.print(f"Affiliate {user_id} is suspended: new commissions go to the owner.")


@affiliate_app.command("reinstate")
@audited("affiliate.reinstate", "user:{user_id}")
def reinstate_command(user_id: UserId) -> None:
    """Lift a suspension: commissions resume from the next sale."""
    cfg = settings()

    async def go() -> None:
        async with opened(cfg) as container:
            await affiliate_flows.reinstate(
                container.db, user_id, author=author(), now=container.clock.now()
            )

    run(go())
    out.print(f"Affiliate {user_id} is reinstated.")
