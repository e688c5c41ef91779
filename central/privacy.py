"""Customers' personal numbers at the centre: looked up by digest, kept sealed, shown masked.

One master secret (a file, created with mode 0600 if missing) gives, by HMAC derivation:

* the **lookup key**: ``digest(lookup, phone)`` and ``digest(lookup, id number)`` are what
  the store indexes and searches on exactly (HMAC-SHA256: without the secret a stolen table
  cannot be walked through the ~10^10 possible phone numbers);
* the **sealing key**: AES-256-GCM for the one place a readable number is still needed
  (each day's per-branch digests for the box; sending an SMS), bound to the column it
  belongs to (associated data), so a sealed ID cannot be passed off as a phone;
* the **branch master**: :func:`protocols.appointment.branch_day_key` per branch and day.

Pages, exports and logs get :func:`protocols.appointment.mask_number` /
:func:`~protocols.appointment.mask_phone` only. Lose the secret file and the sealed
numbers are lost with it: back it up with the database.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from protocols import appointment as ap

from .errors import CentreConfigError

if TYPE_CHECKING:
    from .store import Store

__all__ = ["Vault", "check_shared"]


class Vault:
    """Digests, sealing and per-branch keys from one master secret."""

    def __init__(self, master: bytes) -> None:
        if len(master) < 32:
            raise ValueError("the customers' secret must be at least 32 bytes")
        self._lookup = _derive(master, "lookup")
        self._aead = AESGCM(_derive(master, "seal"))
        self._branches = _derive(master, "branches")
        # names the secret without revealing it: every centre instance must hold the same
        self.fingerprint = _derive(master, "fingerprint").hex()[:32]

    @classmethod
    def from_file(cls, path: str | Path) -> Vault:
        """The vault of the secret in ``path``; a new random secret is written if missing."""
        p = Path(path)
        try:
            if not p.exists():
                p.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w") as f:
                    f.write(secrets.token_hex(32) + "\n")
                    f.flush()
                    os.fsync(f.fileno())
            text = p.read_text().strip()
            return cls(bytes.fromhex(text))
        except (OSError, ValueError) as exc:
            raise CentreConfigError("customers.secret_file", f"{p}: {exc}") from None

    def digest(self, value: str) -> str:
        """The lookup digest (exact search) of a phone, ID or card number."""
        return ap.digest(self._lookup, value)

    def seal(self, value: str, column: str) -> str:
        """``value`` encrypted for ``column`` (base64: nonce + ciphertext + tag)."""
        nonce = secrets.token_bytes(12)
        box = self._aead.encrypt(nonce, value.encode(), column.encode())
        return base64.b64encode(nonce + box).decode()

    def open(self, sealed: str, column: str) -> str:
        """The readable value of :meth:`seal`; ValueError if it was not sealed for ``column``
        with this secret."""
        raw = base64.b64decode(sealed)
        try:
            return self._aead.decrypt(raw[:12], raw[12:], column.encode()).decode()
        except InvalidTag:
            raise ValueError(f"not a {column} sealed with this secret") from None

    def branch_day_key(self, branch: str, day: str) -> bytes:
        return ap.branch_day_key(self._branches, branch, day)


def check_shared(store: Store, vault: Vault, path: str | Path) -> None:
    """Note ``vault``'s fingerprint in the store, or check it against the one noted: a
    second centre instance with another secret file would digest and seal the customers'
    numbers so that the first cannot find or open them (docs/deploy.md, "High
    availability"). CentreConfigError when they differ."""
    store.execute("INSERT INTO centre_secrets (name, fingerprint) VALUES ('customers', ?) "
                  "ON CONFLICT (name) DO NOTHING", (vault.fingerprint,))
    noted, = store.execute("SELECT fingerprint FROM centre_secrets WHERE name = 'customers'"
                           ).fetchone()
    if noted != vault.fingerprint:
        raise CentreConfigError(
            "customers.secret_file", f"{path} is not the secret this store's customers were "
            "sealed with (another centre instance's): copy that instance's file here")


def _derive(master: bytes, purpose: str) -> bytes:
    return hmac.new(master, f"paidui-customers/{purpose}".encode(), hashlib.sha256).digest()
