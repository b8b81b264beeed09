"""Recompute the hash chains (entries, memo notes) and every balance from the rows themselves.

The ledger is streamed (``service.chained_entries``): memory stays flat however many
entries it holds, and the caller may watch the progress.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from satshare.ledger import accounts, repository
from satshare.ledger.chain import GENESIS_HASH, ChainRecord, chain_hash
from satshare.ledger.models import EntryKind
from satshare.ledger.service import chained_entries, chained_notes, unsealed_records
from satshare.money import MoneyError, Split, split

#: Told (items checked so far, items in all) as the check goes: chained and unsealed
#: entries, then memo notes.
Progress = Callable[[int, int], None]
#: Reversals looked up in one query when checking that each negates its original.
REVERSAL_BATCH = 1000


@dataclass
class VerifyReport:
    entries: int = 0
    postings: int = 0
    unsealed: int = 0
    notes: int = 0
    unsealed_notes: int = 0
    head_seq: int = 0
    head_hash: str = GENESIS_HASH
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(frozen=True, slots=True)
class _Reversal:
    """A reversal whose original is checked after the stream (it is elsewhere in it)."""

    #: Where its problem goes in ``problems``: after the entry's other problems.
    position: int
    where: str
    postings: tuple[tuple[str, int], ...]
    original_id: int


@functools.lru_cache(maxsize=4096)
def _split(gross_sats: int, share_bps: int) -> Split | str:
    """The split the terms give, or why they cannot (a stored row may hold anything). Most
    sales share a few prices and shares: each pair is computed once."""
    try:
        return split(gross_sats, share_bps)
    except MoneyError as exc:
        return f"its terms are not a valid sale ({exc})"


def _check_sale(entry: ChainRecord, postings: tuple[tuple[str, int], ...]) -> str | None:
    if entry.gross_sats is None or entry.share_bps is None:
        return "sale entry without gross_sats/share_bps"
    expected = _split(entry.gross_sats, entry.share_bps)
    if isinstance(expected, str):
        return expected
    credits = {code: -amount for code, amount in postings if amount < 0}
    affiliate = (
        credits.get(accounts.affiliate_payable(entry.affiliate_user_id), 0)
        if entry.affiliate_user_id is not None
        else 0
    )
    owner = credits.get(accounts.OWNER_REVENUE, 0)
    if affiliate != expected.affiliate_sats or owner != expected.owner_sats:
        return (
            f"split does not match its terms: owner {owner} / affiliate {affiliate}, expected "
            f"{expected.owner_sats} / {expected.affiliate_sats} for {entry.gross_sats} sats at "
            f"{entry.share_bps} bps"
        )
    return None


def _check_stars_sale(entry: ChainRecord, postings: tuple[tuple[str, int], ...]) -> str | None:
    if entry.gross_sats is None or entry.share_bps is None:
        return "stars sale without its sats value and share"
    terms = _split(entry.gross_sats, entry.share_bps)
    if isinstance(terms, str):
        return terms
    expected = terms.affiliate_sats
    credited = sum(
        -amount
        for code, amount in postings
        if entry.affiliate_user_id is not None
        and code == accounts.affiliate_payable(entry.affiliate_user_id)
    )
    if credited != expected:
        return f"stars commission {credited} sats does not match its terms ({expected} sats)"
    return None


def _check_entry(entry: ChainRecord) -> list[str]:
    """Balance and terms; the reversal check needs the original (``_check_reversals``)."""
    postings = entry.postings
    problems = []
    totals: dict[str, int] = defaultdict(int)
    for code, amount in postings:
        totals[accounts.currency_of(code)] += amount
    for currency, total in sorted(totals.items()):
        if total != 0:
            problems.append(f"{currency} postings sum to {total}, not zero")
    if len(postings) < 2:
        problems.append("fewer than two postings")
    if entry.kind == EntryKind.SALE:
        problem = _check_sale(entry, postings)
        if problem:
            problems.append(problem)
    if entry.kind == EntryKind.STARS_SALE:
        problem = _check_stars_sale(entry, postings)
        if problem:
            problems.append(problem)
    return problems


def _negates(postings: tuple[tuple[str, int], ...], original: list[tuple[str, int]]) -> bool:
    return sorted((c, -a) for c, a in original) == sorted(postings)


async def verify_ledger(session: AsyncSession, progress: Progress | None = None) -> VerifyReport:
    """Check the chain, every entry's balance, the notes chain and the balances, all on one
    snapshot: pass a fresh read transaction (nothing queried in it yet)."""
    await repository.one_snapshot(session)
    report = VerifyReport()
    reversals: list[_Reversal] = []
    total = (
        await repository.count_links(session)
        + await repository.count_unsealed(session)
        + await repository.count_note_links(session)
    )
    done = 0

    def check(entry: ChainRecord, where: str) -> None:
        report.problems.extend(f"{where}: {p}" for p in _check_entry(entry))
        if entry.reverses_entry_id is not None:
            reversals.append(
                _Reversal(len(report.problems), where, entry.postings, entry.reverses_entry_id)
            )

    prev_hash = GENESIS_HASH
    expected_seq = 1
    last_seq = 0
    async for batch in chained_entries(session):
        for link, entry in batch:
            last_seq = link.seq
            where = f"entry seq {link.seq} (transaction {link.item_id})"
            report.entries += 1
            if link.seq != expected_seq:
                report.problems.append(f"{where}: expected seq {expected_seq} (a gap in the chain)")
            expected_seq = link.seq + 1
            if link.prev_hash != prev_hash:
                report.problems.append(
                    f"{where}: prev_hash {link.prev_hash[:16]}… does not link to the previous "
                    f"entry's hash {prev_hash[:16]}…"
                )
            prev_hash = link.hash
            if entry is None:
                report.problems.append(f"{where}: the entry row is missing")
                continue
            report.postings += len(entry.postings)
            recomputed = chain_hash(link.prev_hash, entry)
            if recomputed != link.hash:
                report.problems.append(
                    f"{where}: hash mismatch (stored {link.hash[:16]}…, recomputed "
                    f"{recomputed[:16]}…): the entry or its postings were altered"
                )
            check(entry, where)
        done += len(batch)
        if progress is not None:
            progress(done, total)
    head_seq, head_hash = await repository.read_head(session)
    report.head_seq, report.head_hash = head_seq, head_hash
    if head_seq != last_seq or head_hash != prev_hash:
        report.problems.append(
            f"chain head says seq {head_seq} / {head_hash[:16]}…, but the last link is seq "
            f"{last_seq} / {prev_hash[:16]}…"
        )
    # Entries written in the last moments may not be sealed yet: they are checked for
    # balance and terms, and their postings counted, but carry no chain claim yet.
    async for pending in unsealed_records(session):
        for entry in pending:
            report.unsealed += 1
            check(entry, f"unsealed transaction {entry.entry_id}")
        done += len(pending)
        if progress is not None:
            progress(done, total)
    await _check_reversals(session, report, reversals)
    total_entries = await repository.count_entries(session)
    if total_entries != report.entries + report.unsealed:
        report.problems.append(
            f"{total_entries - report.entries - report.unsealed} entries are neither chained "
            "nor queued for sealing (written around the chain)"
        )
    per_currency: dict[str, int] = defaultdict(int)
    async for code, balance, checked in repository.account_sums_checked(session):
        if balance != checked:
            report.problems.append(
                f"account {code}: balance {balance} differs from the sum of its entries' "
                f"postings {checked} (a posting outside any entry?)"
            )
        per_currency[accounts.currency_of(code)] += balance
    for currency, balance in sorted(per_currency.items()):
        if balance != 0:
            report.problems.append(f"the {currency} ledger as a whole sums to {balance}, not zero")
    await _verify_notes(session, report, progress, done, total)
    return report


async def _check_reversals(
    session: AsyncSession, report: VerifyReport, reversals: list[_Reversal]
) -> None:
    """Each reversal exactly negates its original. Checked after the stream, a batch of
    originals per query (reversals are few: refunds and corrections); each problem goes
    where it would have been checked in place, after the entry's other problems."""
    found: list[tuple[int, str]] = []
    for start in range(0, len(reversals), REVERSAL_BATCH):
        batch = reversals[start : start + REVERSAL_BATCH]
        originals = await repository.postings_of(session, [r.original_id for r in batch])
        found += [
            (r.position, f"{r.where}: does not exactly negate the entry it reverses")
            for r in batch
            if not _negates(r.postings, originals[r.original_id])
        ]
    # Inserting from the last keeps every earlier position right.
    for position, problem in reversed(found):
        report.problems.insert(position, problem)


