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


@dataclass(slots=True)
class ChainPart:
    """What one stretch of a chain (entries or notes) shows on its own. Its first link's
    seq and prev_hash are checked against the link before it when the parts are joined in
    order (``_Join``): a stretch can be checked without the one before it (each link's hash
    depends only on its own stored prev_hash), in another process."""

    links: int = 0
    postings: int = 0
    #: The first link: (seq, entry or note id, prev_hash); None for an empty stretch.
    first: tuple[int, int, str] | None = None
    #: The last link: (seq, hash).
    last: tuple[int, str] = (0, GENESIS_HASH)
    problems: list[str] = field(default_factory=list)
    #: Positions in this part's ``problems``.
    reversals: list[_Reversal] = field(default_factory=list)


class _Linkage:
    """The seq and prev_hash checks of consecutive links, in one place for both chains and
    for both a part's own links and the first link of each part as the parts are joined."""

    def __init__(self, noun: str) -> None:
        self.noun = noun
        self.last_seq = 0
        self.prev_hash = GENESIS_HASH

    def problems(self, where: str, seq: int, prev_hash: str) -> list[str]:
        found = []
        if seq != self.last_seq + 1:
            found.append(f"{where}: expected seq {self.last_seq + 1} (a gap in the chain)")
        if prev_hash != self.prev_hash:
            found.append(
                f"{where}: prev_hash {prev_hash[:16]}… does not link to the previous "
                f"{self.noun}'s hash {self.prev_hash[:16]}…"
            )
        return found

    def follow(self, seq: int, hash_: str) -> None:
        self.last_seq, self.prev_hash = seq, hash_


def _entry_where(seq: int, entry_id: int) -> str:
    return f"entry seq {seq} (transaction {entry_id})"


def _note_where(seq: int, note_id: int) -> str:
    return f"note seq {seq} (note {note_id})"


def _add_checks(
    problems: list[str],
    reversals: list[_Reversal],
    entry: ChainRecord,
    where: str,
    found: list[str] | None = None,
) -> None:
    """An entry's balance and terms problems (``found``, when already checked); a reversal
    is remembered to be checked against its original after the walk, its problem placed
    after the entry's others."""
    problems.extend(f"{where}: {p}" for p in (_check_entry(entry) if found is None else found))
    if entry.reverses_entry_id is not None:
        reversals.append(_Reversal(len(problems), where, entry.postings, entry.reverses_entry_id))


async def check_entries_part(
    session: AsyncSession, after: int, until: int | None, advance: Callable[[int], None] | None
) -> ChainPart:
    """Check the entries chain's links after seq ``after`` up to ``until`` (to its end when
    None), all but the first link's linkage (see ``ChainPart``). A link with nothing to
    report costs no text: every link of the ledger passes here."""
    part = ChainPart()
    problems = part.problems
    linkage = _Linkage("entry")
    async for batch in chained_entries(session, after, until):
        for link, entry in batch:
            seq = link.seq
            if part.first is None:
                part.first = (seq, link.item_id, link.prev_hash)
            elif seq != linkage.last_seq + 1 or link.prev_hash != linkage.prev_hash:
                problems += linkage.problems(_entry_where(seq, link.item_id), seq, link.prev_hash)
            linkage.last_seq, linkage.prev_hash = seq, link.hash
            if entry is None:
                problems.append(f"{_entry_where(seq, link.item_id)}: the entry row is missing")
                continue
            part.postings += len(entry.postings)
            recomputed = chain_hash(link.prev_hash, entry)
            found = _check_entry(entry)
            if recomputed != link.hash or found or entry.reverses_entry_id is not None:
                where = _entry_where(seq, link.item_id)
                if recomputed != link.hash:
                    problems.append(
                        f"{where}: hash mismatch (stored {link.hash[:16]}…, recomputed "
                        f"{recomputed[:16]}…): the entry or its postings were altered"
                    )
                _add_checks(problems, part.reversals, entry, where, found)
        part.links += len(batch)
        if advance is not None:
            advance(len(batch))
    part.last = (linkage.last_seq, linkage.prev_hash)
    return part


async def check_notes_part(
    session: AsyncSession, after: int, until: int | None, advance: Callable[[int], None] | None
) -> ChainPart:
    """``check_entries_part`` for the notes chain: a memo note deleted or altered is named."""
    part = ChainPart()
    problems = part.problems
    linkage = _Linkage("note")
    async for batch in chained_notes(session, after, until):
        for link, note in batch:
            seq = link.seq
            if part.first is None:
                part.first = (seq, link.item_id, link.prev_hash)
            elif seq != linkage.last_seq + 1 or link.prev_hash != linkage.prev_hash:
                problems += linkage.problems(_note_where(seq, link.item_id), seq, link.prev_hash)
            linkage.last_seq, linkage.prev_hash = seq, link.hash
            if note is None:
                problems.append(
                    f"{_note_where(seq, link.item_id)}: the note row is missing (a memo was "
                    "deleted)"
                )
                continue
            if chain_hash(link.prev_hash, note) != link.hash:
                problems.append(
                    f"{_note_where(seq, link.item_id)}: hash mismatch: the memo of transaction "
                    f"{note.entry_id} was altered"
                )
        part.links += len(batch)
        if advance is not None:
            advance(len(batch))
    part.last = (linkage.last_seq, linkage.prev_hash)
    return part


