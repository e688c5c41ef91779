"""Card readers at the kiosk: a swipe issues (and prints) a ticket; bad reads are refused."""

from __future__ import annotations

import asyncio
import os
import tty
from pathlib import Path

import pytest

from controller.box import Box
from controller.kiosk import PrintOutcome
from drivers.card_reader import (
    CardReader,
    KeyDecoder,
    LineBuffer,
    SerialSource,
    SwipeOutcome,
)
from protocols.cards import CardRead
from sim.card_swipes import SimSwipes
from tests.card_reader_support import PaperPrinter, next_outcome, running

VIP_CARD = "6225880137001237"
VIP_ID = "410105198001012311"


async def test_vip_card_swipe_issues_and_prints_v_ticket_with_stars(box: Box) -> None:
    box.printer = printer = PaperPrinter()
    swipes = SimSwipes()
    async with running(box, swipes) as (reader, outcomes):
        swipes.swipe_card(VIP_CARD)
        out = await next_outcome(outcomes)
    assert out.ok and out.code == "issued"
    assert out.ticket is not None and out.ticket["number"] == "V001"
    assert out.ticket["stars"] == 5 and out.ticket["vip_name"] == "陈先生"
    assert out.printed == PrintOutcome(True)
    assert [t["number"] for t in printer.printed] == ["V001"]
    t = box.engine.state.by_num("V001")
    assert t is not None and t.channel == "card" and t.customer_type == "vip"
    assert box.health.devices["card_reader.reader"].state == "ok"
    assert reader.rejections == {}


async def test_id_card_of_vip_gets_stars(box: Box) -> None:
    swipes = SimSwipes()
    async with running(box, swipes) as (_, outcomes):
        swipes.swipe_id(VIP_ID)
        out = await next_outcome(outcomes)
    assert out.ok and out.card == CardRead("id_card", VIP_ID)
    assert out.ticket is not None and out.ticket["stars"] == 5
    # the VIP has no queue of their own: the ID card type (41…) maps to personal banking
    assert out.ticket["queue"] == "A"


async def test_bad_checksum_refused_and_counted(box: Box) -> None:
    swipes = SimSwipes()
    async with running(box, swipes) as (reader, outcomes):
        swipes.swipe_card("6225880137001238")  # last digit wrong
        swipes.swipe_id(VIP_ID[:17] + "5")
        first, second = await next_outcome(outcomes), await next_outcome(outcomes)
    assert not first.ok and first.code == "bad_checksum"
    assert first.message == "卡号校验错误,请重新刷卡。"
    assert second.code == "bad_checksum"
    assert reader.rejections["bad_checksum"] == 2
    assert box.engine.state.tickets == {}  # nothing issued, no ghost number


async def test_unreadable_and_unknown_cards_refused(box: Box) -> None:
    swipes = SimSwipes()
    async with running(box, swipes) as (reader, outcomes):
        swipes.swipe(";62258801370")  # a partial swipe: no end sentinel
        swipes.tap_ic("4000000000000002")  # Luhn good, but no card type matches
        unreadable, unknown = await next_outcome(outcomes), await next_outcome(outcomes)
    assert unreadable.code == "bad_format"
    assert unknown.code == "unknown_card" and "无法识别" in unknown.message
    assert reader.rejections == {"bad_format": 1, "unknown_card": 1}


class Appointments:
    """Appointment redemption as A6 will plug in: it claims one card, passes on others."""

    def __init__(self, card: str) -> None:
        self.card = card
        self.offered: list[str] = []

    async def redeem(self, card: CardRead, kiosk: str) -> SwipeOutcome | None:
        self.offered.append(card.number)
        if card.number != self.card:
            return None
        return SwipeOutcome(True, "redeemed", card=card)


