"""Bank IC cards (EMV / PBOC 3.0): the APDUs that read a card's number, and BER-TLV.

A kiosk needs the card number only (SPEC A5), so the box reads no more than that, the way
an EMV terminal starts a transaction (EMV Book 1 §12, Book 3 §10; JR/T 0025 for PBOC)::

    SELECT "2PAY.SYS.DDF01" (PPSE)   00 A4 04 00 0E 325041592E5359532E4444463031 00
        → FCI 6F{84 A5{BF0C{61{4F AID, 87 priority}…}}}
    SELECT AID                        00 A4 04 00 Lc AID 00
        → FCI 6F{84 A5{50 label, 9F38 PDOL?}}
    GET PROCESSING OPTIONS            80 A8 00 00 Lc 83 Lpdol <PDOL data> 00
        → 80{AIP AFL}  or  77{82 AIP, 94 AFL [, 57 / 5A]}
    READ RECORD  (per AFL entry)      00 B2 rec (SFI<<3 | 4) 00
        → 70{… 57 track 2 equivalent / 5A PAN …}   stop at the first that has one

With no PPSE (a contact-only card), the well-known AIDs (:data:`KNOWN_AIDS`, PBOC debit
first) are tried in turn. T=0 cards answer ``61xx`` (fetch with GET RESPONSE
``00 C0 00 00 xx``) and ``6Cxx`` (send again with Le = xx); :func:`read_card_number`
does both. The number comes back as the text the card path already parses
(:func:`protocols.cards.parse_ic`): the PAN digits, or track 2 equivalent ``PAN D YYMM…``.
Nothing else on the card is read past the first record holding the number, nothing but
the number is returned, and the caller logs it only masked.

Pure code: :func:`read_card_number` is given the transmit function (PC/SC, or the
simulated card) and does no I/O of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

__all__ = [
    "KNOWN_AIDS",
    "PPSE",
    "EmvError",
    "Tlv",
    "TlvError",
    "afl_records",
    "encode_tlv",
    "find",
    "get_processing_options",
    "get_response",
    "parse_tlv",
    "pdol_data",
    "ppse_aids",
    "read_card_number",
    "read_record",
    "select",
]

PPSE = b"2PAY.SYS.DDF01"
KNOWN_AIDS = (  # tried in this order when the card has no PPSE
    bytes.fromhex("A000000333010101"),  # PBOC debit (借记)
    bytes.fromhex("A000000333010102"),  # PBOC credit (贷记)
    bytes.fromhex("A000000333010103"),  # PBOC quasi-credit (准贷记)
    bytes.fromhex("A0000000031010"),  # Visa
    bytes.fromhex("A0000000041010"),  # Mastercard
)
MAX_RECORDS = 16  # records read at most, whatever the AFL says: a card is no data dump
# Terminal data a PDOL may ask for; everything else is sent as zeros (amount 0, …).
_TERMINAL = {
    0x9F66: bytes.fromhex("26000000"),  # TTQ: contact EMV/PBOC, online capable
    0x9F1A: bytes.fromhex("0156"),  # terminal country: China
    0x5F2A: bytes.fromhex("0156"),  # transaction currency: CNY
    0x9C: b"\x30",  # transaction type: balance inquiry (no money moves)
}


class TlvError(ValueError):
    """Bytes that are not BER-TLV as EMV uses it."""


class EmvError(ValueError):
    """The card did not give a card number (``code``: why, stable)."""

    def __init__(self, code: str, detail: str) -> None:
        self.code, self.detail = code, detail
        super().__init__(f"{code}: {detail}")


@dataclass(frozen=True, slots=True)
class Tlv:
    """One BER-TLV object; ``children`` when the tag is constructed."""

    tag: int
    value: bytes
    children: tuple[Tlv, ...] = ()


# --- BER-TLV (EMV Book 3 Annex B) ---------------------------------------------------------


def parse_tlv(data: bytes, *, depth: int = 0) -> tuple[Tlv, ...]:
    """Parse BER-TLV objects; constructed ones are parsed into ``children``.

    Padding bytes 00 and FF between objects are skipped (EMV Book 3 Annex B). Raises
    :class:`TlvError` for a truncated object, a tag longer than 3 bytes, a length longer
    than 3 bytes, or nesting deeper than 8.
    """
    if depth > 8:
        raise TlvError("nested deeper than 8")
    out, i = [], 0
    while i < len(data):
        if data[i] in (0x00, 0xFF):
            i += 1
            continue
        tag, i = _tag(data, i)
        length, i = _length(data, i)
        if i + length > len(data):
            raise TlvError(f"tag {tag:X} says {length} bytes, {len(data) - i} left")
        value = data[i:i + length]
        i += length
        constructed = bool((tag >> (8 * (_tag_size(tag) - 1))) & 0x20)
        out.append(Tlv(tag, value, parse_tlv(value, depth=depth + 1) if constructed else ()))
    return tuple(out)


def _tag_size(tag: int) -> int:
    return max(1, (tag.bit_length() + 7) // 8)


def _tag(data: bytes, i: int) -> tuple[int, int]:
    tag = data[i]
    i += 1
    if tag & 0x1F == 0x1F:  # more tag bytes follow while b8 is set
        for n in range(2):
            if i >= len(data):
                raise TlvError("truncated tag")
            tag = tag << 8 | data[i]
            i += 1
            if not data[i - 1] & 0x80:
                break
            if n == 1:
                raise TlvError("tag longer than 3 bytes")
    return tag, i


def _length(data: bytes, i: int) -> tuple[int, int]:
    if i >= len(data):
        raise TlvError("truncated length")
    first = data[i]
    if first < 0x80:
        return first, i + 1
    n = first & 0x7F
    if not 1 <= n <= 3 or i + 1 + n > len(data):
        raise TlvError(f"bad length form {first:02X}")
    return int.from_bytes(data[i + 1:i + 1 + n], "big"), i + 1 + n


def encode_tlv(tag: int, value: bytes) -> bytes:
    """One TLV object (the simulated card builds its answers with it)."""
    n = len(value)
    length = bytes([n]) if n < 0x80 else (bytes([0x81, n]) if n < 0x100
                                          else b"\x82" + n.to_bytes(2, "big"))
    return tag.to_bytes(_tag_size(tag), "big") + length + value


def walk(tlvs: tuple[Tlv, ...]) -> Iterator[Tlv]:
    """Every object, depth first."""
    for t in tlvs:
        yield t
        yield from walk(t.children)


def find(tlvs: tuple[Tlv, ...], tag: int) -> bytes | None:
    """The value of the first object with ``tag``, at any depth."""
    return next((t.value for t in walk(tlvs) if t.tag == tag), None)


# --- APDUs --------------------------------------------------------------------------------


def select(name: bytes) -> bytes:
    """SELECT by DF name (an AID, or the PPSE), first occurrence."""
    return bytes([0x00, 0xA4, 0x04, 0x00, len(name)]) + name + b"\x00"


def get_processing_options(pdol: bytes) -> bytes:
    """GET PROCESSING OPTIONS with the PDOL data in template 83."""
    data = encode_tlv(0x83, pdol)
    return bytes([0x80, 0xA8, 0x00, 0x00, len(data)]) + data + b"\x00"


def read_record(sfi: int, record: int) -> bytes:
    """READ RECORD ``record`` of short file ``sfi``."""
    if not 1 <= sfi <= 30 or not 1 <= record <= 255:
        raise EmvError("bad_afl", f"no record {record} in SFI {sfi}")
    return bytes([0x00, 0xB2, record, sfi << 3 | 0x04, 0x00])


def get_response(le: int) -> bytes:
    return bytes([0x00, 0xC0, 0x00, 0x00, le])


def ppse_aids(fci: bytes) -> list[bytes]:
    """The applications a PPSE/PSE directory lists, highest priority (87) first."""
    entries = [t for t in walk(parse_tlv(fci)) if t.tag == 0x61]
    listed = []
    for e in entries:
        aid = find(e.children, 0x4F)
        prio = find(e.children, 0x87)
        if aid:
            listed.append(((prio[0] & 0x0F if prio else 0x0F) or 0x10, aid))
    return [aid for _, aid in sorted(listed, key=lambda p: p[0])]


def pdol_data(pdol: bytes | None) -> bytes:
    """The terminal's answer to a PDOL (tag-length list): known values, else zeros."""
    if not pdol:
        return b""
    out, i = b"", 0
    while i < len(pdol):
        tag, i = _tag(pdol, i)
        length, i = _length(pdol, i)
        value = _TERMINAL.get(tag, b"")[:length]
        out += value + bytes(length - len(value))
    return out


