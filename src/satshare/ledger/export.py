"""The chained ledger as JSON Lines: one entry per line with its postings and hashes.

Each line is exactly the canonical record the hash commits to (see ``chain.py``) plus
``prev_hash`` and ``hash``, so anyone can recompute the chain from the file alone with
``docs/verify_ledger_export.py``. Entries not yet sealed into the chain are left out (the
sealer adds them within seconds).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from sqlalchemy.ext.asyncio import AsyncSession

from satshare.ledger import repository
from satshare.ledger.service import chain_record

BATCH = 1000


async def export_lines(session: AsyncSession) -> AsyncIterator[str]:
    last_seq = 0
    while True:
        batch = await repository.chain_from(session, last_seq, BATCH)
        if not batch:
            return
        grouped = await repository.postings_of(
            session, [entry.id for _, entry in batch if entry is not None]
        )
        for link, entry in batch:
            last_seq = link.seq
            if entry is None:
                # A chain link whose entry row is gone: export what remains so the gap shows.
                record: dict[str, object] = {"seq": link.seq, "entry_id": link.entry_id}
            else:
                record = chain_record(link.seq, entry, grouped[entry.id]).as_dict()
            record["prev_hash"] = link.prev_hash
            record["hash"] = link.hash
            yield json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n"
