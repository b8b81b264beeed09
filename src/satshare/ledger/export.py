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

from satshare.ledger.service import chained_entries

#: One line's JSON: compact, keys sorted (built once, not per line).
_LINE = json.JSONEncoder(sort_keys=True, separators=(",", ":"))


async def export_lines(session: AsyncSession) -> AsyncIterator[list[str]]:
    """The export's lines in chain order, a few thousand at a time (streamed: memory stays
    flat however long the ledger)."""
    async for batch in chained_entries(session):
        lines = []
        for link, entry in batch:
            if entry is None:
                # A chain link whose entry row is gone: export what remains so the gap shows.
                record: dict[str, object] = {"seq": link.seq, "entry_id": link.item_id}
            else:
                record = entry.as_dict()
            record["prev_hash"] = link.prev_hash
            record["hash"] = link.hash
            lines.append(_LINE.encode(record) + "\n")
        yield lines
