"""Feeding a codec a byte stream the way a serial port might deliver it (codec tests)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

Decoder = Callable[..., tuple[int, Any]]


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    """``data`` cut at the positions ``cuts`` (taken modulo its length, duplicates merged)."""
    points = sorted({c % (len(data) + 1) for c in cuts})
    edges = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges)]


def stream(chunks: list[bytes], decode: Decoder, counters: Any = None,
           quiet: bool = False) -> list[Any]:
    """Every message ``decode`` finds in ``chunks``, fed one at a time.

    ``quiet=True`` then tells the decoder the line went quiet, as a driver does after a
    silence, so an unfinished frame start is given up on.
    """
    buf = bytearray()
    out: list[Any] = []
    for chunk in [*chunks, b""]:
        buf += chunk
        idle = quiet and not chunk
        while True:
            consumed, msg = decode(buf, counters, idle=idle)
            del buf[:consumed]
            if msg is None:
                break
            out.append(msg)
    return out
