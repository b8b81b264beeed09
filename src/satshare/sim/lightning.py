"""Regtest Lightning and on-chain material for emulators: real BOLT11 invoices and real
addresses, on regtest so nothing shown in a sandbox can ever be paid with real coins."""

from __future__ import annotations

import hashlib
import os
import time

from bolt11 import Bolt11, MilliSatoshi, encode
from bolt11.models.tags import TagChar, Tags
from embit import bip32, script
from embit.networks import NETWORKS

_SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def random_private_key() -> str:
    while True:
        candidate = os.urandom(32)
        if 0 < int.from_bytes(candidate, "big") < _SECP256K1_ORDER:
            return candidate.hex()


class RegtestNode:
    """Issues BOLT11 invoices signed with its own key."""

    def __init__(self, private_key_hex: str | None = None) -> None:
        self.private_key_hex = private_key_hex or random_private_key()

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
        return str(encode(bolt, self.private_key_hex)), payment_hash, preimage.hex()


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
