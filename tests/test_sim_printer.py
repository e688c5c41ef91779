"""The virtual printer behaves like a real one: answers DLE EOT, holds data when stopped."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from drivers.printer import EscposPrinter, FdLink
from protocols import escpos
from protocols.ticket import get_profile, render_ticket
from sim.printer import SimPrinter, find_cjk_font
from tests.ticket_support import ticket

TICKET = render_ticket(ticket(), get_profile("kiosk80"), qr_base_url="http://box")


def test_answers_status_like_a_printer() -> None:
    sim = SimPrinter(png=False)
    assert sim.feed(escpos.STATUS_QUERY) == b"\x12\x12\x12\x12"
    sim.set_paper("near_end")
    assert sim.feed(b"\x10\x04\x04") == b"\x1e"
    sim.set_paper("out")
    assert sim.feed(escpos.STATUS_QUERY) == b"\x1a\x32\x12\x7e"
    sim.set_power(False)
    assert sim.feed(escpos.STATUS_QUERY) == b""


def test_data_sent_while_out_of_paper_prints_after_the_refill() -> None:
    sim = SimPrinter(png=False)
    sim.set_paper("out")
    sim.feed(TICKET)
    assert sim.tickets == []
    assert sim.feed(b"\x10\x04\x04") == b"\x7e"  # real-time answers still come
    sim.set_paper("ok")
    assert [t.number for t in sim.tickets] == ["A023"]


def test_switched_off_loses_its_buffer() -> None:
    sim = SimPrinter(png=False)
    sim.feed(TICKET[:50])
    sim.set_power(False)
    sim.set_power(True)
    sim.feed(TICKET)
    assert [t.number for t in sim.tickets] == ["A023"]
    assert sim.tickets[0].raw == TICKET


def test_writes_bin_txt_and_png(tmp_path: Path) -> None:
    sim = SimPrinter(tmp_path)
    sim.feed(TICKET)  # no event loop here: saved at once
    assert (tmp_path / "A023.bin").read_bytes() == TICKET
    text = (tmp_path / "A023.txt").read_text(encoding="utf-8")
    assert "[5x] A023" in text and "[QR native] http://box/t/20261125-A023" in text
    with Image.open(tmp_path / "A023.png") as png:
        assert png.width == 576
        dark = png.convert("L").histogram()[:128]
        assert sum(dark) > 5000  # text, number and QR are drawn, not an empty page


def test_finds_a_cjk_font() -> None:
    regular, _, note = find_cjk_font()
    assert regular is not None and ("CJK" in regular or "wqy" in regular), note


@settings(max_examples=200)
@given(st.binary(max_size=300))
def test_never_crashes_on_random_bytes(data: bytes) -> None:
    sim = SimPrinter(png=False)
    answers = sim.feed(data)
    assert all(escpos.is_status_byte(b) for b in answers)
    # Garbage can start a length-prefixed command that swallows what follows, on a real
    # printer too; switching it off and on clears that, and the next ticket prints whole.
    sim.set_power(False)
    sim.set_power(True)
    sim.feed(TICKET)
    assert sim.tickets[-1].number == "A023"
    assert sim.tickets[-1].raw == TICKET


async def test_a_missing_usb_device_is_not_connected() -> None:
    reports: list[tuple[str, str]] = []
    printer = EscposPrinter(get_profile("kiosk80"), link=FdLink("/dev/usb/lp-nope"),
                            qr_base_url="http://box",
                            report=lambda s, d: reports.append((s, d)))
    outcome = await printer.print_ticket(ticket())
    assert (outcome.ok, outcome.reason) == (False, "not_connected")
    assert reports == [("offline", "not_connected")]
    await printer.close()


async def test_a_printer_fed_faster_than_it_draws_keeps_every_ticket_and_counts_skipped_pictures(
        tmp_path: Path) -> None:
    numbers = [f"A{n:03d}" for n in range(1, 11)]
    sim = SimPrinter(tmp_path, max_drawings=2)
    for number in numbers:  # ten tickets in one go: the drawing worker cannot keep up
        sim.feed(render_ticket(ticket(number=number), get_profile("kiosk80"),
                               qr_base_url="http://box"))
    printed = await sim.wait_tickets(10)
    await sim.aclose()
    assert [t.number for t in printed] == numbers
    for number, t in zip(numbers, printed, strict=True):  # what was printed stays exact
        assert (tmp_path / f"{number}.bin").read_bytes() == t.raw
        assert f"[5x] {number}" in (tmp_path / f"{number}.txt").read_text(encoding="utf-8")
    assert sorted(p.stem for p in tmp_path.glob("*.png")) == numbers[:2]
    assert sim.drawings_dropped == 8