def afl_records(afl: bytes) -> list[tuple[int, int]]:
    """(SFI, record) pairs of an Application File Locator, in order (4 bytes an entry)."""
    if len(afl) % 4 or not afl:
        raise EmvError("bad_afl", f"an AFL is 4-byte entries, got {len(afl)} bytes")
    out = []
    for k in range(0, len(afl), 4):
        sfi, first, last = afl[k] >> 3, afl[k + 1], afl[k + 2]
        if not 1 <= sfi <= 30 or first == 0 or last < first:
            raise EmvError("bad_afl", f"AFL entry {afl[k:k + 4].hex()}")
        out += [(sfi, r) for r in range(first, last + 1)]
    return out


# --- reading the number -------------------------------------------------------------------

Transmit = Callable[[bytes], bytes]  # command APDU → response APDU (data + SW1 SW2)


def _exchange(transmit: Transmit, apdu: bytes) -> tuple[bytes, int]:
    """Send ``apdu``; the response data and status word, with T=0's 61xx/6Cxx handled."""
    resp = transmit(apdu)
    for _ in range(8):
        if len(resp) < 2:
            raise EmvError("bad_response", "a response without a status word")
        sw1, sw2 = resp[-2], resp[-1]
        if sw1 == 0x61:
            resp = resp[:-2] + transmit(get_response(sw2))  # a part of the data waits
        elif sw1 == 0x6C:
            resp = transmit(apdu[:-1] + bytes([sw2]))  # the right Le, sent again
        else:
            return resp[:-2], sw1 << 8 | sw2
    raise EmvError("bad_response", "the card kept asking for more exchanges")


