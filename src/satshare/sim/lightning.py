"""Regtest Lightning and on-chain material for emulators: real BOLT11 invoices and real
addresses, on regtest so nothing shown in a sandbox can ever be paid with real coins."""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass

from bolt11 import Bolt11, MilliSatoshi, decode, encode
from bolt11.models.tags import TagChar, Tags
from embit import bip32, ec, script
from embit.networks import NETWORKS

_SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def random_private_key() -> str:
    while True:
        candidate = os.urandom(32)
        if 0 < int.from_bytes(candidate, "big") < _SECP256K1_ORDER:
            return candidate.hex()


@dataclass
class IssuedInvoice:
    preimage: str
    amount_msat: int
    expires_at: int
    paid: bool = False


class RegtestNode:
    """Issues BOLT11 invoices signed with its own key, and can be paid through a
    LightningNetwork (which finds it by the payee key every invoice carries)."""

    def __init__(self, private_key_hex: str | None = None) -> None:
        self.private_key_hex = private_key_hex or random_private_key()
        self.pubkey = (
            ec.PrivateKey(bytes.fromhex(self.private_key_hex)).get_public_key().sec().hex()
        )
        self.issued: dict[str, IssuedInvoice] = {}

    def receive(self, payment_hash: str, amount_msat: int, now: int) -> str:
        """Accept a payment of one of our invoices; returns the preimage."""
        invoice = self.issued.get(payment_hash)
        if invoice is None:
            raise PaymentFailed("unknown invoice at the destination")
        if invoice.paid:
            raise PaymentFailed("the invoice is already paid")
        if now > invoice.expires_at:
            raise PaymentFailed("the invoice has expired")
        if amount_msat != invoice.amount_msat:
            raise PaymentFailed("wrong amount for the invoice")
        invoice.paid = True
        return invoice.preimage

    def invoice(
        self, amount_msat: int, description: str, expiry_seconds: int
    ) -> tuple[str, str, str]:
        """Return (bolt11, payment_hash, preimage)."""
        preimage = os.urandom(32)
        payment_hash = hashlib.sha256(preimage).hexdigest()
        tags = Tags()
        tags.add(TagChar.payment_hash, payment_hash)
        tags.add(TagChar.payment_secret, os.urandom(32).hex())
        tags.add(TagChar.description, description[:600])
        tags.add(TagChar.expire_time, max(1, expiry_seconds))
        tags.add(TagChar.min_final_cltv_expiry, 18)
        bolt = Bolt11(
            currency="bcrt",
            date=int(time.time()),
            tags=tags,
            amount_msat=MilliSatoshi(amount_msat),
        )
        self.issued[payment_hash] = IssuedInvoice(
            preimage.hex(), amount_msat, int(time.time()) + max(1, expiry_seconds)
        )
        return str(encode(bolt, self.private_key_hex)), payment_hash, preimage.hex()


class PaymentFailed(Exception):
    """A Lightning payment that could not be made (no route, already paid, expired...)."""


class LightningNetwork:
    """Routes payments between emulated nodes by the payee key in the invoice."""

    def __init__(self) -> None:
        self.nodes: dict[str, RegtestNode] = {}

    def join(self, node: RegtestNode) -> None:
        self.nodes[node.pubkey] = node

    def pay(self, bolt11: str) -> str:
        decoded = decode(bolt11)
        node = self.nodes.get(decoded.payee or "")
        if node is None:
            raise PaymentFailed("no route to the destination")
        return node.receive(decoded.payment_hash, int(decoded.amount_msat or 0), int(time.time()))


class RegtestWallet:
    """A BIP84 receive chain on regtest; every call hands out the next unused address."""

    def __init__(self, seed: bytes | None = None) -> None:
        root = bip32.HDKey.from_seed(seed or os.urandom(32), version=NETWORKS["regtest"]["xprv"])
        self._account = root.derive("m/84h/1h/0h/0")
        self._next = 0

    def next_address(self) -> str:
        child = self._account.derive([self._next])
        self._next += 1
        return str(script.p2wpkh(child).address(NETWORKS["regtest"]))
