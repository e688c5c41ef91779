"""Words for a device's screen: GB18030 bytes that fit, cut at a character boundary."""

from __future__ import annotations

__all__ = ["screen_bytes"]


def screen_bytes(text: str, limit: int) -> bytes:
    """``text`` in GB18030, as many whole characters as fit in ``limit`` bytes."""
    out = bytearray()
    for ch in text:
        raw = ch.encode("gb18030")
        if len(out) + len(raw) > limit:
            break
        out += raw
    return bytes(out)
