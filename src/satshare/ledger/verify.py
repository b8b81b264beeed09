"""Recompute the hash chain and every balance from the rows themselves."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from satshare.ledger import accounts, repository
from satshare.ledger.chain import GENESIS_HASH, ChainRecord, chain_hash
from satshare.ledger.models import Entry
from satshare.money import split

BATCH = 1000


@dataclass
class VerifyReport:
    entries: int = 0
    postings: int = 0
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


async def verify_ledger(session: AsyncSession) -> VerifyReport:
    report = VerifyReport()
    prev_hash = GENESIS_HASH
    expected_seq = 1
    balances: dict[str, int] = defaultdict(int)
    seq_of_id: dict[int, int] = {}
    last_seq = 0
    while True:
        batch = await repository.entries_from_seq(session, last_seq, BATCH)
        if not batch:
            break
        grouped = await repository.postings_of(session, [e.id for e in batch])
        for entry in batch:
            last_seq = entry.seq
            where = f"entry seq {entry.seq} (transaction {entry.id})"
            postings = grouped[entry.id]
            seq_of_id[entry.id] = entry.seq
            report.entries += 1
            report.postings += len(postings)
            if entry.seq != expected_seq:
                report.problems.append(f"{where}: expected seq {expected_seq} (a gap or a fork)")
            expected_seq = entry.seq + 1
            if entry.prev_hash != prev_hash:
                report.problems.append(
                    f"{where}: prev_hash {entry.prev_hash[:16]}… does not link to the previous "
                    f"entry's hash {prev_hash[:16]}…"
                )
            reverses_seq = None
            if entry.reverses_entry_id is not None:
                reverses_seq = seq_of_id.get(entry.reverses_entry_id)
                fetched = await repository.postings_of(session, [entry.reverses_entry_id])
                original = fetched[entry.reverses_entry_id]
                if reverses_seq is None:
                    report.problems.append(f"{where}: reverses an entry that precedes nothing")
                elif sorted((c, -a) for c, a in original) != sorted(postings):
                    report.problems.append(
                        f"{where}: does not exactly negate the entry it reverses"
                    )
            record = ChainRecord(
                seq=entry.seq,
                idempotency_key=entry.idempotency_key,
                kind=entry.kind,
                created_at=entry.created_at,
                invoice_id=entry.invoice_id,
                gross_sats=entry.gross_sats,
                share_bps=entry.share_bps,
                affiliate_user_id=entry.affiliate_user_id,
                reverses_seq=reverses_seq,
                postings=tuple(postings),
            )
            recomputed = chain_hash(entry.prev_hash, record)
            if recomputed != entry.hash:
                report.problems.append(
                    f"{where}: hash mismatch (stored {entry.hash[:16]}…, recomputed "
                    f"{recomputed[:16]}…): the row or its postings were altered"
                )
            total = sum(amount for _, amount in postings)
            if total != 0:
                report.problems.append(f"{where}: postings sum to {total}, not zero")
            if len(postings) < 2:
                report.problems.append(f"{where}: fewer than two postings")
            if entry.kind == "sale":
                problem = _check_sale(entry, postings)
                if problem:
                    report.problems.append(f"{where}: {problem}")
            for code, amount in postings:
                balances[code] += amount
            prev_hash = entry.hash
    head_seq, head_hash = await repository.read_head(session)
    report.head_seq, report.head_hash = head_seq, head_hash
    if head_seq != last_seq or head_hash != prev_hash:
        report.problems.append(
            f"chain head says seq {head_seq} / {head_hash[:16]}…, but the last entry is seq "
            f"{last_seq} / {prev_hash[:16]}…"
        )
    stored = await repository.all_account_sums(session)
    for code in sorted(set(stored) | set(balances)):
        if stored.get(code, 0) != balances.get(code, 0):
            report.problems.append(
                f"account {code}: balance {stored.get(code, 0)} differs from the sum of its "
                f"chained postings {balances.get(code, 0)} (a posting outside any entry?)"
            )
    if sum(balances.values()) != 0:
        report.problems.append(f"the ledger as a whole sums to {sum(balances.values())}, not zero")
    return report