def _number_in(tlvs: tuple[Tlv, ...]) -> str | None:
    track2 = find(tlvs, 0x57)
    if track2:
        return track2.hex().upper().rstrip("F")
    pan = find(tlvs, 0x5A)
    return pan.hex().upper().rstrip("F") if pan else None


def _select_application(transmit: Transmit) -> bytes:
    data, sw = _exchange(transmit, select(PPSE))
    candidates = ppse_aids(data) if sw == 0x9000 else []
    for aid in [*candidates, *(a for a in KNOWN_AIDS if a not in candidates)]:
        fci, sw = _exchange(transmit, select(aid))
        if sw == 0x9000:
            return fci
    raise EmvError("no_application", "the card has no debit or credit application")


def read_card_number(transmit: Transmit) -> str:
    """Select the payment application and read the card number, no further.

    Returns the hex text of tag 57 (track 2 equivalent: ``PAN D YYMM…``) or of tag 5A
    (the PAN), F padding removed, for :func:`protocols.cards.parse_ic`.

    Raises:
        EmvError: no application, GPO refused, bad AFL, or no number in the records.
        TlvError: a response that is not BER-TLV.
    """
    fci = parse_tlv(_select_application(transmit))
    data, sw = _exchange(transmit, get_processing_options(pdol_data(find(fci, 0x9F38))))
    if sw != 0x9000:
        raise EmvError("gpo_refused", f"GET PROCESSING OPTIONS answered {sw:04X}")
    gpo = parse_tlv(data)
    if (number := _number_in(gpo)) is not None:
        return number  # qPBOC-style: the number came with the options
    format1 = bool(gpo) and gpo[0].tag == 0x80  # format 1: AIP (2 bytes) then AFL
    afl = gpo[0].value[2:] if format1 else find(gpo, 0x94) or b""
    for sfi, record in afl_records(afl)[:MAX_RECORDS]:
        data, sw = _exchange(transmit, read_record(sfi, record))
        if sw == 0x9000 and (number := _number_in(parse_tlv(data))) is not None:
            return number
    raise EmvError("no_number", "no record holds tag 57 or 5A")
