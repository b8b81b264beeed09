"""A watch-only wallet: receive addresses from an account xpub or an output descriptor.

Only public keys are ever held. BIP84 (``wpkh``) and BIP86 (``tr``) receive chains; the
published vectors of both BIPs are tests.

Kernel level, like ``satshare.money``: pure key derivation that imports nothing else from
satshare, so ``config`` can check a descriptor or xpub when the settings load without
importing a domain; the ``onchain`` domain and its provider use it too.
"""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    # embit is imported where a wallet is made: only a configured on-chain rail needs it,
    # and every process loads this module with its configuration (#15).
    from embit.descriptor import Descriptor

#: Our network names → embit's.
NETWORK_NAMES = {"mainnet": "main", "testnet": "test", "signet": "signet", "regtest": "regtest"}
SCRIPT_TYPES = ("wpkh", "tr")


class WalletError(ValueError):
    """A descriptor or key that cannot be used; the message says why."""


class WatchOnlyWallet:
    def __init__(self, descriptor: str, network: str) -> None:
        if network not in NETWORK_NAMES:
            raise WalletError(f"unknown network {network!r}; use {', '.join(NETWORK_NAMES)}")
        from embit.descriptor import Descriptor
        from embit.networks import NETWORKS

        self.network = network
        self._network = NETWORKS[NETWORK_NAMES[network]]
        try:
            self._descriptor: Descriptor = Descriptor.from_string(descriptor)
        except Exception as exc:  # embit raises a mix of error types on bad input
            raise WalletError(f"not a valid output descriptor: {exc}") from exc
        if not self._descriptor.is_wildcard:
            raise WalletError("the descriptor must end in /*, one address per invoice")
        if any(key.is_private for key in self._descriptor.keys):
            raise WalletError("a private key was given: SatShare only ever needs the public key")
        self.descriptor = descriptor
        # Identifies the receive chain, so a changed descriptor never reuses stored indexes.
        self.id = hashlib.sha256(descriptor.encode()).hexdigest()[:32]

    @classmethod
    def from_xpub(cls, xpub: str, script_type: str, network: str) -> WatchOnlyWallet:
        """An account-level xpub/zpub/vpub/tpub; receive addresses are <key>/0/i."""
        from embit import bip32
        from embit.networks import NETWORKS

        if script_type not in SCRIPT_TYPES:
            raise WalletError(f"script type must be one of {', '.join(SCRIPT_TYPES)}")
        if network not in NETWORK_NAMES:
            raise WalletError(f"unknown network {network!r}; use {', '.join(NETWORK_NAMES)}")
        try:
            key = bip32.HDKey.from_string(xpub.strip())
        except Exception as exc:
            raise WalletError(f"not an extended public key: {exc}") from exc
        if key.is_private:
            raise WalletError("a private key was given: SatShare only ever needs the public key")
        expected = NETWORKS[NETWORK_NAMES[network]]
        versions = {expected[k] for k in ("xpub", "ypub", "zpub", "Ypub", "Zpub") if k in expected}
        if key.version not in versions:
            raise WalletError(f"this extended key is not for {network}")
        plain = key.to_string(version=expected["xpub"])
        return cls(f"{script_type}({plain}/0/*)", network)

    def address(self, index: int) -> str:
        if not 0 <= index < 2**31:
            raise WalletError("address index out of range")
        return str(self._descriptor.derive(index).address(self._network))


def looks_like_address(text: str) -> bool:
    return bool(re.fullmatch(r"[a-zA-Z0-9]{26,90}", text))
