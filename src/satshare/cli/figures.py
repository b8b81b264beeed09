"""`satshare figures ...`: check the ledger's figures against the ledger, or build them anew."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from satshare.cli.common import Group, err, fail, opened, out, run, settings
from satshare.ledger.figures import flows as figure_flows
from satshare.reports import flows as report_flows
from satshare.reports.recompute import Report

figures_app = typer.Typer(
    cls=Group,
    help="The ledger's figures (sums the sealer keeps for reports, balances and the "
    "leaderboard) and the dashboard's tallies (subscriptions, payouts): check them, "
    "rebuild them.",
    no_args_is_help=True,
)


@figures_app.command("check")
def check_command(
    months: Annotated[
        bool, typer.Option("--months/--no-months", help="Also each month's affiliate lines.")
    ] = True,
) -> None:
    """Recompute every figure from the ledger and every tally from the subscriptions and
    payouts (slow: it reads the whole ledger several times) and compare; exit 1 naming each
    difference."""
    cfg = settings()

    async def go() -> Report:
        async with opened(cfg) as container:
            await container.sealer.flush()
            return await report_flows.check_figures(
                container.db, container.clock.now(), months=months
            )

    report = run(go())
    if report.ok:
        out.print(f"[green]Figures match the ledger:[/] {report.checked} figures checked.")
        return
    for difference in report.differences:
        err.print(f"[bold red]figures:[/] {escape(difference)}", highlight=False, soft_wrap=True)
    raise fail(
        f"{len(report.differences)} of {report.checked} figures differ from the ledger; "
        "`satshare figures rebuild` builds them anew",
        code=1,
    )


@figures_app.command("rebuild")
def rebuild_command() -> None:
    """Empty the figures and fold every sealed entry again (sealing waits meanwhile); count
    the tallies anew (writers of subscriptions and payouts wait meanwhile)."""
    cfg = settings()

    async def go() -> int:
        async with opened(cfg) as container:
            await container.sealer.flush()
            folded = await figure_flows.rebuild(container.db, container.clock.now())
            await report_flows.rebuild_tallies(container.db)
            return folded

    out.print(f"Figures rebuilt from {run(go())} sealed entries; tallies counted anew.")
