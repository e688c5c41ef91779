"""Files: digests of release bundles and uploads, read in blocks."""

from __future__ import annotations

import hashlib
from pathlib import Path

__all__ = ["file_sha256"]


def file_sha256(path: Path) -> tuple[str, int]:
    """(SHA-256 hex digest, size) of a file, read a megabyte at a time."""
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size
