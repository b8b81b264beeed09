#!/usr/bin/env python3
"""Check a SatShare ledger export on your own machine, with Python's standard library only.

    satshare ledger export > ledger.jsonl          # the operator publishes or sends this
    python3 verify_ledger_export.py ledger.jsonl   # anyone recomputes it
    python3 verify_ledger_export.py ledger.jsonl --head <hash you saw on /transparency>

It recomputes every entry's hash and the chain linking them, checks that each entry balances
(per currency), that every sale's split matches its stored share, and that every reversal
exactly negates the entry it reverses; then it prints the totals the public transparency
page shows, recomputed from the postings. Exit status 0: all good; 1: the first bad line is
named (and every problem listed); 2: the file cannot be read.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections import defaultdict

GENESIS = "0" * 64
#: The fields the hash commits to. ``terms`` is included when present (entries written
#: before terms were recorded have none).
HASHED = (
    "seq",
    "entry_id",
    "idempotency_key",
    "kind",
    "created_at",
    "invoice_id",
    "gross_sats",
    "share_bps",
    "affiliate_user_id",
    "reverses_entry_id",
    "postings",
)
SALES = ("sale", "stars_sale")
PAYOUT_KINDS = ("payout_hold", "payout", "payout_release")


def canonical(record: dict) -> bytes:
    body = {name: record[name] for name in HASHED}
    if record.get("terms") is not None:
        body["terms"] = record["terms"]
    body["postings"] = sorted([code, amount] for code, amount in body["postings"])
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def currency(code: str) -> str:
    return "XTR" if code.rsplit(":", 1)[-1] == "xtr" else "SAT"


def check_entry(record: dict, by_entry: dict[int, dict]) -> list[str]:
    problems = []
    sums: dict[str, int] = defaultdict(int)
    for code, amount in record["postings"]:
        if not isinstance(amount, int):
            problems.append(f"posting {code} is not a whole number")
            continue
        sums[currency(code)] += amount
    for cur, total in sorted(sums.items()):
        if total:
            problems.append(f"{cur} postings sum to {total}, not zero")
    credits = defaultdict(int)
    for code, amount in record["postings"]:
        if amount < 0:
            credits[code] -= amount
    if record["kind"] == "sale":
        gross, share = record["gross_sats"], record["share_bps"]
        affiliate_id = record["affiliate_user_id"]
        expected = gross * share // 10_000 if affiliate_id is not None else 0
        got = credits.get(f"payable:affiliate:{affiliate_id}", 0) if affiliate_id else 0
        owner = credits.get("revenue:owner", 0)
        if got != expected or owner != gross - expected:
            problems.append(
                f"split owner {owner} / affiliate {got} does not match {gross} sats at "
                f"{share} bps (expected {gross - expected} / {expected})"
            )
    reverses = record["reverses_entry_id"]
    if reverses is not None:
        original = by_entry.get(reverses)
        if original is None:
            problems.append(f"reverses entry {reverses}, which is not earlier in the export")
        elif sorted([c, -a] for c, a in original["postings"]) != sorted(
            [c, a] for c, a in record["postings"]
        ):
            problems.append(f"does not exactly negate entry {reverses}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("export", help="the JSON Lines file from `satshare ledger export`")
    parser.add_argument("--head", help="a head hash you hold: the chain must reach it")
    args = parser.parse_args()
    try:
        with open(args.export, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except OSError as exc:
        print(f"cannot read {args.export}: {exc}", file=sys.stderr)
        return 2

    problems: list[str] = []
    by_entry: dict[int, dict] = {}
    prev, expected_seq = GENESIS, 1
    hashes = set()
    totals = defaultdict(int)
    owed = 0
    for number, line in enumerate(lines, start=1):
        where = f"line {number}"
        try:
            record = json.loads(line)
            where = f"line {number} (seq {record['seq']}, entry {record['entry_id']})"
            missing = [name for name in (*HASHED, "prev_hash", "hash") if name not in record]
            if missing:
                problems.append(f"{where}: missing {', '.join(missing)}")
                continue
        except (ValueError, KeyError, TypeError) as exc:
            problems.append(f"{where}: not a ledger record ({exc})")
            continue
        if record["seq"] != expected_seq:
            problems.append(f"{where}: expected seq {expected_seq} (an entry is missing)")
        expected_seq = record["seq"] + 1
        if record["prev_hash"] != prev:
            problems.append(f"{where}: prev_hash does not link to the previous entry's hash")
        digest = hashlib.sha256(bytes.fromhex(record["prev_hash"]) + canonical(record)).hexdigest()
        if digest != record["hash"]:
            problems.append(f"{where}: hash mismatch: the entry or its postings were altered")
        prev = record["hash"]
        hashes.add(prev)
        problems += [f"{where}: {p}" for p in check_entry(record, by_entry)]
        by_entry[record["entry_id"]] = record

        # The transparency figures, from the postings alone.
        kind = record["kind"]
        original = by_entry.get(record["reverses_entry_id"] or -1)
        if kind == "sale":
            totals["gross_sats"] += record["gross_sats"]
        elif original is not None and original["kind"] == "sale":
            totals["gross_sats"] -= original["gross_sats"]
        for code, amount in record["postings"]:
            if code == "revenue:owner":
                totals["owner_share_sats"] -= amount
            elif code == "revenue:xtr":
                totals["stars_received"] -= amount
            elif code.startswith("payable:affiliate:") and kind not in PAYOUT_KINDS:
                totals["affiliate_share_sats"] -= amount
            elif code == "payable:payouts" and kind == "payout":
                totals["paid_out_sats"] += amount
            if code.startswith("payable:affiliate:") or code == "payable:payouts":
                owed -= amount

    if args.head and args.head not in hashes:
        problems.append(
            f"the head {args.head} you hold is not in this chain: history was rewritten"
        )
    if problems:
        print(f"FAILED: {problems[0]}", file=sys.stderr)
        for problem in problems[1:]:
            print(f"  also: {problem}", file=sys.stderr)
        return 1
    print(f"OK: {len(lines)} entries verify; head {prev}")
    for name in ("gross_sats", "owner_share_sats", "affiliate_share_sats", "paid_out_sats"):
        print(f"{name}: {totals[name]}")
    print(f"owed_sats: {owed}")
    print(f"stars_received: {totals['stars_received']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