async def _verify_notes(
    session: AsyncSession, report: VerifyReport, progress: Progress | None, done: int, total: int
) -> None:
    """The notes chain: a memo note deleted, altered or written around it is named."""
    prev_hash = GENESIS_HASH
    last_seq = 0
    async for batch in chained_notes(session):
        for link, note in batch:
            where = f"note seq {link.seq} (note {link.item_id})"
            report.notes += 1
            if link.seq != last_seq + 1:
                report.problems.append(f"{where}: expected seq {last_seq + 1} (a gap in the chain)")
            last_seq = link.seq
            if link.prev_hash != prev_hash:
                report.problems.append(
                    f"{where}: prev_hash {link.prev_hash[:16]}… does not link to the previous "
                    f"note's hash {prev_hash[:16]}…"
                )
            prev_hash = link.hash
            if note is None:
                report.problems.append(f"{where}: the note row is missing (a memo was deleted)")
                continue
            if chain_hash(link.prev_hash, note) != link.hash:
                report.problems.append(
                    f"{where}: hash mismatch: the memo of transaction {note.entry_id} was altered"
                )
        done += len(batch)
        if progress is not None:
            progress(done, total)
    head_seq, head_hash = await repository.read_notes_head(session)
    if head_seq != last_seq or head_hash != prev_hash:
        report.problems.append(
            f"notes chain head says seq {head_seq} / {head_hash[:16]}…, but the last note link "
            f"is seq {last_seq} / {prev_hash[:16]}… (notes were removed from its end?)"
        )
    total_notes, report.unsealed_notes = await repository.count_notes(session)
    if total_notes != report.notes + report.unsealed_notes:
        report.problems.append(
            f"{total_notes} memo notes exist but {report.notes} are chained and "
            f"{report.unsealed_notes} queued for sealing: notes were deleted or written around "
            "the chain"
        )
