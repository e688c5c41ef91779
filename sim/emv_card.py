"""A simulated bank IC card (EMV / PBOC debit) and the vpcd link that puts it in a reader.

:class:`EmvCard` answers APDUs as a PBOC debit card does (the card side of
:mod:`protocols.emv`): SELECT PPSE (or ``6A82`` for a contact-only card without one),
SELECT AID with a PDOL, GET PROCESSING OPTIONS (format 1: AIP and AFL), READ RECORD.
Its records hold more than the number (cardholder name, CDOL, certificates' stand-ins),
so a test can tell the box reads no further than the record with the number:
:attr:`EmvCard.apdus` keeps every command it received. ``t0 = True`` answers ``61xx``
first, as T=0 cards do, so the reader must fetch the data with GET RESPONSE.

:class:`VpcdCard` connects a card to vsmartcard's virtual reader driver (Debian package
``vsmartcard-vpcd``, loaded by ``pcscd``), so the real PC/SC stack (pcscd, libpcsclite,
pyscard) reads it. vpcd's socket protocol: each message is a 2-byte big-endian length and
the bytes; a 1-byte message is a control (00 power off, 01 power on, 02 reset, 04 send
the ATR), anything longer a command APDU; the card answers the ATR request and each APDU
with its own length-prefixed message.

:class:`SimPcscSlot` is the slot the box's simulated IC reader uses (no pcscd): a card
number written into its pipe (``echo 6225880137001237 > data/sim/cards/ic``) inserts an
:class:`EmvCard` with that number, ``remove`` takes it out.
"""

from __future__ import annotations

import contextlib
import os
import socket
import struct
import threading
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from protocols.emv import KNOWN_AIDS, PPSE, encode_tlv, parse_tlv

__all__ = ["ATR", "EmvCard", "SimPcscSlot", "VpcdCard"]

ATR = bytes.fromhex("3B80800101")  # T=1, no historical bytes, TCK
OK = b"\x90\x00"
PDOL = bytes.fromhex("9F6604 9F0206 9F3704 5F2A02")  # TTQ, amount, unpredictable no., currency


class EmvCard:
    """A bank IC card. ``number_in``: where the number is, "57" (track 2 equivalent, first
    record), "5A" (the PAN, in the second file) or "gpo" (with the processing options)."""

    def __init__(self, pan: str, *, expiry: str = "2812", aid: bytes = KNOWN_AIDS[0],
                 ppse: bool = True, number_in: str = "57", t0: bool = False) -> None:
        self.pan, self.expiry, self.aid = pan, expiry, aid
        self.ppse, self.number_in, self.t0 = ppse, number_in, t0
        self.apdus: list[bytes] = []
        self._selected: bytes | None = None
        self._pending = b""

    # -- what the card holds ----------------------------------------------------------------

    def _track2(self) -> bytes:
        digits = f"{self.pan}D{self.expiry}2201000000000"
        return bytes.fromhex(digits + "F" * (len(digits) % 2))

    def _pan(self) -> bytes:
        return bytes.fromhex(self.pan + "F" * (len(self.pan) % 2))

    def _records(self) -> dict[tuple[int, int], bytes]:
        first = [encode_tlv(0x5F20, b"CHEN/MING"), encode_tlv(0x9F1F, b"000000")]
        if self.number_in == "57":
            first.insert(0, encode_tlv(0x57, self._track2()))
        second = [encode_tlv(0x5F24, bytes.fromhex(self.expiry + "31")),
                  encode_tlv(0x8C, bytes.fromhex("9F02069F03069F1A0295055F2A029A039C019F3704"))]
        if self.number_in == "5A":
            second.insert(0, encode_tlv(0x5A, self._pan()))
        return {
            (1, 1): encode_tlv(0x70, b"".join(first)),
            (2, 1): encode_tlv(0x70, b"".join(second)),
            (2, 2): encode_tlv(0x70, encode_tlv(0x8F, b"\x08") + encode_tlv(0x90, bytes(64))),
            (2, 3): encode_tlv(0x70, encode_tlv(0x9F32, b"\x03") + encode_tlv(0x92, bytes(8))),
        }

    # -- answering APDUs ----------------------------------------------------------------

    def transmit(self, apdu: bytes) -> bytes:
        """One command APDU → the response APDU (data + SW1 SW2)."""
        self.apdus.append(bytes(apdu))
        if len(apdu) < 4:
            return b"\x67\x00"
        cla, ins, p1, p2 = apdu[:4]
        if (cla, ins) == (0x00, 0xC0):
            data, self._pending = self._pending, b""
            return data + OK if data else b"\x6F\x00"
        answer = self._answer(cla, ins, p1, p2, apdu[5:5 + apdu[4]] if len(apdu) > 5 else b"")
        if self.t0 and len(answer) > 2 and answer[-2:] == OK:
            self._pending = answer[:-2]
            return bytes([0x61, min(len(self._pending), 0xFF) & 0xFF])
        return answer

    def _answer(self, cla: int, ins: int, p1: int, p2: int, data: bytes) -> bytes:
        if (cla, ins, p1) == (0x00, 0xA4, 0x04):
            return self._select(data)
        if (cla, ins) == (0x80, 0xA8):
            return self._gpo(data)
        if (cla, ins) == (0x00, 0xB2):
            if self._selected is None:
                return b"\x69\x85"
            record = self._records().get((p2 >> 3, p1))
            return record + OK if record else b"\x6A\x83"
        return b"\x6D\x00"

    def _select(self, name: bytes) -> bytes:
        if name == PPSE and self.ppse:
            entry = encode_tlv(0x61, encode_tlv(0x4F, self.aid) + encode_tlv(0x50, b"PBOC DEBIT")
                               + encode_tlv(0x87, b"\x01"))
            fci = encode_tlv(0x84, PPSE) + encode_tlv(0xA5, encode_tlv(0xBF0C, entry))
            return encode_tlv(0x6F, fci) + OK
        if name != self.aid:
            return b"\x6A\x82"
        self._selected = name
        prop = (encode_tlv(0x50, b"PBOC DEBIT") + encode_tlv(0x87, b"\x01")
                + encode_tlv(0x9F38, PDOL))
        return encode_tlv(0x6F, encode_tlv(0x84, self.aid) + encode_tlv(0xA5, prop)) + OK

    def _gpo(self, data: bytes) -> bytes:
        if self._selected is None:
            return b"\x69\x85"
        try:
            template = parse_tlv(data)
        except ValueError:
            return b"\x67\x00"
        if len(template) != 1 or template[0].tag != 0x83 or len(template[0].value) != 16:
            return b"\x67\x00"  # the PDOL asks for 4 + 6 + 4 + 2 bytes
        if self.number_in == "gpo":
            return encode_tlv(0x77, encode_tlv(0x82, b"\x7C\x00") + encode_tlv(0x57, self._track2())
                              ) + OK
        afl = bytes.fromhex("08010100 10010300")  # SFI 1 record 1, SFI 2 records 1-3
        return encode_tlv(0x80, b"\x7C\x00" + afl) + OK


