"""A Lightning Address / LNURL-pay service emulator (LUD-06, LUD-16) over real HTTP.

``GET /.well-known/lnurlp/<name>`` answers the payRequest (callback, min/max sendable in
msat, metadata); ``GET /lnurlp/<name>/callback?amount=<msat>`` returns ``{"pr": bolt11,
"routes": []}`` whose description hash commits to the metadata, or ``{"status": "ERROR",
"reason": ...}``. Invoices are issued by each account's own regtest node, reachable through
a shared LightningNetwork, so an emulated LNbits wallet can really pay them.

Control API under ``/_sim``: add accounts, read what an account received, and make the
service misbehave (wrong amount, wrong description hash, refuse).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass, field

from bolt11 import Bolt11, MilliSatoshi, encode
from bolt11.models.tags import TagChar, Tags
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from satshare.sim.lightning import IssuedInvoice, LightningNetwork, RegtestNode

#: Lightning Address user names (LUD-16): a-z0-9-_.
_NAME = re.compile(r"^[a-z0-9._-]{1,64}$")


@dataclass
class LnurlAccount:
    name: str
    node: RegtestNode
    min_sendable_msat: int = 1_000
    max_sendable_msat: int = 100_000_000_000
    issued: list[str] = field(default_factory=list)  # payment hashes

    @property
    def metadata(self) -> str:
        return json.dumps(
            [["text/plain", f"Pay {self.name}"], ["text/identifier", f"{self.name}@sim"]]
        )

    def received_msat(self) -> list[int]:
        return [self.node.issued[h].amount_msat for h in self.issued if self.node.issued[h].paid]


class LnurlEmulator:
    def __init__(self, network: LightningNetwork, base_url: str = "") -> None:
        self.network = network
        self.base_url = base_url
        self.accounts: dict[str, LnurlAccount] = {}
        #: Sandbox: any well-formed name is an account, created on first use.
        self.open_accounts = False
        self.wrong_amount = False
        self.wrong_description_hash = False
        self.refuse_reason: str | None = None

    def add_account(
        self,
        name: str,
        min_sendable_msat: int = 1_000,
        max_sendable_msat: int = 100_000_000_000,
    ) -> LnurlAccount:
        node = RegtestNode()
        self.network.join(node)
        account = LnurlAccount(name, node, min_sendable_msat, max_sendable_msat)
        self.accounts[name] = account
        return account

    def address(self, name: str) -> str:
        host = self.base_url.split("://", 1)[1]
        return f"{name}@{host}"

    def invoice(self, account: LnurlAccount, amount_msat: int) -> str:
        billed = amount_msat + 1000 if self.wrong_amount else amount_msat
        metadata = account.metadata + (" " if self.wrong_description_hash else "")
        preimage = hashlib.sha256(f"{account.name}:{time.time_ns()}".encode()).digest()
        payment_hash = hashlib.sha256(preimage).hexdigest()
        tags = Tags()
        tags.add(TagChar.payment_hash, payment_hash)
        tags.add(TagChar.payment_secret, hashlib.sha256(preimage + b"s").hexdigest())
        tags.add(TagChar.description_hash, hashlib.sha256(metadata.encode()).hexdigest())
        tags.add(TagChar.expire_time, 600)
        tags.add(TagChar.min_final_cltv_expiry, 18)
        now = int(time.time())
        bolt = Bolt11(currency="bcrt", date=now, tags=tags, amount_msat=MilliSatoshi(billed))
        account.node.issued[payment_hash] = IssuedInvoice(preimage.hex(), billed, now + 600)
        account.issued.append(payment_hash)
        return str(encode(bolt, account.node.private_key_hex))


def _lnurl_error(reason: str, status: int = 200) -> JSONResponse:
    # LUD-06 errors are a JSON body with status ERROR (services usually answer 200).
    return JSONResponse({"status": "ERROR", "reason": reason}, status_code=status)


def lightning_address_routes(emulator: LnurlEmulator) -> list[Route]:
    """The two routes a Lightning Address needs (LUD-16): its pay request and callback."""

    def account_of(request: Request) -> LnurlAccount | None:
        name = request.path_params["name"]
        account = emulator.accounts.get(name)
        if account is None and emulator.open_accounts and _NAME.match(name):
            account = emulator.add_account(name)
        return account

    async def pay_request(request: Request) -> Response:
        account = account_of(request)
        if account is None:
            return _lnurl_error("Unknown user.", 404)
        return JSONResponse(
            {
                "tag": "payRequest",
                "callback": f"{emulator.base_url}/lnurlp/{account.name}/callback",
                "minSendable": account.min_sendable_msat,
                "maxSendable": account.max_sendable_msat,
                "metadata": account.metadata,
                "commentAllowed": 0,
            }
        )

    async def callback(request: Request) -> Response:
        account = account_of(request)
        if account is None:
            return _lnurl_error("Unknown user.", 404)
        if emulator.refuse_reason:
            return _lnurl_error(emulator.refuse_reason)
        raw = request.query_params.get("amount", "")
        if not raw.isdigit():
            return _lnurl_error("amount (msat) is required")
        amount = int(raw)
        if not account.min_sendable_msat <= amount <= account.max_sendable_msat:
            return _lnurl_error("Amount out of range.")
        return JSONResponse({"pr": emulator.invoice(account, amount), "routes": []})

    return [
        Route("/.well-known/lnurlp/{name}", pay_request, methods=["GET"]),
        Route("/lnurlp/{name}/callback", callback, methods=["GET"]),
    ]


def build_app(emulator: LnurlEmulator) -> Starlette:

    async def control_accounts(request: Request) -> Response:
        if request.method == "POST":
            body = json.loads(await request.body() or b"{}")
            account = emulator.add_account(
                str(body["name"]),
                int(body.get("min_sendable_msat", 1_000)),
                int(body.get("max_sendable_msat", 100_000_000_000)),
            )
            return JSONResponse({"address": emulator.address(account.name)}, status_code=201)
        return JSONResponse({name: a.received_msat() for name, a in emulator.accounts.items()})

    async def control_settings(request: Request) -> Response:
        body = json.loads(await request.body() or b"{}")
        for name in ("wrong_amount", "wrong_description_hash"):
            if name in body:
                setattr(emulator, name, bool(body[name]))
        if "refuse_reason" in body:
            emulator.refuse_reason = body["refuse_reason"] or None
        return JSONResponse({"ok": True})

    app = Starlette(
        routes=[
            *lightning_address_routes(emulator),
            Route("/_sim/accounts", control_accounts, methods=["GET", "POST"]),
            Route("/_sim/settings", control_settings, methods=["POST"]),
        ]
    )
    app.state.emulator = emulator
    return app