async def test_redeemer_is_offered_the_card_first(box: Box) -> None:
    swipes = SimSwipes()
    appointments = Appointments(VIP_ID)
    box.appointment_redeemer = appointments
    async with running(box, swipes) as (_, outcomes):
        swipes.swipe_id(VIP_ID)
        swipes.swipe_card(VIP_CARD)
        redeemed, issued = await next_outcome(outcomes), await next_outcome(outcomes)
    assert redeemed.code == "redeemed" and issued.code == "issued"
    assert appointments.offered == [VIP_ID, VIP_CARD]
    assert [t.number for t in box.engine.state.tickets.values()] == ["V001"]


async def test_serial_reader_over_a_pty(box: Box) -> None:
    master, slave = os.openpty()
    tty.setraw(slave)  # a serial line, not a terminal, from the first byte on
    try:
        source = SerialSource(os.ttyname(slave), baudrate=9600)
        async with running(box, source, name="serial") as (reader, outcomes):
            await asyncio.wait_for(source.opened.wait(), 5)
            os.write(master, b"\x00\xff\r\n;6225880137001237=2812101?\r\n")  # noise first
            garbled, out = await next_outcome(outcomes), await next_outcome(outcomes)
            os.write(master, b";62258801370")  # half a swipe, then the other half
            os.write(master, b"01237=2812101?\r")
            out2 = await next_outcome(outcomes)
    finally:
        os.close(master)
        os.close(slave)
    assert garbled.code == "bad_format"
    assert out.ok and out.ticket is not None and out.ticket["number"] == "V001"
    assert out2.ok and out2.ticket is not None and out2.ticket["number"] == "V002"
    assert reader.name == "card_reader.serial"


async def test_missing_serial_device_reported_offline(box: Box) -> None:
    reader = CardReader(source=SerialSource("/dev/nonexistent-reader"), name="gone")
    with pytest.raises(OSError):
        await reader.run(box)
    assert box.health.devices["card_reader.gone"].state == "offline"


async def test_sim_swipe_through_named_pipe(box: Box, tmp_path: Path) -> None:
    fifo = tmp_path / "sim" / "cards" / "swipe"
    swipes = SimSwipes(fifo=fifo)
    async with running(box, swipes) as (_, outcomes):
        await asyncio.wait_for(swipes.opened.wait(), 5)
        fd = os.open(fifo, os.O_WRONLY)
        os.write(fd, b";6225880137001237=2812101?\n")
        os.close(fd)
        out = await next_outcome(outcomes)
    assert out.ok and out.ticket is not None and out.ticket["stars"] == 5


def type_keys(decoder: KeyDecoder, text: str) -> list[str]:
    """Key events a US-layout keyboard wedge sends for ``text`` + Enter."""
    shifted = {"?": "KEY_SLASH", "%": "KEY_5", "^": "KEY_6", ":": "KEY_SEMICOLON"}
    plain = {";": "KEY_SEMICOLON", "=": "KEY_EQUAL", "/": "KEY_SLASH"}
    lines = []
    for ch in text:
        shift = ch in shifted or ch.isupper()
        key = shifted.get(ch) or plain.get(ch) or f"KEY_{ch.upper()}"
        events = [("KEY_LEFTSHIFT", 1)] if shift else []
        events += [(key, 1), (key, 0)] + ([("KEY_LEFTSHIFT", 0)] if shift else [])
        for name, value in events:
            assert decoder.feed(name, value) is None
    lines.append(decoder.feed("KEY_ENTER", 1))
    decoder.feed("KEY_ENTER", 0)
    return [ln for ln in lines if ln]


def test_keyboard_wedge_key_events_become_lines() -> None:
    d = KeyDecoder()
    track = "%B6225880137001237^CHEN/MR^2812101?;6225880137001237=2812101?"
    assert type_keys(d, track) == [track]
    assert type_keys(d, VIP_ID[:17] + "X") == [VIP_ID[:17] + "X"]
    assert d.feed("KEY_F13", 1) is None and d.unknown == 1


def test_line_buffer_drops_overlong_junk() -> None:
    buf = LineBuffer(max_line=20)
    assert buf.feed("x" * 50 + "\r\n;1=?\n") == [";1=?"]
    assert buf.dropped == 1
    assert buf.feed("\r\n\n ;2=? \r") == [";2=?"]