class VpcdCard:
    """Puts an :class:`EmvCard` into vpcd's virtual reader, served from a thread.

    Use as a context manager: the card is inserted while the block runs (the reader sees
    it present once connected), taken out when the block ends. ``port``: the reader's
    (the ``DEVICENAME /dev/null:<port>`` of its reader.conf).
    """

    def __init__(self, card: EmvCard, port: int, host: str = "127.0.0.1") -> None:
        self.card, self.port, self.host = card, port, host
        self.controls: list[int] = []
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> VpcdCard:
        self._sock = socket.create_connection((self.host, self.port), timeout=10)
        self._sock.settimeout(None)
        self._thread = threading.Thread(target=self._serve, name="vpcd-card", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)
            self._sock.close()
        if self._thread is not None:
            self._thread.join(10)

    def _recv(self, n: int) -> bytes:
        assert self._sock is not None
        buf = b""
        while len(buf) < n:
            part = self._sock.recv(n - len(buf))
            if not part:
                raise ConnectionError("vpcd closed the link")
            buf += part
        return buf

    def _send(self, message: bytes) -> None:
        assert self._sock is not None
        self._sock.sendall(struct.pack(">H", len(message)) + message)

    def _serve(self) -> None:
        with contextlib.suppress(OSError):  # the link closed: the card is out
            while True:
                (size,) = struct.unpack(">H", self._recv(2))
                message = self._recv(size)
                if size == 1:
                    self.controls.append(message[0])
                    if message[0] == 0x04:
                        self._send(ATR)
                    continue
                self._send(self.card.transmit(message))


class SimPcscSlot:
    """The simulated IC reader's slot: cards come and go through a named pipe or in-process.

    ``connect()`` gives the inserted card's transmit function, or None with no card, as the
    PC/SC slot (:class:`drivers.pcsc_card.PyscardSlot`) does.
    """

    def __init__(self, fifo: Path | None = None) -> None:
        self.fifo = fifo
        self.card: EmvCard | None = None
        self.polls = 0  # connects asked for: how often the reader looked into the slot
        self._fd: int | None = None
        self._buf = b""

    def insert(self, card: EmvCard | str) -> None:
        self.card = EmvCard(card) if isinstance(card, str) else card

    def remove(self) -> None:
        self.card = None

    def connect(self) -> Callable[[bytes], bytes] | None:
        self.polls += 1
        self._read_fifo()
        return self.card.transmit if self.card is not None else None

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _read_fifo(self) -> None:
        if self.fifo is None:
            return
        if self._fd is None:
            self.fifo.parent.mkdir(parents=True, exist_ok=True)
            if not self.fifo.exists():
                os.mkfifo(self.fifo)
            self._fd = os.open(self.fifo, os.O_RDWR | os.O_NONBLOCK)  # never EOF: we write too
        with contextlib.suppress(BlockingIOError):
            self._buf += os.read(self._fd, 4096)
        *lines, self._buf = self._buf.split(b"\n")
        self._buf = self._buf[-64:]  # no card number is longer: line noise is dropped
        for raw in lines[-8:]:  # a burst of lines: the last cards are the ones in the slot
            line = raw.decode("utf-8", "replace").strip()
            if line == "remove":
                self.remove()
            elif line.isdigit():
                self.insert(line)
