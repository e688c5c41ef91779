"""The ESC/POS codec: builders agree with python-escpos, the decoder survives anything."""

from __future__ import annotations

import pytest
from escpos.printer import Dummy
from hypothesis import given
from hypothesis import strategies as st

from protocols import escpos
from protocols.escpos import Cmd, PrinterStatus, decode, decode_all

SAMPLE = (
    escpos.INIT + escpos.CHINESE_ON + escpos.align("center") + escpos.bold(True)
    + "郑州金水路支行".encode("gb18030") + b"\n" + escpos.bold(False) + escpos.size(5, 5)
    + b"A023\n" + escpos.size(1, 1) + escpos.qr_native("http://box/t/20261125-A023")
    + escpos.raster([b"\xff\x00", b"\x0f\xf0"], 2) + escpos.feed(3) + escpos.cut(True)
)
SAMPLE_OPS = ["init", "chinese", "align", "bold", "text", "lf", "bold", "size", "text", "lf",
              "size", "qr_model", "qr_module", "qr_level", "qr_store", "qr_print", "raster",
              "feed", "cut"]


def _merge_text(cmds: list[Cmd]) -> list[Cmd]:
    """Text runs split by the feeding are one run: join neighbours for comparison."""
    out: list[Cmd] = []
    for c in cmds:
        if c.op == "text" and out and out[-1].op == "text":
            out[-1] = Cmd("text", data=out[-1].data + c.data)
        else:
            out.append(c)
    return out


def _feed(chunks: list[bytes]) -> list[Cmd]:
    buf, out = b"", []
    for chunk in chunks:
        cmds, buf = decode_all(buf + chunk)
        out += cmds
    return _merge_text(out)


def test_a_ticket_decodes_to_its_commands() -> None:
    cmds, tail = decode_all(SAMPLE)
    assert tail == b""
    assert [c.op for c in cmds] == SAMPLE_OPS
    assert cmds[4].data.decode("gb18030") == "郑州金水路支行"
    assert cmds[7].arg == 0x44  # 5x5
    store = next(c for c in cmds if c.op == "qr_store")
    assert store.data == b"http://box/t/20261125-A023"
    image = next(c for c in cmds if c.op == "raster")
    assert (image.width, image.height, image.data) == (2, 2, b"\xff\x00\x0f\xf0")
    assert cmds[-1] == Cmd("cut", arg=1)


@pytest.mark.parametrize("how", ["whole", "halves", "byte by byte"])
def test_fed_whole_split_or_byte_by_byte_the_same(how: str) -> None:
    if how == "whole":
        chunks = [SAMPLE]
    elif how == "halves":
        chunks = [SAMPLE[:57], SAMPLE[57:]]
    else:
        chunks = [SAMPLE[i:i + 1] for i in range(len(SAMPLE))]
    assert _feed(chunks) == _merge_text(decode_all(SAMPLE)[0])


def test_garbage_before_and_after_is_skipped_not_fatal() -> None:
    cmds, tail = decode_all(b"\x00\x07\x1b\xff" + SAMPLE + b"\x1d\x99\x01")
    ops = [c.op for c in cmds]
    assert ops[:2] == ["unknown", "unknown"] and "unknown" in ops[-2:]
    assert [o for o in ops if o != "unknown"] == SAMPLE_OPS
    assert tail == b""


def test_an_unfinished_command_waits_for_more() -> None:
    qr = escpos.qr_native("http://box/t/1")
    assert decode(qr[:5]) == (0, None)
    assert decode(qr[25:35]) == (0, None)  # the store command, cut short
    assert decode(b"\x1d") == (0, None)
    assert decode(b"\x10\x04") == (0, None)


def test_native_qr_bytes_are_python_escpos_bytes() -> None:
    from escpos.constants import QR_ECLEVEL_M

    ref = Dummy()
    ref.qr("http://box:8080/t/20261125-A023", ec=QR_ECLEVEL_M, size=6, native=True)
    assert escpos.qr_native("http://box:8080/t/20261125-A023", 6, "M") == ref.output


def test_size_bytes_are_python_escpos_bytes() -> None:
    ref = Dummy()
    ref.set(custom_size=True, width=5, height=5)
    assert escpos.size(5, 5) == ref.output


def test_status_query_is_four_real_time_commands() -> None:
    cmds, _ = decode_all(escpos.STATUS_QUERY)
    assert [(c.op, c.arg) for c in cmds] == [("status", 1), ("status", 2), ("status", 3),
                                              ("status", 4)]


@pytest.mark.parametrize(("status", "condition"), [
    (PrinterStatus(), "ok"),
    (PrinterStatus(paper_near_end=True), "paper_near_end"),
    (PrinterStatus(paper_out=True, paper_near_end=True), "paper_out"),
    (PrinterStatus(cover_open=True), "cover_open"),
    (PrinterStatus(cutter_error=True), "cutter_error"),
    (PrinterStatus(unrecoverable_error=True), "error"),
    (PrinterStatus(online=False), "offline"),
])
def test_status_conditions(status: PrinterStatus, condition: str) -> None:
    answers = bytes(escpos.status_byte(n, status) for n in (1, 2, 3, 4))
    back = escpos.read_status(answers)
    assert back.condition == condition
    assert back.can_print == (condition in ("ok", "paper_near_end"))


def test_known_status_bytes() -> None:
    """Byte values from the ESC/POS reference: 0x12 idle, 0x72 paper end, 0x1E near end."""
    assert escpos.read_status(b"\x12\x12\x12\x12").condition == "ok"
    assert escpos.read_status(b"\x1a\x32\x12\x72").condition == "paper_out"
    assert escpos.read_status(b"\x12\x12\x12\x1e").condition == "paper_near_end"
    assert escpos.read_status(b"\x1a\x16\x12\x12").condition == "cover_open"
    with pytest.raises(ValueError):
        escpos.read_status(b"\x12\x12\xff\x12")
    with pytest.raises(ValueError):
        escpos.read_status(b"\x12")


@given(st.booleans(), st.booleans(), st.booleans(), st.booleans(), st.booleans(),
       st.booleans())
def test_status_round_trips(online: bool, cover: bool, out: bool, near: bool, cutter: bool,
                            fatal: bool) -> None:
    status = PrinterStatus(online=online, cover_open=cover, paper_out=out,
                           paper_near_end=near or out, cutter_error=cutter,
                           unrecoverable_error=fatal)
    answers = bytes(escpos.status_byte(n, status) for n in (1, 2, 3, 4))
    back = escpos.read_status(answers)
    assert (back.cover_open, back.paper_out, back.paper_near_end, back.cutter_error,
            back.unrecoverable_error) == (cover, out, near or out, cutter, fatal)
    assert back.online == (online and not (out or cover or cutter or fatal))


@given(st.binary(max_size=400))
def test_never_crashes_on_random_bytes(data: bytes) -> None:
    cmds, tail = decode_all(data)
    consumed = len(data) - len(tail)
    assert consumed >= 0 and data.endswith(tail)
    assert all(isinstance(c, Cmd) for c in cmds)


@given(st.binary(max_size=200), st.integers(min_value=1, max_value=50))
def test_any_split_decodes_the_same(data: bytes, cut_at: int) -> None:
    stream = data + SAMPLE
    whole, _ = decode_all(stream)
    assert _feed([stream[:cut_at], stream[cut_at:]]) == _merge_text(whole)
