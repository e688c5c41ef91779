"""Teller password hashes: scrypt (memory-hard), stored as ``scrypt$n$r$p$salt$hash``."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

__all__ = ["hash_password", "verify_password"]


def hash_password(password: str, *, n: int = 2**14, r: int = 8, p: int = 1) -> str:
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=32)
    return "$".join(["scrypt", str(n), str(r), str(p), _b64(salt), _b64(digest)])


def verify_password(stored: str, password: str) -> bool:
    """True when ``password`` matches; False for a mismatch or a malformed hash."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        want = base64.b64decode(digest)
        got = hashlib.scrypt(
            password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
            dklen=len(want), maxmem=2**26,
        )
    except ValueError:
        return False
    return hmac.compare_digest(want, got)


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()
