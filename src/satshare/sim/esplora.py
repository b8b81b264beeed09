"""An Esplora REST emulator (the API of blockstream.info and mempool.space) over real HTTP.

It models what a payment watcher sees: a chain of blocks, a mempool, and transactions paying
addresses. ``/address/{a}/txs`` lists mempool transactions first, then up to 25 confirmed
ones, newest first, paged with ``/address/{a}/txs/chain/{last_txid}``; ``/tx/{txid}/status``
and ``/blocks/tip/height`` (plain text) as documented. Errors are text/plain 400/404.

The control API under ``/_sim`` lets tests broadcast payments, mine blocks, replace a
mempool transaction (RBF, full RBF being the default since Bitcoin Core 28) and re-org the
tip, dropping or keeping the transactions of the orphaned blocks.

Faults (``sim/faults.py``), from Python or ``GET/POST /_sim/settings``: ``api_down`` (503 to
every read) and the uniform knobs (``delay``, ``fail_next``, ``accept_then_fail``,
``die_mid_call``) on the one operation ``fetch`` (every read: tip, address history and
UTXOs, transactions), e.g. ``emulator.faults.fetch.die_mid_call = True`` or
``{"faults": {"fetch": {"die_mid_call": true}}}``. Esplora sends no notifications, so there
are no webhooks to drop.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from satshare.sim.faults import Faults, FaultSettingsError, Handler, settings_request

PAGE = 25


@dataclass
class SimTx:
    txid: str
    outputs: list[tuple[str, int]]  # (address, sats)
    fee: int = 500
    block_height: int | None = None
    seen: int = 0

    def as_json(self, chain: SimChain) -> dict[str, Any]:
        return {
            "txid": self.txid,
            "version": 2,
            "locktime": 0,
            "vin": [
                {
                    "txid": hashlib.sha256(self.txid.encode()).hexdigest(),
                    "vout": 0,
                    "is_coinbase": False,
                    "sequence": 4294967293,
                }
            ],
            "vout": [
                {
                    "scriptpubkey_address": address,
                    "scriptpubkey_type": "v0_p2wpkh" if address[3:4] == "q" else "v1_p2tr",
                    "value": value,
                }
                for address, value in self.outputs
            ],
            "size": 222,
            "weight": 561,
            "fee": self.fee,
            "status": chain.status_of(self),
        }


@dataclass
class SimChain:
    base: int = 0  # height of blocks[0]; older history is not modelled
    blocks: list[tuple[str, int]] = field(default_factory=list)  # (hash, time)

    def tip(self) -> int:
        return self.base + len(self.blocks) - 1

    def status_of(self, tx: SimTx) -> dict[str, Any]:
        if tx.block_height is None:
            return {"confirmed": False}
        block_hash, block_time = self.blocks[tx.block_height - self.base]
        return {
            "confirmed": True,
            "block_height": tx.block_height,
            "block_hash": block_hash,
            "block_time": block_time,
        }


class EsploraEmulator:
    def __init__(
        self, *, start_height: int = 800_000, clock: Callable[[], float] = time.time
    ) -> None:
        self.clock = clock
        self.chain = SimChain(base=start_height, blocks=[(os.urandom(32).hex(), int(clock()))])
        self.txs: dict[str, SimTx] = {}
        self.api_down = False
        self.faults = Faults("fetch")

    def _confirmed(self) -> list[SimTx]:
        return [t for t in self.txs.values() if t.block_height is not None]

    def broadcast(self, outputs: list[tuple[str, int]], fee: int = 500) -> SimTx:
        if not outputs or any(value <= 0 for _, value in outputs):
            raise ValueError("a transaction needs positive outputs")
        txid = os.urandom(32).hex()
        tx = SimTx(txid=txid, outputs=outputs, fee=fee, seen=int(self.clock()))
        self.txs[txid] = tx
        return tx

    def mine(self, blocks: int = 1) -> list[str]:
        hashes = []
        for n in range(blocks):
            block_hash = os.urandom(32).hex()
            self.chain.blocks.append((block_hash, int(self.clock())))
            height = self.chain.tip()
            if n == 0:
                for tx in self.txs.values():
                    if tx.block_height is None:
                        tx.block_height = height
            hashes.append(block_hash)
        return hashes

    def replace(self, txid: str, outputs: list[tuple[str, int]], fee_bump: int = 1000) -> SimTx:
        """RBF: a mempool transaction is replaced by one spending the same inputs."""
        old = self.txs.get(txid)
        if old is None or old.block_height is not None:
            raise ValueError("only an unconfirmed transaction can be replaced")
        del self.txs[txid]
        return self.broadcast(outputs, fee=old.fee + fee_bump)

    def reorg(self, depth: int, drop: set[str] | None = None) -> None:
        """Replace the top ``depth`` blocks with as many others. Transactions of the orphaned
        blocks go back to the mempool, except those in ``drop`` (double-spent away)."""
        if not 1 <= depth <= len(self.chain.blocks) - 1:
            raise ValueError("bad re-org depth")
        fork = self.chain.tip() - depth + 1  # first orphaned height
        for tx in list(self.txs.values()):
            if tx.block_height is not None and tx.block_height >= fork:
                if drop and tx.txid in drop:
                    del self.txs[tx.txid]
                else:
                    tx.block_height = None
        del self.chain.blocks[fork - self.chain.base :]
        for _ in range(depth):
            self.chain.blocks.append((os.urandom(32).hex(), int(self.clock())))

    def address_txs(self, address: str, after_txid: str | None = None) -> list[SimTx]:
        paying = [t for t in self.txs.values() if any(a == address for a, _ in t.outputs)]
        if after_txid is None:
            mempool = sorted((t for t in paying if t.block_height is None), key=lambda t: -t.seen)
            return mempool + self._chain_page(paying, None)
        return self._chain_page(paying, after_txid)

    def _chain_page(self, paying: list[SimTx], after_txid: str | None) -> list[SimTx]:
        confirmed = sorted(
            (t for t in paying if t.block_height is not None),
            key=lambda t: (-(t.block_height or 0), t.txid),
        )
        if after_txid is not None:
            ids = [t.txid for t in confirmed]
            if after_txid not in ids:
                return []
            confirmed = confirmed[ids.index(after_txid) + 1 :]
        return confirmed[:PAGE]


def _text(status: int, message: str) -> PlainTextResponse:
    return PlainTextResponse(message, status_code=status)


def build_app(emulator: EsploraEmulator) -> Starlette:
    def down() -> Response | None:
        return _text(503, "Service Unavailable") if emulator.api_down else None

    async def address_txs(request: Request) -> Response:
        if (problem := down()) is not None:
            return problem
        address = request.path_params["address"]
        if not 26 <= len(address) <= 90:
            return _text(400, "Invalid Bitcoin address")
        txs = emulator.address_txs(address, request.path_params.get("last_txid"))
        return JSONResponse([t.as_json(emulator.chain) for t in txs])

    async def address_utxo(request: Request) -> Response:
        if (problem := down()) is not None:
            return problem
        address = request.path_params["address"]
        utxos = []
        for tx in emulator.txs.values():
            for vout, (to, value) in enumerate(tx.outputs):
                if to == address:
                    utxos.append(
                        {
                            "txid": tx.txid,
                            "vout": vout,
                            "value": value,
                            "status": emulator.chain.status_of(tx),
                        }
                    )
        return JSONResponse(utxos)

    async def tx(request: Request) -> Response:
        if (problem := down()) is not None:
            return problem
        found = emulator.txs.get(request.path_params["txid"])
        if found is None:
            return _text(404, "Transaction not found")
        return JSONResponse(found.as_json(emulator.chain))

    async def tx_status(request: Request) -> Response:
        if (problem := down()) is not None:
            return problem
        found = emulator.txs.get(request.path_params["txid"])
        if found is None:
            return _text(404, "Transaction not found")
        return JSONResponse(emulator.chain.status_of(found))

    async def tip_height(request: Request) -> Response:
        if (problem := down()) is not None:
            return problem
        return PlainTextResponse(str(emulator.chain.tip()))

    async def tip_hash(request: Request) -> Response:
        if (problem := down()) is not None:
            return problem
        return PlainTextResponse(emulator.chain.blocks[-1][0])

    async def control(request: Request) -> Response:
        action = request.path_params["action"]
        body = json.loads(await request.body() or b"{}")
        try:
            if action == "pay":
                paid = emulator.broadcast(
                    [(str(body["address"]), int(body["sats"]))], fee=int(body.get("fee", 500))
                )
                return JSONResponse({"txid": paid.txid})
            if action == "mine":
                return JSONResponse({"blocks": emulator.mine(int(body.get("blocks", 1)))})
            if action == "replace":
                new = emulator.replace(
                    str(body["txid"]), [(str(body["address"]), int(body["sats"]))]
                )
                return JSONResponse({"txid": new.txid})
            if action == "reorg":
                emulator.reorg(int(body.get("depth", 1)), set(body.get("drop") or []))
                return JSONResponse({"tip": emulator.chain.tip()})
        except (KeyError, ValueError) as exc:
            return _text(400, str(exc))
        return _text(404, f"no control action {action}")

    async def settings(request: Request) -> Response:
        try:
            body = await settings_request(request, emulator.faults)
        except FaultSettingsError as exc:
            return _text(422, str(exc))
        if "api_down" in body:
            emulator.api_down = bool(body["api_down"])
        return JSONResponse({"api_down": emulator.api_down, "faults": emulator.faults.as_json()})

    def fetch(handler: Handler) -> Handler:
        return emulator.faults.wrap("fetch", handler, _text)

    app = Starlette(
        routes=[
            Route("/address/{address}/txs", fetch(address_txs)),
            Route("/address/{address}/txs/chain/{last_txid}", fetch(address_txs)),
            Route("/address/{address}/utxo", fetch(address_utxo)),
            Route("/tx/{txid}", fetch(tx)),
            Route("/tx/{txid}/status", fetch(tx_status)),
            Route("/blocks/tip/height", fetch(tip_height)),
            Route("/blocks/tip/hash", fetch(tip_hash)),
            Route("/_sim/settings", settings, methods=["GET", "POST"]),
            Route("/_sim/{action}", control, methods=["POST"]),
        ]
    )
    app.state.emulator = emulator
    return app