class _Join:
    """Joins a chain's parts in order into the report: each part's first link is checked
    against the previous part's last, its problems go before the part's own."""

    def __init__(self, report: VerifyReport, reversals: list[_Reversal], notes: bool) -> None:
        self.report = report
        self.reversals = reversals
        self.notes = notes
        self.linkage = _Linkage("note" if notes else "entry")

    def add(self, part: ChainPart) -> None:
        if part.first is None:
            return
        seq, item_id, prev_hash = part.first
        where = (_note_where if self.notes else _entry_where)(seq, item_id)
        problems = self.report.problems
        problems += self.linkage.problems(where, seq, prev_hash)
        base = len(problems)
        problems += part.problems
        self.reversals += [
            _Reversal(base + r.position, r.where, r.postings, r.original_id) for r in part.reversals
        ]
        self.linkage.follow(*part.last)
        if self.notes:
            self.report.notes += part.links
        else:
            self.report.entries += part.links
            self.report.postings += part.postings


#: Links per part when the chains are checked in several processes (``workers``): a part is
#: one task, and progress moves a part at a time.
PART_LINKS = 50_000
#: Fewer links than this in both chains together are checked in this process: starting
#: workers costs about a second, more than checking them here.
PARALLEL_FROM = 200_000


async def verify_ledger(
    session: AsyncSession, progress: Progress | None = None, *, workers: int = 1
) -> VerifyReport:
    """Check the chain, every entry's balance, the notes chain and the balances, all on one
    snapshot: pass a fresh read transaction (nothing queried in it yet).

    With ``workers`` > 1 on PostgreSQL and a long ledger, both chains are cut into parts of
    ``PART_LINKS`` links checked by that many processes, each reading this transaction's
    snapshot (``ledger/parallel.py``); the report is the same to the character."""
    await repository.one_snapshot(session)
    report = VerifyReport()
    reversals: list[_Reversal] = []
    links = await repository.count_links(session)
    note_links = await repository.count_note_links(session)
    total = links + await repository.count_unsealed(session) + note_links
    done = 0

    def advance(count: int) -> None:
        nonlocal done
        done += count
        if progress is not None:
            progress(done, total)

    entry_join = _Join(report, reversals, notes=False)
    note_join = _Join(report, reversals, notes=True)
    snapshot = None
    if workers > 1 and links + note_links >= PARALLEL_FROM:
        snapshot = await repository.export_snapshot(session)
    if snapshot is None:
        entry_join.add(await check_entries_part(session, 0, None, advance))
        await _after_entries_chain(session, report, reversals, advance, entry_join.linkage)
        note_join.add(await check_notes_part(session, 0, None, advance))
    else:
        from satshare.ledger import parallel

        url = (await session.connection()).engine.url.render_as_string(hide_password=False)
        async with parallel.PartPool(url, snapshot, workers, PART_LINKS) as pool:
            # Every part is handed out first (the notes' too: the workers go on with them
            # while this process checks what follows the entries chain), then joined in order.
            entry_parts = await pool.submit_chain(session, notes=False)
            note_parts = await pool.submit_chain(session, notes=True)
            for waiting in entry_parts:
                part = await waiting
                entry_join.add(part)
                advance(part.links)
            await _after_entries_chain(session, report, reversals, advance, entry_join.linkage)
            for waiting in note_parts:
                part = await waiting
                note_join.add(part)
                advance(part.links)
    await _after_notes_chain(session, report, note_join.linkage)
    return report


async def _after_entries_chain(
    session: AsyncSession,
    report: VerifyReport,
    reversals: list[_Reversal],
    advance: Callable[[int], None],
    chain: _Linkage,
) -> None:
    """The head, the entries not sealed yet, the reversals, the counts and the balances."""
    head_seq, head_hash = await repository.read_head(session)
    report.head_seq, report.head_hash = head_seq, head_hash
    if head_seq != chain.last_seq or head_hash != chain.prev_hash:
        report.problems.append(
            f"chain head says seq {head_seq} / {head_hash[:16]}…, but the last link is seq "
            f"{chain.last_seq} / {chain.prev_hash[:16]}…"
        )
    # Entries written in the last moments may not be sealed yet: they are checked for
    # balance and terms, and their postings counted, but carry no chain claim yet.
    async for pending in unsealed_records(session):
        for entry in pending:
            report.unsealed += 1
            _add_checks(report.problems, reversals, entry, f"unsealed transaction {entry.entry_id}")
        advance(len(pending))
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


async def _after_notes_chain(session: AsyncSession, report: VerifyReport, chain: _Linkage) -> None:
    """The notes chain's head and count: notes removed from its end or written around it."""
    head_seq, head_hash = await repository.read_notes_head(session)
    if head_seq != chain.last_seq or head_hash != chain.prev_hash:
        report.problems.append(
            f"notes chain head says seq {head_seq} / {head_hash[:16]}…, but the last note link "
            f"is seq {chain.last_seq} / {chain.prev_hash[:16]}… (notes were removed from its end?)"
        )
    total_notes, report.unsealed_notes = await repository.count_notes(session)
    if total_notes != report.notes + report.unsealed_notes:
        report.problems.append(
            f"{total_notes} memo notes exist but {report.notes} are chained and "
            f"{report.unsealed_notes} queued for sealing: notes were deleted or written around "
            "the chain"
        )
