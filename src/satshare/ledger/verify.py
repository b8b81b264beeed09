"""Recompute the hash chains (entries, memo notes) and every balance from the rows themselves."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from satshare.ledger import accounts, repository
from satshare.ledger.chain import GENESIS_HASH, chain_hash
from satshare.ledger.models import Entry, EntryKind
from satshare.ledger.service import chain_record, note_record
from satshare.money import split

BATCH = 1000


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


def _check_sale(entry: Entry, postings: list[tuple[str, int]]) -> str | None:
    if entry.gross_sats is None or entry.share_bps is None:
        return "sale entry without gross_sats/share_bps"
    expected = split(entry.gross_sats, entry.share_bps)
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


def _check_stars_sale(entry: Entry, postings: list[tuple[str, int]]) -> str | None:
    if entry.gross_sats is None or entry.share_bps is None:
        return "stars sale without its sats value and share"
    expected = split(entry.gross_sats, entry.share_bps).affiliate_sats
    credited = sum(
        -amount
        for code, amount in postings
        if entry.affiliate_user_id is not None
        and code == accounts.affiliate_payable(entry.affiliate_user_id)
    )
    if credited != expected:
        return f"stars commission {credited} sats does not match its terms ({expected} sats)"
    return None


def _check_entry(
    entry: Entry, postings: list[tuple[str, int]], original: list[tuple[str, int]] | None
) -> list[str]:
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
    if entry.reverses_entry_id is not None and (
        original is None or sorted((c, -a) for c, a in original) != sorted(postings)
    ):
        problems.append("does not exactly negate the entry it reverses")
    return problems


async def verify_ledger(session: AsyncSession) -> VerifyReport:
    """Check the chain, every entry's balance, the notes chain and the balances, all on one
    snapshot: pass a fresh read transaction (nothing queried in it yet)."""
    await repository.one_snapshot(session)
    report = VerifyReport()
    prev_hash = GENESIS_HASH
    expected_seq = 1
    balances: dict[str, int] = defaultdict(int)
    last_seq = 0
    while True:
        batch = await repository.chain_from(session, last_seq, BATCH)
        if not batch:
            break
        entry_ids = [link.entry_id for link, _ in batch]
        grouped = await repository.postings_of(session, entry_ids)
        for link, entry in batch:
            last_seq = link.seq
            where = f"entry seq {link.seq} (transaction {link.entry_id})"
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
            postings = grouped[entry.id]
            report.postings += len(postings)
            recomputed = chain_hash(link.prev_hash, chain_record(link.seq, entry, postings))
            if recomputed != link.hash:
                report.problems.append(
                    f"{where}: hash mismatch (stored {link.hash[:16]}…, recomputed "
                    f"{recomputed[:16]}…): the entry or its postings were altered"
                )
            original = None
            if entry.reverses_entry_id is not None:
                original = (await repository.postings_of(session, [entry.reverses_entry_id]))[
                    entry.reverses_entry_id
                ]
            report.problems += [f"{where}: {p}" for p in _check_entry(entry, postings, original)]
            for code, amount in postings:
                balances[code] += amount
    head_seq, head_hash = await repository.read_head(session)
    report.head_seq, report.head_hash = head_seq, head_hash
    if head_seq != last_seq or head_hash != prev_hash:
        report.problems.append(
            f"chain head says seq {head_seq} / {head_hash[:16]}…, but the last link is seq "
            f"{last_seq} / {prev_hash[:16]}…"
        )
    # Entries written in the last moments may not be sealed yet: they are checked for
    # balance and terms, and their postings counted, but carry no chain claim yet.
    last_id = 0
    while True:
        pending = await repository.unsealed_entries(session, BATCH, after_id=last_id)
        if not pending:
            break
        grouped = await repository.postings_of(session, [e.id for e in pending])
        for entry in pending:
            last_id = entry.id
            report.unsealed += 1
            original = None
            if entry.reverses_entry_id is not None:
                original = (await repository.postings_of(session, [entry.reverses_entry_id]))[
                    entry.reverses_entry_id
                ]
            where = f"unsealed transaction {entry.id}"
            report.problems += [
                f"{where}: {p}" for p in _check_entry(entry, grouped[entry.id], original)
            ]
            for code, amount in grouped[entry.id]:
                balances[code] += amount
        if len(pending) < BATCH:
            break
    total = await repository.count_entries(session)
    if total != report.entries + report.unsealed:
        report.problems.append(
            f"{total - report.entries - report.unsealed} entries are neither chained nor queued "
            "for sealing (written around the chain)"
        )
    stored = await repository.all_account_sums(session)
    for code in sorted(set(stored) | set(balances)):
        if stored.get(code, 0) != balances.get(code, 0):
            report.problems.append(
                f"account {code}: balance {stored.get(code, 0)} differs from the sum of its "
                f"entries' postings {balances.get(code, 0)} (a posting outside any entry?)"
            )
    per_currency: dict[str, int] = defaultdict(int)
    for code, total in stored.items():
        per_currency[accounts.currency_of(code)] += total
    for currency, total in sorted(per_currency.items()):
        if total != 0:
            report.problems.append(f"the {currency} ledger as a whole sums to {total}, not zero")
    await _verify_notes(session, report)
    return report


async def _verify_notes(session: AsyncSession, report: VerifyReport) -> None:
    """The notes chain: a memo note deleted, altered or written around it is named."""
    prev_hash = GENESIS_HASH
    last_seq = 0
    while True:
        batch = await repository.note_chain_from(session, last_seq, BATCH)
        if not batch:
            break
        for link, note in batch:
            where = f"note seq {link.seq} (note {link.note_id})"
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
            if chain_hash(link.prev_hash, note_record(link.seq, note)) != link.hash:
                report.problems.append(
                    f"{where}: hash mismatch: the memo of transaction {note.entry_id} was altered"
                )
    head_seq, head_hash = await repository.read_notes_head(session)
    if head_seq != last_seq or head_hash != prev_hash:
        report.problems.append(
            f"notes chain head says seq {head_seq} / {head_hash[:16]}…, but the last note link "
            f"is seq {last_seq} / {prev_hash[:16]}… (notes were removed from its end?)"
        )
    total, report.unsealed_notes = await repository.count_notes(session)
    if total != report.notes + report.unsealed_notes:
        report.problems.append(
            f"{total} memo notes exist but {report.notes} are chained and "
            f"{report.unsealed_notes} queued for sealing: notes were deleted or written around "
            "the chain"
        )
